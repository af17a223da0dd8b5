"""``avatargan bench codebook``: block RAM a weight codebook would save, and what it costs in fidelity.

For index widths ``b`` (the weights of a layer restricted to its ``2**b`` best 8-bit codes,
:mod:`golden.codebook`), applied to every layer or to layer 1 only (55 % of the weights of the
default model): the weight-ROM DP16KD count at 128 lanes (85F) and 64 lanes (45F) in the engine's
1024-word banks, and the PSNR of the fixed-point model against the float model on the same z
(:func:`golden.fidelity.fidelity`), first with the codes chosen after training, then (``--finetune-iters
N``) after the distillation of :func:`golden.codebook.distill` (what ``avatargan quantize
--codebook-bits B`` does); the PSNR is always against the original float model.
"""

from __future__ import annotations

HELP = "weight codebooks: DP16KD of the weight ROM vs fixed-point PSNR (study for a smaller weight store)"

#: The engine's weight-ROM bank depth and a DP16KD's width in that shape (rtl.weights).
_BANK, _WIDTH = 1024, 18


def configure(parser) -> None:
    parser.add_argument("--checkpoint", default=None, help="float checkpoint (default: the shipped models/default.npz)")
    parser.add_argument("--bits", default="4,5,6,7", help="index widths to try (default 4,5,6,7)")
    parser.add_argument("--count", type=int, default=300, help="random z for the PSNR (default 300)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of those z (default 12345)")
    parser.add_argument("--finetune-iters", type=int, default=0, metavar="N",
                        help="also fine-tune each all-layer codebook for N steps (golden.codebook.distill; "
                             "about 4 minutes per 1000 on one core); 0: no fine-tuned rows (default)")


def _rams(words: int, lanes: int, bits: int) -> int:
    return -(-words // _BANK) * -(-lanes * bits // _WIDTH)


def _weight_rams(header, lanes: int, bits_per_layer: list) -> int:
    """DP16KD of the weight ROM when layers of equal index width share a ROM of that width."""
    from rtl.config import plan_layers

    words = {}
    for lp, b in zip(plan_layers(header, lanes), bits_per_layer):
        words[b] = words.get(b, 0) + lp.weight_words
    return sum(_rams(w, lanes, b) for b, w in words.items())


def run(args) -> dict:
    from base.errors import UserError
    from golden.checkpoint import load_generator
    from golden.codebook import restricted_model
    from golden.fidelity import fidelity
    from golden.quantize import quantize_checkpoint

    if args.checkpoint is None:
        from avatargan.commands.demo import SHIPPED_MODEL
        args.checkpoint = str(SHIPPED_MODEL)
    try:
        bits = sorted({int(b) for b in args.bits.split(",")})
    except ValueError:
        raise UserError(f"--bits must be integers separated by commas, got {args.bits!r}") from None
    if not bits or min(bits) < 1 or max(bits) > 8:
        raise UserError(f"--bits must be between 1 and 8, got {args.bits!r}")
    if not 0 <= args.finetune_iters <= 100_000:
        raise UserError(f"--finetune-iters must be between 0 and 100000, got {args.finetune_iters}")
    if not 1 <= args.count <= 10_000:
        raise UserError(f"--count must be between 1 and 10000, got {args.count}")
    qm, _, _ = quantize_checkpoint(args.checkpoint, n_calib=1000)
    gen = load_generator(args.checkpoint)
    n_layers = len(qm.channels) - 1
    words_128 = _layer_words(qm.header, 128)
    rows = []

    def row(name, b, layers, q=None):
        q = q if q is not None else qm if b == 8 else restricted_model(qm, b, layers)
        per_layer = [b if (l + 1) in layers else 8 for l in range(n_layers)]
        f = fidelity(gen, q, n=args.count, seed=args.seed)
        r = {"scope": name, "index_bits": b, "dp16kd_85f_128": _weight_rams(qm.header, 128, per_layer),
             "dp16kd_45f_64": _weight_rams(qm.header, 64, per_layer),
             "weight_rom_bits_128": sum(w * 128 * pb for w, pb in zip(words_128, per_layer)),
             "psnr_db": round(f["psnr_db"], 2), "psnr_min_db": round(f["psnr_min_db"], 2)}
        rows.append(r)
        print(f"{name:<14} {b} bits: weight ROM {r['dp16kd_85f_128']:>3} DP16KD at 128 lanes, "
              f"{r['dp16kd_45f_64']:>3} at 64; PSNR {r['psnr_db']:.2f} dB (worst avatar {r['psnr_min_db']:.2f})")

    row("8-bit codes", 8, list(range(1, n_layers + 1)))
    for b in bits:
        row("all layers", b, list(range(1, n_layers + 1)))
    for b in bits:
        row("layer 1 only", b, [1])
    if args.finetune_iters:
        import sys
        import tempfile
        from pathlib import Path

        from tqdm import tqdm

        from golden.checkpoint import save_generator
        from golden.codebook import distill

        for b in bits:
            with tqdm(total=args.finetune_iters, desc=f"fine-tuning {b}-bit codebooks", unit="step",
                      file=sys.stderr) as bar:
                student = distill(gen, b, iterations=args.finetune_iters, progress=bar.update)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "student.npz"
                save_generator(path, student, {"preset": "codebook"})
                q, _, _ = quantize_checkpoint(path, n_calib=1000, weight_rule="max")   # codes kept
            row(f"fine-tuned {args.finetune_iters}", b, list(range(1, n_layers + 1)), q)
    return {"checkpoint": args.checkpoint, "channels": list(qm.channels), "count": args.count,
            "seed": args.seed, "finetune_iters": args.finetune_iters, "rows": rows}


def _layer_words(header, lanes):
    from rtl.config import plan_layers

    return [lp.weight_words for lp in plan_layers(header, lanes)]
