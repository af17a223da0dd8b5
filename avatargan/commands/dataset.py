"""``avatargan dataset``: make the training avatars, or import a folder of your own images."""

from __future__ import annotations

import argparse
import sys

NAME = "dataset"
HELP = "make the 32x32 training avatars (py-avataaars, seeded) or import your own images"
DESCRIPTION = (
    "Without --from: draw COUNT random avatars with py-avataaars from SEED (hair style and colour, "
    "skin, eyes, eyebrows, mouth, facial hair, accessories, clothes), render them on white and "
    "reduce them to 32x32 RGB with Pillow's LANCZOS filter; the same seed gives the same files. "
    "With --from DIR: read the images directly inside DIR (PNG, JPEG, GIF, BMP, WebP; any mode and "
    "size), composite transparency on white, crop the centre square and reduce it to 32x32 the "
    "same way; unreadable files are skipped with a warning. Writes OUT/png/NNNN.png, "
    "OUT/attributes.csv, OUT/avatars.npz (key 'images', uint8 N x 32 x 32 x 3, what `avatargan "
    "train` reads) and OUT/dataset.json. OUT is replaced only when the new dataset is complete."
)


def configure(parser: argparse.ArgumentParser) -> None:
    from golden.dataset import DEFAULT_COUNT, DEFAULT_SEED, MAX_COUNT

    parser.add_argument("--count", type=int, default=None,
                        help=f"number of avatars to draw, 1..{MAX_COUNT} (default {DEFAULT_COUNT}, "
                             "the size of the seed's dataset)")
    parser.add_argument("--seed", type=int, default=None, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--from", dest="source", metavar="DIR", default=None,
                        help="import the images in DIR instead of drawing avatars")
    parser.add_argument("--out", default="data/avatars", help="dataset folder to write (default data/avatars)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from base.errors import UserError
    from golden import dataset as ds

    progress = not args.quiet
    if args.source is not None:
        if args.count is not None or args.seed is not None:
            raise UserError("--count and --seed apply to drawn avatars, not to --from DIR")
        out = ds.import_dataset(args.source, args.out, progress=progress)
    else:
        count = ds.DEFAULT_COUNT if args.count is None else args.count
        seed = ds.DEFAULT_SEED if args.seed is None else args.seed
        out = ds.generate_dataset(args.out, count=count, seed=seed, progress=progress)
    n = len(ds.load_images(out))
    print(f"wrote {n} images of {ds.SIZE}x{ds.SIZE} to {out}/ ({ds.NPZ_NAME}, {ds.CSV_NAME}, "
          f"{ds.PNG_DIR}/)", file=sys.stdout)
    return 0
