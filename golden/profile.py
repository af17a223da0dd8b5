"""Range profiling of a quantized model (in the spirit of hls4ml's profiling).

For every layer: the weights, and over N random z (all three passes) the accumulators and the
activations (layer 4: the Tanh-table index), each against the range of its format, with
saturation counts. Output: a printed table, ``report.md``, ``report.json`` and one PNG per layer
with histograms of ``log2|value|`` (log-count bars, format limits marked), drawn with Pillow.
"""

from __future__ import annotations

import json
import math

import numpy as np
from PIL import Image, ImageDraw

from golden.fixed import pass_inputs, quantize_z, rshift_rnd
from golden.qmodel import QModel, code_range, fmt_name

#: Seed of the profiling z (differs from the calibration seed: these ranges are out of sample).
PROFILE_SEED = 777
#: Histogram bins of log2|value| (real units).
BINS = np.arange(-26.0, 20.5, 0.5)


def _fmt_limits(f: dict) -> tuple[float, float]:
    """(smallest positive step, largest magnitude) of format ``f`` in real units."""
    lo, hi = code_range(f)
    return 2.0 ** -f["frac"], max(abs(lo), hi) * 2.0 ** -f["frac"]


class _Tensor:
    """Running min/max/histogram of one tensor's integer codes."""

    def __init__(self, f: dict, name: str):
        self.f, self.name = f, name
        self.min = None
        self.max = None
        self.count = 0
        self.zeros = 0
        self.saturated = 0
        self.hist = np.zeros(len(BINS) - 1, dtype=np.int64)

    def add(self, codes: np.ndarray, saturated: int = 0):
        codes = np.asarray(codes)
        if codes.size == 0:
            return
        mn, mx = int(codes.min()), int(codes.max())
        self.min = mn if self.min is None else min(self.min, mn)
        self.max = mx if self.max is None else max(self.max, mx)
        self.count += codes.size
        nz = codes[codes != 0]
        self.zeros += codes.size - nz.size
        self.saturated += int(saturated)
        if nz.size:
            mag = np.log2(np.abs(nz).astype(np.float64)) - self.f["frac"]
            self.hist += np.histogram(np.clip(mag, BINS[0], BINS[-1] - 1e-9), BINS)[0]

    def record(self) -> dict:
        lo, hi = code_range(self.f)
        scale = 2.0 ** -self.f["frac"]
        used = max(abs(self.min or 0), abs(self.max or 0))
        return {
            "format": fmt_name(self.f), "code_min": self.min, "code_max": self.max,
            "min": None if self.min is None else self.min * scale, "max": None if self.max is None else self.max * scale,
            "format_code_min": lo, "format_code_max": hi, "format_min": lo * scale, "format_max": hi * scale,
            "bits_used": (used.bit_length() + (1 if self.f["signed"] else 0)) if used else 0,
            "count": self.count, "zeros": self.zeros, "saturated": self.saturated,
        }


def profile(qm: QModel, n: int = 1000, seed: int = PROFILE_SEED, progress=None) -> dict:
    """Observed ranges of every tensor of ``qm`` over ``n`` random z.

    Parameters
    ----------
    qm : QModel
    n : int
        Number of standard-normal z (each gives 3 planes).
    seed : int
    progress : callable, optional
        ``progress(k)`` after each chunk of ``k`` planes (for a tqdm bar).

    Returns
    -------
    dict
        ``{"n_z", "seed", "z_saturated", "pass_saturated", "layers": [{"layer", "weight", "bias",
        "acc", "output"}, ...]}``; each tensor record as :meth:`_Tensor.record`.
    """
    from golden.fixed import fixed_layers

    z, z_sat = quantize_z(np.random.default_rng(seed).standard_normal((n, qm.nz)), qm.nz)
    u = pass_inputs(qm, z)
    zz = z.astype(np.int64)
    v = qm.v.astype(np.int64)
    pass_sat = int(np.count_nonzero((zz + v[0] < -32768) | (zz + v[0] > 32767)) +
                   np.count_nonzero((zz + v[1] < -32768) | (zz + v[1] > 32767)))
    planes = u.transpose(1, 0, 2).reshape(3 * n, qm.nz)
    stats = []
    for l in range(1, 5):
        rec = qm.layers[l - 1]
        w = _Tensor(rec["weight"], "weight")
        w.add(qm.w[l])
        b = _Tensor(rec["bias"], "bias")
        b.add(qm.b[l])
        stats.append({"weight": w, "bias": b, "acc": _Tensor(rec["acc"], "acc"),
                      "output": _Tensor(rec["output"], "activation" if l < 4 else "tanh index")})
    step = 384
    for i in range(0, planes.shape[0], step):
        lay = fixed_layers(qm, planes[i:i + step])
        for l in range(1, 5):
            acc = lay[l - 1]["acc"]
            r = rshift_rnd(acc, qm.shift(l))
            lo, hi = code_range(qm.layers[l - 1]["output"])
            sat = int(np.count_nonzero(r > hi) + (np.count_nonzero(r < lo) if l == 4 else 0))
            stats[l - 1]["acc"].add(acc)
            stats[l - 1]["output"].add(lay[l - 1]["out"], sat)
        if progress:
            progress(min(step, planes.shape[0] - i))
    layers = []
    for l, s in enumerate(stats, start=1):
        layers.append({"layer": l, **{k: t.record() for k, t in s.items()},
                       "hist": {k: t.hist.tolist() for k, t in s.items() if k != "bias"}})
    return {"n_z": n, "seed": seed, "z_saturated": z_sat, "pass_saturated": pass_sat,
            "bins_log2": BINS.tolist(), "layers": layers}


