"""``avatargan evaluate``: how good and how diverse the avatars are, and how faithful the fixed point is."""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from avatargan.commands._avatars import add_source_arguments, draw_many, int_arg, open_sources, random_z, seed_arg
from avatargan.errors import UserError

NAME = "evaluate"
HELP = "SWD vs the real-vs-real floor, memorisation, diversity; with --fixed: PSNR and SWD of fixed vs float"
DESCRIPTION = (
    "Draw COUNT avatars (z ~ N(0, I), seeded) and compare them with the dataset: sliced Wasserstein "
    "distance on a Laplacian pyramid (levels 32 and 16, x1e3) beside the floor of two disjoint real "
    "halves, the near-duplicate share (nearest training avatar closer than the 5th percentile of "
    "train-train nearest-neighbour distances) and the diversity ratio (mean pairwise distance of "
    "samples / of real avatars). With --fixed MODEL and a CHECKPOINT: PSNR of the integer golden "
    "model's avatars vs the float model's on the same (quantised) z, and the SWD of both. Prints "
    "report.md and writes report.md, report.json and sample grids to --out."
)

#: Goals the report checks (issues 3 and 4).
SWD_FLOOR_GOAL = 1.3     # SWD avg within 1.3x the real-vs-real floor
PSNR_GOAL_DB = 40.0      # fixed vs float
SWD_REL_GOAL = 0.02      # |SWD(fixed) - SWD(float)| / SWD(float)


def configure(parser) -> None:
    add_source_arguments(parser, "evaluate")
    parser.add_argument("--data", required=True, metavar="DATASET",
                        help="the real avatars: avatars.npz or a dataset folder (`avatargan dataset`)")
    parser.add_argument("--count", default="1000", metavar="N", help="avatars to draw (default 1000)")
    parser.add_argument("--out", default="build/evaluate", metavar="DIR",
                        help="folder for report.md, report.json, samples.png (default build/evaluate)")


_OWN = re.compile(r"^(samples(_fixed)?\.png|report\.(json|md))$")


def _legacy_evaluate(files: list[str]) -> str | None:
    """A folder written by `avatargan evaluate` before manifests: its own files and nothing else."""
    return NAME if "report.json" in files and all(_OWN.match(f) for f in files) else None


