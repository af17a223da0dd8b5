"""``avatargan interpolate``: rows of linear interpolations between two random z (the seed's Fig. 7)."""

from __future__ import annotations

import numpy as np

from avatargan.commands._avatars import (GRID_WHY, SCALE_WHY, add_source_arguments, check_picture, int_arg,
                                        open_sources, png_out, random_z, seed_arg)

NAME = "interpolate"
HELP = "draw rows of avatars interpolated between two random z (seed Fig. 7)"
DESCRIPTION = (
    "For each row draw z1, z2 ~ N(0, I) (seeded) and the STEPS points between them, "
    "z(t_k) = (1 - t_k) z1 + t_k z2 with t_k = k / (STEPS + 1), k = 1..STEPS (the seed paper's "
    "eqs. 12-13, STEPS = 3 by default); each row shows z1, the interpolated avatars and z2. "
    "With --fixed MODEL the integer golden model draws them; "
    "without either, the shipped models/default.npz draws them."
)


def configure(parser) -> None:
    add_source_arguments(parser, "draw")
    parser.add_argument("--rows", default="3", metavar="R", help="number of (z1, z2) pairs (default 3)")
    parser.add_argument("--steps", default="3", metavar="N", help="interpolated points per row (default 3)")
    parser.add_argument("--scale", default="4", metavar="K", help="upscaling factor (default 4)")
    parser.add_argument("--out", default="interp.png", metavar="PNG", help="output PNG (default interp.png)")


def interpolation_z(z1: np.ndarray, z2: np.ndarray, steps: int) -> np.ndarray:
    """Rows of ``[z1, z(t_1), ..., z(t_N), z2]`` with ``t_k = k / (N + 1)`` (eqs. 12-13).

    Parameters
    ----------
    z1, z2 : numpy.ndarray
        ``(R, nz)`` end points.
    steps : int
        N, the number of interpolated points.

    Returns
    -------
    numpy.ndarray
        ``(R, N + 2, nz)``.
    """
    t = np.arange(steps + 2, dtype=np.float64) / (steps + 1)  # 0, t_1 .. t_N, 1
    return (1.0 - t)[None, :, None] * z1[:, None, :] + t[None, :, None] * z2[:, None, :]


def run(args) -> int:
    from golden.images import write_grid

    rows = int_arg(args.rows, "--rows", 1, 256, GRID_WHY)
    steps = int_arg(args.steps, "--steps", 1, 64, GRID_WHY)
    scale = int_arg(args.scale, "--scale", 1, 32, SCALE_WHY)
    seed = seed_arg(args)
    check_picture(rows, steps + 2, scale, label_px=120)
    png_out(args.out, inputs=[args.checkpoint, args.fixed])
    flt, fix = open_sources(args)
    source = fix or flt
    ends = random_z(source.nz, (rows, 2), seed)
    z = interpolation_z(ends[:, 0], ends[:, 1], steps)
    rgb = source.draw(z.reshape(rows * (steps + 2), source.nz))
    if fix:
        fix.report_saturation(NAME)
    labels = [f"{r + 1}" for r in range(rows)]
    heads = ["z1"] + [f"t={k}/{steps + 1}" for k in range(1, steps + 1)] + ["z2"]
    out = write_grid(args.out, rgb, cols=steps + 2, scale=scale, row_labels=labels, col_labels=heads)
    print(f"wrote {out}: {rows} row(s) of z1, {steps} interpolated point(s) (t_k = k/{steps + 1}), z2 "
          f"from the {source.describe()}, seed {seed}")
    return 0
