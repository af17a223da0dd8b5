"""``avatargan evaluate``: how good and how diverse the avatars are, how sure we are, and how faithful the fixed point is.

The protocol (docs/EVALUATION.md, :mod:`golden.evalproto`): SWD of every model and of a real floor
against the same reference sets, repeated over resamplings, with the mean and a 95 % t-interval;
several models are compared pairwise (paired over the repetitions).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from avatargan.commands._avatars import SHIPPED_MODEL, FixedSource, FloatSource, int_arg, random_z, seed_arg
from base.errors import UserError
from base.fileio import legacy_owner

NAME = "evaluate"
HELP = "SWD with intervals vs a real floor (held-out avatars or splits), model comparison, memorisation, diversity"
DESCRIPTION = (
    "Measure one or more models against real avatars with the sliced Wasserstein distance on a "
    "Laplacian pyramid (levels 32 and 16, x1e3), repeated over REPEATS resamplings: in each, every "
    "model draws N avatars (its own z), a real floor set of N avatars is drawn, and both are compared "
    "with the same reference set of N real avatars. The reference and floor come from a held-out set "
    "(--heldout, or made by the avatar maker with the training seed + 1 when --data is a built-in "
    "dataset) or, for a user's folder, from random splits of --data. Reports the mean and a 95 %% "
    "Student-t interval of each SWD and of its ratio to the floor; with two or more CHECKPOINTs, "
    "whether each pair differs beyond the interval (paired t-test). Also the near-duplicate share "
    "and the diversity ratio; with --fixed MODEL and one CHECKPOINT, PSNR and SWD of the integer "
    "golden model vs the float model on the same z. Prints report.md and writes report.md, "
    "report.json, swd.png and sample grids to --out."
)

#: Goals the report checks (issues 3, 4 and 16).
SWD_FLOOR_GOAL = 1.15    # mean SWD / floor (issue 16)
PSNR_GOAL_DB = 40.0      # fixed vs float
SWD_REL_GOAL = 0.02      # |SWD(fixed) - SWD(float)| / SWD(float), protocol means

#: Default and largest numbers of repetitions.
DEFAULT_REPEATS = 20
MAX_REPEATS = 200
#: Smallest and largest set size (coverage needs more than 5 reference avatars, see golden.metrics),
#: and most avatars one model draws in all (repeats × set size).
MIN_SET = 8
MAX_SET = 2000
MAX_DRAWN = 60_000
#: Default set size with a held-out reference (at most half the held-out pool when one is given):
#: at 275 avatars per set the real floor moved −15 % / +10 % between evaluation seeds 0–4, at 1 000
#: ±4.6 % (docs/RESULTS.md, issue 16). The training set's row is shown when it has this many avatars.
DEFAULT_SET_CAP = 1000
#: Samples per model for the near-duplicate and diversity figures (the first ones drawn).
CHECK_SAMPLES = 1000
#: Most models in one comparison.
MAX_MODELS = 8
#: The held-out pool made for a built-in dataset: this many times the set size, from the training
#: seed + HELDOUT_SEED_OFFSET, cached under HELDOUT_CACHE.
HELDOUT_POOL_FACTOR = 4
HELDOUT_SEED_OFFSET = 1
HELDOUT_CACHE = Path("build") / "cache" / "heldout"
LETTERS = "ABCDEFGH"


def configure(parser) -> None:
    parser.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT",
                        help="float checkpoint(s) (.npz from `avatargan train`); two or more are compared "
                             "pairwise; default: the shipped models/default.npz, or none when --fixed is given")
    parser.add_argument("--fixed", metavar="MODEL",
                        help="evaluate the bit-exact integer golden model of this quantized model; with one "
                             "CHECKPOINT, also its fidelity to the float model on the same z")
    parser.add_argument("--seed", default="0", metavar="S",
                        help="evaluation seed: z, resampling, patches and directions (default 0)")
    parser.add_argument("--data", required=True, metavar="DATASET",
                        help="the training avatars: avatars.npz or a dataset folder (`avatargan dataset`)")
    parser.add_argument("--heldout", metavar="DATASET",
                        help="real avatars held out from training (same maker, other seed) for the reference "
                             "and floor sets; default: made for a built-in --data (training seed + 1), else "
                             "random splits of --data")
    parser.add_argument("--count", default=None, metavar="N",
                        help="avatars per set (model, floor, reference) in each repetition; default: "
                             f"{DEFAULT_SET_CAP} with a held-out reference (at most half of a --heldout set), "
                             "half of --data with splits")
    parser.add_argument("--repeats", default=str(DEFAULT_REPEATS), metavar="R",
                        help=f"resamplings (default {DEFAULT_REPEATS}, 2..{MAX_REPEATS})")
    parser.add_argument("--out", default="build/evaluate", metavar="DIR",
                        help="folder for report.md, report.json, swd.png, samples*.png (default build/evaluate)")


#: A folder written by `avatargan evaluate` before manifests: its own files and nothing else.
_legacy_evaluate = legacy_owner(NAME, "report.json", r"^(samples(_fixed|_[A-H])?\.png|swd\.png|report\.(json|md))$")


# --------------------------------------------------------------------------- the real sets


def _dataset_info(path) -> dict | None:
    """``dataset.json`` of the dataset at ``path`` (a folder, or the ``avatars.npz`` in one), if any."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if not p.is_dir() and p.name != "avatars.npz":
        return None
    try:
        info = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _made_heldout(seed: int, count: int) -> tuple[np.ndarray, Path, bool]:
    """``count`` avatars of the built-in maker from ``seed``, cached by seed, count and library versions."""
    from golden.dataset import _versions, load_images, make_avatars, save_npz

    versions = json.dumps(_versions("py-avataaars", "cairosvg", "pillow"), sort_keys=True)
    tag = hashlib.sha256(versions.encode()).hexdigest()[:12]
    cached = HELDOUT_CACHE / f"avataaars-seed{seed}-count{count}-{tag}.npz"
    if cached.is_file():
        return load_images(cached), cached, False
    images, _ = make_avatars(count, seed, progress=True)
    save_npz(cached, images=images)
    return images, cached, True