def _split_real(real: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint, equally large random halves of the real avatars."""
    perm = np.random.default_rng((seed, 101)).permutation(len(real))
    m = len(real) // 2
    return real[perm[:m]], real[perm[m : 2 * m]]


def evaluate_images(samples: np.ndarray, real: np.ndarray, seed: int) -> dict:
    """Quality metrics of uint8 samples ``(N, 3, 32, 32)`` against real avatars ``(M, 32, 32, 3)``.

    SWD is taken against one real half A and the floor is SWD(real half B, A): both compare
    with the same reference set and the same number of patch descriptors (128 per image of A).
    """
    from golden import metrics as M

    a, b = _split_real(real, seed)
    model = M.swd(samples, a, seed=seed)
    floor = M.swd(b, a, seed=seed)
    mem = M.memorisation(samples, real)
    mem_ref = M.memorisation(b, a)
    return {
        "swd": model.as_dict(),
        "swd_floor": floor.as_dict(),
        "swd_over_floor": model.avg / floor.avg if floor.avg > 0 else math.inf,
        "diversity_ratio": M.diversity_ratio(samples, real),
        "diversity_ratio_real_halves": M.diversity_ratio(b, a),
        "near_duplicates": mem.as_dict(),
        "near_duplicates_real_halves": {"share": mem_ref.share, "threshold": mem_ref.threshold},
        "real_half_size": int(len(a)),
    }


def fixed_vs_float(fixed: np.ndarray, flt: np.ndarray, real: np.ndarray, seed: int, swd_float: dict) -> dict:
    """PSNR of fixed vs float avatars on the same z, and their SWDs against the same real half."""
    from golden import metrics as M
    from golden.fidelity import psnr as _psnr

    a, _ = _split_real(real, seed)
    swd_fixed = M.swd(fixed, a, seed=seed)
    per = [_psnr(f, g) for f, g in zip(fixed, flt)]
    diff = np.abs(fixed.astype(np.int16) - flt.astype(np.int16))
    rel = abs(swd_fixed.avg - swd_float["avg_x1e3"]) / swd_float["avg_x1e3"]
    psnr = _psnr(fixed, flt)
    return {
        "z_count": int(len(fixed)),
        "psnr_db": psnr,
        "psnr_min_per_avatar_db": float(min(per)),
        "max_abs_pixel_diff": int(diff.max()),
        "pixels_equal_share": float((diff == 0).mean()),
        "swd_fixed": swd_fixed.as_dict(),
        "swd_float": swd_float,
        "swd_rel_diff": rel,
        "swd_fixed_vs_float": M.swd(fixed, flt, seed=seed).as_dict(),
        "goals": {"psnr_db": PSNR_GOAL_DB, "swd_rel_diff": SWD_REL_GOAL},
        "psnr_ok": psnr >= PSNR_GOAL_DB,
        "swd_rel_ok": rel <= SWD_REL_GOAL,
    }


def _matched(flt, fix, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float and fixed-point avatars of the same z (:func:`golden.fidelity.matched_avatars`), with progress."""
    from tqdm import tqdm

    from golden.fidelity import matched_avatars
    from avatargan.commands._avatars import BATCH

    fl, fx = [], []
    with tqdm(total=len(z), desc="drawing (float + fixed)", unit="avatar", file=sys.stderr, leave=False) as bar:
        for i in range(0, len(z), BATCH):
            a, b, n_sat = matched_avatars(flt.gen, fix.qm, z[i : i + BATCH], batch=BATCH)
            fl.append(a)
            fx.append(b)
            fix.saturated += n_sat
            bar.update(len(a))
    return np.concatenate(fl), np.concatenate(fx)


def _fmt_levels(d: dict) -> str:
    return " | ".join(f"{v:.2f}" for v in d["per_level_x1e3"]) + f" | **{d['avg_x1e3']:.2f}**"


def markdown(rep: dict) -> str:
    """The report as Markdown (printed and written as report.md)."""
    lv = rep["metrics"]["swd"]["levels"]
    m = rep["metrics"]
    head = " | ".join(f"{x}×{x}" for x in lv)
    lines = [
        "# avatargan evaluate",
        "",
        f"- samples: {rep['count']} avatars from the {rep['source']}, seed {rep['seed']}",
        f"- real avatars: {rep['real_count']} from `{rep['data']}` (halves of {m['real_half_size']} for SWD)",
        f"- time: {rep['seconds']:.1f} s",
        "",
        "## Sliced Wasserstein distance (×10³, Laplacian pyramid; lower is better)",
        "",
        f"| set | {head} | avg |",
        "|---|" + "---|" * (len(lv) + 1),
        f"| samples vs real half A | {_fmt_levels(m['swd'])} |",
        f"| floor: real half B vs real half A | {_fmt_levels(m['swd_floor'])} |",
        "",
        f"SWD / floor = **{m['swd_over_floor']:.2f}** (goal ≤ {SWD_FLOOR_GOAL}: "
        f"{'met' if m['swd_over_floor'] <= SWD_FLOOR_GOAL else 'not met'}).",
        "",
        "## Diversity and memorisation",
        "",
        "| figure | samples | reference: real half B vs A |",
        "|---|---|---|",
        f"| diversity ratio (mean pairwise L2 / that of real; 1.0 = as diverse as the data) | "
        f"**{m['diversity_ratio']:.3f}** | {m['diversity_ratio_real_halves']:.3f} |",
        f"| near-duplicate share | **{100 * m['near_duplicates']['share']:.1f} %** "
        f"({m['near_duplicates']['count']}) | {100 * m['near_duplicates_real_halves']['share']:.1f} % |",
        "",
        f"Near-duplicate rule: {m['near_duplicates']['rule']} (threshold "
        f"{m['near_duplicates']['threshold']:.3f}; median sample NN distance "
        f"{m['near_duplicates']['sample_nn_median']:.3f}, median train-train NN distance "
        f"{m['near_duplicates']['train_nn_median']:.3f}).",
    ]
    fx = rep.get("fixed")
    if fx:
        lines += ["", "## Fixed point vs float (same z; the fixed model gets its S(16,12) codes)", ""]
        if "psnr_db" not in fx:
            lines.append(f"- {fx['note']}")
        else:
            lines += [
                f"- quantized model: `{fx['model']}`; {fx['z_count']} z; "
                f"{fx['z_saturated']} z element(s) saturated",
                f"- PSNR fixed vs float: **{fx['psnr_db']:.2f} dB** (goal ≥ {PSNR_GOAL_DB:g} dB: "
                f"{'met' if fx['psnr_ok'] else 'not met'}); worst avatar {fx['psnr_min_per_avatar_db']:.2f} dB; "
                f"max |pixel difference| {fx['max_abs_pixel_diff']}; {100 * fx['pixels_equal_share']:.1f} % of "
                "pixels equal",
                "",
                f"| SWD ×10³ | {head} | avg |",
                "|---|" + "---|" * (len(lv) + 1),
                f"| float samples vs real half A | {_fmt_levels(fx['swd_float'])} |",
                f"| fixed samples vs real half A | {_fmt_levels(fx['swd_fixed'])} |",
                f"| fixed samples vs float samples | {_fmt_levels(fx['swd_fixed_vs_float'])} |",
                "",
                f"Relative SWD difference |fixed − float| / float = **{100 * fx['swd_rel_diff']:.2f} %** "
                f"(goal ≤ {100 * SWD_REL_GOAL:g} %: {'met' if fx['swd_rel_ok'] else 'not met'}).",
            ]
    return "\n".join(lines) + "\n"


def _json_safe(x):
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else str(float(x))
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def run(args) -> int:
    from tqdm import tqdm

    from avatargan.fileio import atomic_write, check_output_folder, staged_folder
    from golden.dataset import load_images
    from golden.images import write_grid

    count = int_arg(args.count, "--count", 2, 10_000, "the diversity ratio compares every pair of samples")
    seed = seed_arg(args)
    out = Path(args.out)
    check_output_folder(out, NAME, inputs=[args.checkpoint, args.fixed, args.data], legacy=_legacy_evaluate)
    real = load_images(args.data)
    if len(real) < 4:
        raise UserError(f"dataset {args.data} has {len(real)} avatar(s); evaluation needs at least 4")
    flt, fix = open_sources(args)
    main = flt or fix
    t0 = time.monotonic()

    z = random_z(main.nz, (count,), seed)
    if flt and fix:
        samples, fixed_samples = _matched(flt, fix, z)
    else:
        samples, fixed_samples = draw_many(main, z, f"drawing ({main.kind})"), None
    if fix:
        fix.report_saturation(NAME)

    steps = tqdm(total=2 if fixed_samples is None else 3, desc="metrics", file=sys.stderr, leave=False)
    metrics = evaluate_images(samples, real, seed)
    steps.update()
    rep = {
        "format": "avatargan-evaluate", "format_version": 1,
        "checkpoint": args.checkpoint, "fixed_model": args.fixed, "data": str(args.data),
        "source": main.describe(), "count": count, "seed": seed, "real_count": int(len(real)),
        "z": "numpy.random.default_rng(seed).standard_normal((count, nz))"
             + ("; the integer model gets its S(16,12) codes (rule 6)" if fix else ""),
        "metrics": metrics,
    }
    if fix:
        if fixed_samples is not None:
            fx = fixed_vs_float(fixed_samples, samples, real, seed, metrics["swd"])
            steps.update()
            fx.update(model=args.fixed, z_saturated=fix.saturated)
            src = fix.qm.header.get("source", {}) or {}
            from golden.qmodel import sha256_file

            if src.get("sha256") and src["sha256"] != sha256_file(args.checkpoint):
                print(f"avatargan {NAME}: note: {args.fixed} was quantized from another file than "
                      f"{args.checkpoint} (its source hash differs)", file=sys.stderr)
                fx["source_matches_checkpoint"] = False
            rep["fixed"] = fx
        else:
            rep["fixed"] = {"model": args.fixed, "z_saturated": fix.saturated,
                            "note": "no CHECKPOINT given: the metrics above are of the integer golden model's "
                                    "avatars; PSNR and SWD against the float model need the checkpoint"}
    rep["seconds"] = time.monotonic() - t0

    text = markdown(rep)
    with staged_folder(out, NAME, inputs=[args.checkpoint, args.fixed, args.data], legacy=_legacy_evaluate) as stage:
        write_grid(stage / "samples.png", samples[:64], cols=8)
        if fixed_samples is not None:
            write_grid(stage / "samples_fixed.png", fixed_samples[:64], cols=8)
        atomic_write(stage / "report.json", json.dumps(_json_safe(rep), indent=2) + "\n")
        atomic_write(stage / "report.md", text)
    steps.update()
    steps.close()
    print(text, end="")
    print(f"wrote {out / 'report.md'}, {out / 'report.json'} and sample grids")
    return 0
