"""``avatargan sample``: a grid of random avatars (the seed's Fig. 6)."""

from __future__ import annotations

import math

from avatargan.commands._avatars import (GRID_WHY, SCALE_WHY, add_source_arguments, check_picture, int_arg,
                                        open_sources, png_out, random_z, seed_arg)

NAME = "sample"
HELP = "draw a grid of random avatars from a checkpoint or (--fixed) a quantized model"
DESCRIPTION = (
    "Draw COUNT avatars from z ~ N(0, I) (seeded) and write them as one PNG grid, upscaled with "
    "nearest-neighbour so the 32x32 pixels stay visible (the seed paper's Fig. 6). With --fixed MODEL "
    "the avatars come from the bit-exact integer golden model, exactly as the FPGA draws them; "
    "without either, the shipped models/default.npz draws them."
)


def configure(parser) -> None:
    add_source_arguments(parser, "draw")
    parser.add_argument("--count", default="16", metavar="N", help="number of avatars (default 16)")
    parser.add_argument("--cols", default=None, metavar="C", help="avatars per row (default ceil(sqrt(N)))")
    parser.add_argument("--scale", default="4", metavar="K", help="upscaling factor (default 4)")
    parser.add_argument("--out", default="samples.png", metavar="PNG", help="output PNG (default samples.png)")


def run(args) -> int:
    from golden.images import write_grid

    count = int_arg(args.count, "--count", 1, 4096, GRID_WHY)
    cols = int_arg(args.cols, "--cols", 1, 4096, GRID_WHY) if args.cols is not None else math.ceil(math.sqrt(count))
    scale = int_arg(args.scale, "--scale", 1, 32, SCALE_WHY)
    seed = seed_arg(args)
    check_picture(math.ceil(count / cols), min(cols, count), scale)
    png_out(args.out, inputs=[args.checkpoint, args.fixed])
    flt, fix = open_sources(args)
    source = fix or flt
    z = random_z(source.nz, (count,), seed)
    rgb = source.draw(z)
    if fix:
        fix.report_saturation(NAME)
    out = write_grid(args.out, rgb, cols=cols, scale=scale)
    print(f"wrote {out}: {count} avatars from the {source.describe()}, seed {seed}")
    return 0

