"""``avatargan augment``: write new avatars as PNGs for dataset expansion (seed §2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avatargan.commands._avatars import add_source_arguments, draw_many, int_arg, open_sources, random_z, seed_arg
from base.errors import UserError
from base.fileio import legacy_owner

NAME = "augment"
HELP = "write N new avatars (PNGs + avatars.npz) for dataset expansion"
DESCRIPTION = (
    "Draw COUNT new avatars from z ~ N(0, I) (seeded) and write them in the dataset layout: "
    "DIR/png/NNNN.png (32x32 RGB), DIR/avatars.npz (images uint8 (N, 32, 32, 3) and the z that drew "
    "them) and DIR/augment.json (how they were made), so DIR can be used as a dataset. A folder that "
    "exists and is not empty is refused unless --force is given, and --force replaces only a folder "
    "that holds nothing but earlier augment output (never a dataset or your files). With --fixed MODEL "
    "the integer golden model draws them; without either, the shipped models/default.npz does."
)

#: The files augment writes (besides the manifest of base.fileio).
_OWN = r"^(png/\d{4,}\.png|avatars\.npz|augment\.json)$"
#: Most avatars one run writes (each is a PNG; 100 000 take about 300 MB in avatars.npz).
MAX_COUNT = 100_000


def configure(parser) -> None:
    add_source_arguments(parser, "draw")
    parser.add_argument("--count", required=True, metavar="N", help="number of new avatars")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--force", action="store_true",
                        help="replace a folder that holds earlier augment output (and nothing else)")


#: An augment folder written before manifests: its own files and nothing else.
_legacy_augment = legacy_owner(NAME, "augment.json", _OWN)


def run(args) -> int:
    import sys

    from tqdm import tqdm

    from base.fileio import check_output_folder, staged_folder
    from golden.images import write_png

    count = int_arg(args.count, "--count", 1, MAX_COUNT, "one PNG each; 100 000 take about 300 MB in avatars.npz")
    seed = seed_arg(args)
    out = Path(args.out)
    inputs = [args.checkpoint, args.fixed]
    check_output_folder(out, NAME, inputs=inputs, legacy=_legacy_augment)
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise UserError(f"--out {out} is not empty; give --force to replace its augment output")
    flt, fix = open_sources(args)
    source = fix or flt
    z = random_z(source.nz, (count,), seed)
    rgb = draw_many(source, z, "drawing")
    if fix:
        fix.report_saturation(NAME)
    images = np.ascontiguousarray(rgb.transpose(0, 2, 3, 1))

    width = max(4, len(str(count - 1)))
    with staged_folder(out, NAME, inputs=inputs, legacy=_legacy_augment) as stage:
        (stage / "png").mkdir()
        for i in tqdm(range(count), desc="writing PNGs", unit="png", file=sys.stderr, leave=False,
                      disable=count < 200):
            write_png(stage / "png" / f"{i:0{width}d}.png", images[i])
        with open(stage / "avatars.npz", "wb") as f:
            np.savez(f, allow_pickle=False, images=images, z=z)
        record = {"count": count, "seed": seed, "source": source.kind, "checkpoint": args.checkpoint,
                  "fixed_model": args.fixed, "z": "numpy.random.default_rng(seed).standard_normal((count, nz))",
                  "images": "avatars.npz['images'] uint8 (N, 32, 32, 3); png/NNNN.png"}
        (stage / "augment.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {count} avatars from the {source.describe()} to {out}/png/ and {out}/avatars.npz (seed {seed})")
    return 0