def _range(r: dict) -> str:
    if r["min"] is None:
        return "-"
    return f"[{r['min']:.4g}, {r['max']:.4g}]"


def table(prof: dict) -> list[list[str]]:
    """Rows ``[layer, tensor, format, observed range, format range, bits used, saturated]``."""
    rows = []
    for lay in prof["layers"]:
        for key in ("weight", "bias", "acc", "output"):
            r = lay[key]
            name = key if key != "output" else ("activation" if lay["layer"] < 4 else "tanh index")
            rows.append([str(lay["layer"]), name, r["format"], _range(r),
                         f"[{r['format_min']:.4g}, {r['format_max']:.4g}]",
                         f"{r['bits_used']}/{int(r['format'].split('(')[1].split(',')[0])}", str(r["saturated"])])
    return rows


HEAD = ["layer", "tensor", "format", "observed", "format range", "bits used", "saturated"]


def text_table(prof: dict) -> str:
    """The table as aligned plain text (for the terminal)."""
    rows = [HEAD] + table(prof)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def markdown(prof: dict, title: str, pngs: list[str]) -> str:
    """``report.md``: the table, input saturations and the histogram pictures."""
    lines = [f"# {title}", "",
             f"Observed over {prof['n_z']} random z (standard normal, seed {prof['seed']}), three passes each "
             f"({3 * prof['n_z']} planes). Ranges in real units; codes saturated = values the rules clipped.", "",
             f"* z elements saturated by rule 6: {prof['z_saturated']}",
             f"* z+v elements saturated by rule 1: {prof['pass_saturated']}",
             "* Tanh-index saturations (layer 4) are harmless: beyond the index range [-4, 4) the float "
             "pixel of rule 5 is already 0 or 255, as are the table's end entries.", "",
             "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in table(prof):
        lines.append("| " + " | ".join(r) + " |")
    lines += ["", "Histograms of log2|value| (log-count bars; red lines: the format's step and largest magnitude):", ""]
    lines += [f"![layer {i + 1}]({p})" for i, p in enumerate(pngs)]
    return "\n".join(lines) + "\n"


def histogram_png(lay: dict, bins, path) -> None:
    """One PNG for a layer: a panel per tensor (weight, acc, output), log-count bars, limits marked."""
    from base.fileio import atomic_path

    panels = [("weight", "weights"), ("acc", "accumulators"),
              ("output", "activations" if lay["layer"] < 4 else "tanh index")]
    w, ph, left, top = 720, 170, 50, 22
    img = Image.new("RGB", (w, ph * len(panels) + 24), "white")
    d = ImageDraw.Draw(img)
    bins = np.asarray(bins)
    x0, x1 = bins[0], bins[-1]

    def xpix(v):
        return left + (v - x0) / (x1 - x0) * (w - left - 10)

    for k, (key, label) in enumerate(panels):
        y0 = k * ph + top
        y1 = y0 + ph - top - 10
        hist = np.asarray(lay["hist"][key], dtype=np.float64)
        r = lay[key]
        d.text((left, y0 - 16), f"layer {lay['layer']} {label}  {r['format']}  saturated {r['saturated']}",
               fill="black")
        d.line([(left, y1), (w - 10, y1)], fill="black")
        top_log = math.log10(hist.max() + 1) if hist.max() > 0 else 1.0
        for i, c in enumerate(hist):
            if c <= 0:
                continue
            hgt = math.log10(c + 1) / top_log * (y1 - y0)
            d.rectangle([xpix(bins[i]), y1 - hgt, xpix(bins[i + 1]) - 1, y1], fill=(70, 110, 180))
        step, big = _fmt_limits_rec(r)
        for val in (step, big):
            lv = math.log2(val)
            if x0 <= lv <= x1:
                d.line([(xpix(lv), y0), (xpix(lv), y1)], fill="red", width=2)
        for t in range(int(x0), int(x1) + 1, 4):
            d.line([(xpix(t), y1), (xpix(t), y1 + 3)], fill="black")
            d.text((xpix(t) - 6, y1 + 3), str(t), fill="black")
    d.text((left, img.height - 14), "log2|value| (real units); bar height = log10(count + 1)", fill="black")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def _fmt_limits_rec(r: dict) -> tuple[float, float]:
    step = (r["format_max"] / r["format_code_max"]) if r["format_code_max"] else 1.0
    return step, max(abs(r["format_min"]), r["format_max"])


def write_report(prof: dict, folder, title: str = "Quantized-model range profile") -> list:
    """Write ``report.md``, ``report.json`` and ``layerN.png`` into ``folder``; return the paths."""
    from base.fileio import atomic_write, ensure_dir

    folder = ensure_dir(folder)
    pngs = []
    for lay in prof["layers"]:
        name = f"layer{lay['layer']}.png"
        histogram_png(lay, prof["bins_log2"], folder / name)
        pngs.append(name)
    atomic_write(folder / "report.json", json.dumps(prof, indent=1))
    atomic_write(folder / "report.md", markdown(prof, title, pngs))
    return [folder / "report.md", folder / "report.json"] + [folder / p for p in pngs]
