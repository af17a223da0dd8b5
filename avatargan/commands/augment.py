"""``avatargan augment``: write new avatars as PNGs for dataset expansion (seed §2)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from avatargan.commands._avatars import add_source_arguments, draw_many, int_arg, open_sources, random_z, seed_arg
from avatargan.errors import UserError

NAME = "augment"
HELP = "write N new avatars (PNGs + avatars.npz) for dataset expansion"
DESCRIPTION = (
    "Draw COUNT new avatars from z ~ N(0, I) (seeded) and write them in the dataset layout: "
    "DIR/png/NNNN.png (32x32 RGB), DIR/avatars.npz (images uint8 (N, 32, 32, 3) and the z that drew "
    "them) and DIR/augment.json (how they were made), so DIR can be used as a dataset. A folder that "
    "exists and is not empty is refused unless --force is given. With --fixed MODEL the integer golden "
    "model draws them; CHECKPOINT may then be omitted."
)

_PNG_NAME = re.compile(r"^\d{4,}\.png$")


def configure(parser) -> None:
    add_source_arguments(parser, "draw")
    parser.add_argument("--count", required=True, metavar="N", help="number of new avatars")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--force", action="store_true",
                        help="write into an existing non-empty folder, replacing earlier augment output")


def run(args) -> int:
    from golden.images import write_png
    from avatargan.fileio import atomic_path, atomic_write, ensure_dir

    count = int_arg(args.count, "--count", 1, 1_000_000)
    seed = seed_arg(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise UserError(f"--out {out} is not empty; give --force to replace its augment output")
    flt, fix = open_sources(args)
    source = fix or flt
    z = random_z(source.nz, (count,), seed)
    rgb = draw_many(source, z, "drawing")
    if fix:
        fix.report_saturation(NAME)
    images = np.ascontiguousarray(rgb.transpose(0, 2, 3, 1))

    from tqdm import tqdm
    import sys

    png_dir = ensure_dir(out / "png")
    width = max(4, len(str(count - 1)))
    for i in tqdm(range(count), desc="writing PNGs", unit="png", file=sys.stderr, leave=False,
                  disable=count < 200):
        write_png(png_dir / f"{i:0{width}d}.png", images[i])
    # With --force, PNGs of an earlier, larger run would otherwise stay mixed in with the new ones.
    stale = [p for p in png_dir.iterdir() if _PNG_NAME.match(p.name) and int(p.stem) >= count]
    for p in stale:
        p.unlink()

    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, images=images, z=z)
    with atomic_path(out / "avatars.npz") as tmp:
        tmp.write_bytes(buf.getvalue())
    record = {"count": count, "seed": seed, "source": source.kind, "checkpoint": args.checkpoint,
              "fixed_model": args.fixed, "z": "numpy.random.default_rng(seed).standard_normal((count, nz))",
              "images": "avatars.npz['images'] uint8 (N, 32, 32, 3); png/NNNN.png"}
    atomic_write(out / "augment.json", json.dumps(record, indent=2) + "\n")
    print(f"wrote {count} avatars from the {source.describe()} to {out}/png/ and {out}/avatars.npz "
          f"(seed {seed}{', ' + str(len(stale)) + ' stale PNG(s) removed' if stale else ''})")
    return 0