def _without(pool: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, int]:
    """The pool less every avatar identical (pixel for pixel) to a training avatar; and how many went."""
    seen = {t.tobytes() for t in train}
    keep = np.array([p.tobytes() not in seen for p in pool], dtype=bool)
    return pool[keep], int((~keep).sum())


def real_sets(args, train: np.ndarray, repeats: int) -> tuple[np.ndarray, int, dict]:
    """The avatars the reference and floor sets come from, the set size and the protocol's description."""
    from golden.dataset import MAX_COUNT, load_images

    count = None if args.count is None else int_arg(args.count, "--count", MIN_SET, MAX_SET,
                                                     "avatars per set in each repetition")
    if count is not None and count * repeats > MAX_DRAWN:
        raise UserError(f"--repeats {repeats} x --count {count} = {count * repeats} avatars per model; the limit "
                        f"is {MAX_DRAWN}")
    meta = _dataset_info(args.data) if args.heldout is None else None
    built_in = bool(meta and meta.get("source") == "py-avataaars" and isinstance(meta.get("seed"), int))
    if args.heldout is None and not built_in:  # a user's folder: random splits of it
        half = len(train) // 2
        if half < MIN_SET:
            raise UserError(f"dataset {args.data} has {len(train)} avatar(s); evaluation by random splits needs at "
                            f"least {2 * MIN_SET} (two sets of {MIN_SET}), or a --heldout set")
        n = half if count is None else count
        if n > half:
            raise UserError(f"--count {n} is more than half of the {len(train)} avatars in {args.data} "
                            f"(the reference and floor sets are two disjoint halves); give at most {half} "
                            "or a --heldout set")
        return train, n, {"kind": "splits", "source": str(args.data),
                          "text": f"random splits of the {len(train)} avatars of `{args.data}` into a "
                                  f"reference and a floor set of {n} each"}
    if len(train) < 2:
        raise UserError(f"dataset {args.data} has {len(train)} avatar; the near-duplicate check needs at least 2")
    n = DEFAULT_SET_CAP if count is None else count
    if args.heldout is not None:
        pool, dropped = _without(load_images(args.heldout), train)
        n = max(min(n, len(pool) // 2), MIN_SET) if count is None else n
        where = f"`{args.heldout}`"
    else:
        seed = meta["seed"] + HELDOUT_SEED_OFFSET
        size = HELDOUT_POOL_FACTOR * n
        if size > MAX_COUNT:
            raise UserError(f"a held-out set for --count {n} would be {size} avatars, more than the maker's "
                            f"{MAX_COUNT}; give a smaller --count")
        pool, cached, made = _made_heldout(seed, size)
        print(f"avatargan {NAME}: held-out reference: {size} avatars of the built-in maker with seed {seed} "
              f"({'made now and cached' if made else 'cached'} in {cached})", file=sys.stderr)
        where = f"the built-in maker, seed {seed} (training seed {meta['seed']} + {HELDOUT_SEED_OFFSET})"
        pool, dropped = _without(pool, train)
    if 2 * n > len(pool):
        raise UserError(f"the held-out set {args.heldout or where} has {len(pool)} avatars not in the training "
                        f"set; the protocol needs 2 x {n} (reference and floor sets): give a smaller --count "
                        "or a larger held-out set")
    return pool, n, {"kind": "heldout", "source": str(args.heldout) if args.heldout else where,
                     "pool": int(len(pool)), "dropped_as_training_copies": dropped,
                     "text": f"held-out avatars from {where}: {len(pool)} avatars "
                             f"({dropped} identical to training avatars left out), from which each repetition "
                             f"draws a reference and a floor set of {n}; the training set is not a reference"}


# --------------------------------------------------------------------------- the models


class _Models:
    """The models under evaluation: labels, sources, and their avatars per repetition.

    Every model draws from ``numpy.random.default_rng(seed).standard_normal((R·n, nz))``,
    repetition ``r`` taking rows ``r·n … (r+1)·n − 1`` (so the first 64 are what
    ``avatargan sample --seed S --count 64`` draws). A float checkpoint with ``--fixed`` draws
    both avatars on the same z (``golden.fidelity.matched_avatars``).
    """

    def __init__(self, args, n: int, repeats: int, seed: int):
        ckpts = list(args.checkpoints) or ([] if args.fixed else [str(SHIPPED_MODEL)])
        if args.fixed and len(ckpts) > 1:
            raise UserError(f"--fixed compares one CHECKPOINT with its quantized model; got {len(ckpts)} checkpoints")
        if len(ckpts) > MAX_MODELS:
            raise UserError(f"at most {MAX_MODELS} CHECKPOINTs can be compared at once, got {len(ckpts)}")
        for label, p in [("checkpoint", c) for c in ckpts] + [("quantized model", args.fixed)]:
            if p and not Path(p).is_file():
                raise UserError(f"{label} {p} does not exist or is not a file")
        self.flt = [FloatSource(c) for c in ckpts]
        self.fix = FixedSource(args.fixed) if args.fixed else None
        if self.fix and self.flt and self.flt[0].nz != self.fix.nz:
            raise UserError(f"checkpoint {ckpts[0]} has nz={self.flt[0].nz} but quantized model {args.fixed} "
                            f"has nz={self.fix.nz}: they are not the same Generator")
        if self.fix and self.flt:
            self.labels = ["float", "fixed"]
        elif self.fix:
            self.labels = ["fixed"]
        elif len(self.flt) == 1:
            self.labels = ["model"]
        else:
            self.labels = list(LETTERS[: len(self.flt)])
        self.sources = dict(zip(self.labels, self.flt + ([self.fix] if self.fix else [])))
        self.n, self.seed = n, seed
        self._cache: dict = {}
        self.kept = {k: [] for k in self.labels}  # the first CHECK_SAMPLES avatars of each model

    def draw(self, label: str, r: int) -> np.ndarray:
        key = ("matched" if self.fix and self.flt else label, r)
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[1] == r}  # keep one repetition
            z = random_z(self.sources[label].nz, (self.n * (r + 1),), self.seed)[self.n * r :]
            if key[0] == "matched":
                from golden.fidelity import matched_avatars

                a, b, n_sat = matched_avatars(self.flt[0].gen, self.fix.qm, z, batch=250)
                self.fix.saturated += n_sat
                self._cache[key] = {"float": a, "fixed": b}
            else:
                self._cache[key] = {label: self.sources[label].draw(z)}
            for k, x in self._cache[key].items():
                room = CHECK_SAMPLES - sum(len(s) for s in self.kept[k])
                if room > 0:
                    self.kept[k].append(x[:room])
        return self._cache[key][label]

    def samples(self, label: str) -> np.ndarray:
        return np.concatenate(self.kept[label])

    def describe(self, label: str) -> str:
        return self.sources[label].describe()


# --------------------------------------------------------------------------- figures


def swd_section(result) -> dict:
    """The protocol's SWD rows and comparisons as plain data (report.json)."""
    from golden.evalproto import compare

    rows = []
    for r in result.rows:
        d = {"name": r.name, "kind": r.kind, "per_level_mean": [float(v) for v in r.per_rep.mean(axis=0)],
             "avg": r.avg.as_dict(), "per_rep_avg": [float(v) for v in r.values],
             "stats": {k: v.as_dict() for k, v in r.intervals.items()},
             "per_rep_stats": {k: [float(x) for x in v] for k, v in r.stats.items()},
             "per_rep": [[float(v) for v in row] for row in r.per_rep]}
        if r.kind != "floor":
            d["over_floor"] = result.over_floor(r).as_dict()
        rows.append(d)
    others = [r for r in result.rows if r.kind != "floor"]
    comps = [compare(r, result.floor) for r in others]
    models = [r for r in result.rows if r.kind == "model"]
    comps += [compare(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
    return {"levels": result.rows[0].levels, "rows": rows, "comparisons": [c.as_dict() for c in comps]}


def checks(samples: np.ndarray, train: np.ndarray) -> dict:
    """Diversity ratio and near-duplicate share of ``samples`` against the training set."""
    from golden import metrics as M

    mem = M.memorisation(samples, train)
    return {"count": int(len(samples)), "diversity_ratio": M.diversity_ratio(samples, train),
            "near_duplicates": mem.as_dict()}


def fixed_vs_float(fixed: np.ndarray, flt: np.ndarray, swd: dict) -> dict:
    """PSNR of fixed vs float avatars on the same z; the protocol's SWD of both and their paired comparison."""
    from golden.fidelity import psnr as _psnr

    rows = {r["name"]: r for r in swd["rows"]}
    f, x = rows["float"]["avg"]["mean"], rows["fixed"]["avg"]["mean"]
    rel = abs(x - f) / f if f > 0 else (0.0 if x == f else math.inf)
    comp = next(c for c in swd["comparisons"] if {c["a"], c["b"]} == {"float", "fixed"})
    per = [_psnr(a, b) for a, b in zip(fixed, flt)]
    diff = np.abs(fixed.astype(np.int16) - flt.astype(np.int16))
    psnr = _psnr(fixed, flt)
    return {
        "z_count": int(len(fixed)),
        "psnr_db": psnr,
        "psnr_min_per_avatar_db": float(min(per)),
        "max_abs_pixel_diff": int(diff.max()),
        "pixels_equal_share": float((diff == 0).mean()),
        "swd_float_mean": f, "swd_fixed_mean": x,
        "swd_rel_diff": rel,
        "swd_fixed_vs_float_comparison": comp,
        "goals": {"psnr_db": PSNR_GOAL_DB, "swd_rel_diff": SWD_REL_GOAL},
        "psnr_ok": psnr >= PSNR_GOAL_DB,
        "swd_rel_ok": rel <= SWD_REL_GOAL,
    }


# --------------------------------------------------------------------------- the report


def _iv(d: dict, digits: int = 2) -> str:
    return f"{d['mean']:.{digits}f} [{d['low']:.{digits}f}–{d['high']:.{digits}f}]"


def markdown(rep: dict) -> str:
    """The report as Markdown (printed and written as report.md)."""
    p, s = rep["protocol"], rep["swd"]
    lv = s["levels"]
    head = " | ".join(f"{x}×{x}" for x in lv)
    lines = [
        "# avatargan evaluate",
        "",
        f"- models: " + "; ".join(f"**{k}** = {v}" for k, v in rep["models"].items()),
        f"- training set: {rep['train_count']} avatars from `{rep['data']}`",
        f"- reference and floor: {p['text']}",
        f"- {p['repeats']} repetitions of {p['set_size']} avatars per set, evaluation seed {p['seed']}; "
        f"intervals: {p['interval']}",
        f"- time: {rep['seconds']:.1f} s",
        "",
        "## Sliced Wasserstein distance (×10³, Laplacian pyramid; lower is better)",
        "",
        "Mean over the repetitions per level; the average over levels with its 95 % interval; the "
        "ratio of the mean SWD to the floor's, with Fieller's 95 % interval for a ratio of paired means. Coverage (higher is better): share of the reference avatars "
        "with an avatar of the set inside the distance to their 5th nearest reference neighbour (pixel "
        "space; Naeem et al. 2020). Repeat share (motif repetition; real sets ≈ 5 %): share of the set's "
        "avatars whose nearest other avatar of the set is closer than the 5th percentile of the "
        "reference's own nearest-neighbour distances.",
        "",
        f"| set vs reference | {head} | avg [95 % interval] | / floor [95 % interval] | coverage | repeat share |",
        "|---|" + "---|" * (len(lv) + 4),
    ]
    for r in s["rows"]:
        name = {"floor": "floor: real avatars", "train": "the training set"}.get(r["kind"], f"**{r['name']}**")
        ratio = _iv(r["over_floor"], 3) if "over_floor" in r else "1"
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in r["per_level_mean"])
                     + f" | {_iv(r['avg'])} | {ratio} | {_iv(r['stats']['coverage'], 3)} | "
                     f"{_iv(r['stats']['repeat_share'], 3)} |")
    lines += ["", "Paired over the repetitions (same reference sets, patches and directions); two sets differ "
              "when the 95 % interval of their SWD difference excludes 0.", "",
              "| a vs b | SWD(a) − SWD(b) [95 % interval] | SWD(a) / SWD(b) | verdict (SWD) | "
              "coverage(a) − coverage(b) | repeat share(a) − (b) |", "|---|---|---|---|---|---|"]

    def _d(d):
        return _iv(d, 3) + (" (differ)" if d["differ"] else "")

    for c in s["comparisons"]:
        st = c["stats_diff_a_minus_b"]
        lines.append(f"| {c['a']} vs {c['b']} | {_iv(c['diff_a_minus_b'])} | {_iv(c['ratio_a_over_b'], 3)} | "
                     f"{c['verdict']} | {_d(st['coverage'])} | {_d(st['repeat_share'])} |")
    lines += ["", f"Goal (issue 16): SWD / floor ≤ {SWD_FLOOR_GOAL}: " + "; ".join(
        f"{r['name']} {r['over_floor']['mean']:.3f} {'met' if r['over_floor']['mean'] <= SWD_FLOOR_GOAL else 'not met'}"
        for r in s["rows"] if r["kind"] == "model") + "."]
    c = rep["checks"]
    lines += [
        "",
        "## Diversity and memorisation (against the training set)",
        "",
        "| set | avatars | diversity ratio (1.0 = as diverse as the data) | near-duplicate share |",
        "|---|---|---|---|",
    ]
    for k, v in c.items():
        name = f"reference: {v['what']}" if k == "real" else f"**{k}**"
        lines.append(f"| {name} | {v['count']} | {v['diversity_ratio']:.3f} | "
                     f"{100 * v['near_duplicates']['share']:.1f} % ({v['near_duplicates']['count']}) |")
    nd = next(v for k, v in c.items() if k != "real")["near_duplicates"]
    lines += ["", f"Near-duplicate rule: {nd['rule']} (threshold {nd['threshold']:.3f})."]
    fx = rep.get("fixed")
    if fx:
        lines += ["", "## Fixed point vs float (same z; the fixed model gets its S(16,12) codes)", ""]
        if "psnr_db" not in fx:
            lines.append(f"- {fx['note']}")
        else:
            cmp_ = fx["swd_fixed_vs_float_comparison"]
            lines += [
                f"- quantized model: `{fx['model']}`; {fx['z_count']} z; {fx['z_saturated']} z element(s) saturated",
                f"- PSNR fixed vs float: **{fx['psnr_db']:.2f} dB** (goal ≥ {PSNR_GOAL_DB:g} dB: "
                f"{'met' if fx['psnr_ok'] else 'not met'}); worst avatar {fx['psnr_min_per_avatar_db']:.2f} dB; "
                f"max |pixel difference| {fx['max_abs_pixel_diff']}; {100 * fx['pixels_equal_share']:.1f} % of "
                "pixels equal",
                f"- SWD: float {fx['swd_float_mean']:.2f}, fixed {fx['swd_fixed_mean']:.2f}; relative difference "
                f"**{100 * fx['swd_rel_diff']:.2f} %** (goal ≤ {100 * SWD_REL_GOAL:g} %: "
                f"{'met' if fx['swd_rel_ok'] else 'not met'}); paired: {cmp_['verdict']}",
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

    from base.fileio import atomic_write, check_output_folder, staged_folder
    from golden import metrics as M
    from golden.dataset import load_images
    from golden.evalproto import INTERVAL_METHOD, plot_rows, run_protocol
    from golden.images import write_grid, write_png

    seed = seed_arg(args)
    repeats = int_arg(args.repeats, "--repeats", 2, MAX_REPEATS, "an interval needs at least two")
    out = Path(args.out)
    inputs = [*args.checkpoints, args.fixed, args.data, args.heldout]
    check_output_folder(out, NAME, inputs=inputs, legacy=_legacy_evaluate)
    train = load_images(args.data)
    models = _Models(args, 2, repeats, seed)  # checks the model files before any held-out avatars are made
    real, n, proto = real_sets(args, train, repeats)
    if n * repeats > MAX_DRAWN:  # a default set size (the training set's) with many repeats
        raise UserError(f"--repeats {repeats} x {n} avatars per set = {n * repeats} avatars per model; the limit "
                        f"is {MAX_DRAWN}: give fewer --repeats or a smaller --count")
    models.n = n
    t0 = time.monotonic()

    rows = 1 + (proto["kind"] == "heldout" and len(train) >= n) + len(models.labels)
    with tqdm(total=repeats * rows, desc="SWD", unit="set", file=sys.stderr, leave=False) as bar:
        result = run_protocol(real, {k: (lambda r, k=k: models.draw(k, r)) for k in models.labels}, n, repeats,
                              seed, train=train if proto["kind"] == "heldout" and len(train) >= n else None,
                              progress=bar.update)
    if models.fix:
        models.fix.report_saturation(NAME)
    swd = swd_section(result)
    chk = {k: checks(models.samples(k), train) for k in models.labels}
    if proto["kind"] == "heldout":
        ref = real[:CHECK_SAMPLES]
        chk["real"] = dict(checks(ref, train), what="held-out avatars")
    else:
        from golden.evalproto import split_indices

        a_i, b_i = split_indices(len(real), n, 1, seed)[0]
        chk["real"] = dict(checks(real[b_i], real[a_i]), what="floor set vs reference set (first repetition)")
    rep = {
        "format": "avatargan-evaluate", "format_version": 2,
        "checkpoints": list(args.checkpoints), "fixed_model": args.fixed, "data": str(args.data),
        "heldout": args.heldout, "train_count": int(len(train)),
        "models": {k: models.describe(k) for k in models.labels},
        "protocol": dict(proto, set_size=n, repeats=repeats, seed=seed, interval=INTERVAL_METHOD,
                         swd=f"Laplacian levels {swd['levels']}, {M.PATCHES_PER_IMAGE} random {M.PATCH}x{M.PATCH} "
                             f"patches per image and level, {M.DIRECTIONS} directions, x1e3",
                         z="numpy.random.default_rng(seed).standard_normal((repeats*count, nz)), repetition r "
                           "takes rows r*count..(r+1)*count-1"
                           + ("; the integer model gets its S(16,12) codes (rule 6)" if models.fix else "")),
        "swd": swd,
        "goal_swd_over_floor": SWD_FLOOR_GOAL,
        "checks": chk,
    }
    if models.fix:
        if models.flt:
            fx = fixed_vs_float(models.samples("fixed"), models.samples("float"), swd)
            fx.update(model=args.fixed, z_saturated=models.fix.saturated)
            src = models.fix.qm.header.get("source", {}) or {}
            from base.fileio import sha256_file

            if src.get("sha256") and src["sha256"] != sha256_file(args.checkpoints[0]):
                print(f"avatargan {NAME}: note: {args.fixed} was quantized from another file than "
                      f"{args.checkpoints[0]} (its source hash differs)", file=sys.stderr)
                fx["source_matches_checkpoint"] = False
            rep["fixed"] = fx
        else:
            rep["fixed"] = {"model": args.fixed, "z_saturated": models.fix.saturated,
                            "note": "no CHECKPOINT given: the metrics above are of the integer golden model's "
                                    "avatars; PSNR and SWD against the float model need the checkpoint"}
    rep["seconds"] = time.monotonic() - t0

    text = markdown(rep)
    with staged_folder(out, NAME, inputs=inputs, legacy=_legacy_evaluate) as stage:
        for k in models.labels:
            name = {"model": "samples.png", "float": "samples.png", "fixed": "samples_fixed.png"}.get(
                k, f"samples_{k}.png")
            write_grid(stage / name, models.samples(k)[:64], cols=8)
        write_png(stage / "swd.png", plot_rows(result))
        atomic_write(stage / "report.json", json.dumps(_json_safe(rep), indent=2) + "\n")
        atomic_write(stage / "report.md", text)
    print(text, end="")
    print(f"wrote {out / 'report.md'}, {out / 'report.json'}, {out / 'swd.png'} and sample grids")
    return 0
