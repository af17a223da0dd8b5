"""``avatargan train``: train the GAN in pure NumPy (see :mod:`golden.train`)."""

from __future__ import annotations

from base.contract import DEFAULT_CHANNELS

NAME = "train"
HELP = "train the Generator and both discriminators (pure NumPy, Algorithm 1 of the seed)"
DESCRIPTION = (
    "Train the avatar GAN in pure NumPy. RUN_DIR receives checkpoint.npz (every "
    "--checkpoint-every iterations and at the end, written atomically), generator.npz (the "
    "Generator alone, at the end), losses.csv and losses.png. Ctrl-C saves and exits; "
    "--resume continues bit-for-bit from RUN_DIR/checkpoint.npz. Presets: 'seed' (the paper's "
    "settings) and 'default' (what ships: DiffAugment and balanced learning rates)."
)


#: Widest layer --channels/--d-channels accept: 1024 x 1024 x 4 x 4 weights with gradients and
#: Adam moments are ~270 MB per layer; 100 000 ran out of memory.
MAX_WIDTH = 1024
#: Most iterations (a hundred times the presets; at ~0.2 s each, about two days).
MAX_ITERATIONS = 1_000_000
#: Largest minibatch (the dataset limit of `avatargan dataset` is 9 999 images).
MAX_BATCH = 4096
#: Most threads (more than any machine here has cores).
MAX_THREADS = 1024
_WHY = {"iterations": "about 2 days at 0.2 s per iteration", "batch": "memory grows with the batch",
        "checkpoint_every": "the run's iteration limit"}


def configure(parser) -> None:
    parser.add_argument("--data", required=True, metavar="PATH",
                        help="dataset .npz from `avatargan dataset` (images: uint8 N×32×32×3) or its folder")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder for checkpoints and curves")
    parser.add_argument("--preset", help="'default' (shipped) or 'seed' (the paper's)")
    parser.add_argument("--iterations", type=int, help="total iterations (preset default: 30000; seed: 10000)")
    parser.add_argument("--batch", type=int, help="minibatch size (preset: 64)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--checkpoint-every", type=int, metavar="N", help="checkpoint period (default 500)")
    parser.add_argument("--channels", help=f"Generator widths nz,c1,c2,c3,1 (default {','.join(map(str, DEFAULT_CHANNELS))})")
    parser.add_argument("--d-channels", help="discriminator widths (default 32,64,128)")
    parser.add_argument("--ema", type=float, metavar="BETA",
                        help="keep an exponential moving average of G's weights with decay BETA (e.g. 0.999) and "
                             "write it as generator.npz (preset default: 0.999; seed: 0, off)")
    parser.add_argument("--augment", metavar="POLICY",
                        help="DiffAugment on both discriminators' inputs: comma-separated subset of "
                             "color,translation,cutout, or 'none' (preset default: all three; seed: none)")
    parser.add_argument("--minibatch-std", action="store_const", const=True,
                        help="give both discriminators the batch's standard deviation as one more feature map "
                             "(ProGAN's minibatch standard deviation; against repeated motifs)")
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR/checkpoint.npz")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="threads for the matrix products, copies and layers (default: the usable cores "
                             "that no other process keeps busy; results are the same for any N)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _ints(text, what):
    from base.errors import UserError

    if text is None:
        return None
    try:
        vals = [int(t) for t in text.split(",")]
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, got {text!r}") from None
    return vals


def run(args) -> int:
    from base.errors import UserError
    from golden.train import make_config, train

    channels = _ints(args.channels, "--channels")
    if channels is not None and (len(channels) != 5 or channels[-1] != 1 or min(channels) < 1):
        raise UserError("--channels must be nz,c1,c2,c3,1 with positive widths")
    if channels is not None and max(channels) > MAX_WIDTH:
        raise UserError(f"--channels widths must be at most {MAX_WIDTH} (wider layers need gigabytes for the "
                        f"weights and Adam state), got {max(channels)}")
    d_channels = _ints(args.d_channels, "--d-channels")
    if d_channels is not None and (not 1 <= len(d_channels) <= 5 or min(d_channels) < 1):
        raise UserError("--d-channels must be 1 to 5 positive widths")
    if d_channels is not None and max(d_channels) > MAX_WIDTH:
        raise UserError(f"--d-channels widths must be at most {MAX_WIDTH} (wider layers need gigabytes for the "
                        f"weights and Adam state), got {max(d_channels)}")
    augment = None
    if args.augment is not None:
        from golden.augment import POLICIES, DiffAugment

        augment = "" if args.augment.strip() == "none" else args.augment.strip()
        try:
            DiffAugment(augment)                      # its own check of the names
            if augment and not all(augment.split(",")):
                raise ValueError("empty name")
        except ValueError:
            raise UserError(f"--augment must be 'none' or a comma-separated subset of {','.join(POLICIES)}, "
                            f"got {args.augment!r}") from None
    for opt, limit in (("iterations", MAX_ITERATIONS), ("batch", MAX_BATCH), ("checkpoint_every", MAX_ITERATIONS)):
        value = getattr(args, opt)
        if value is not None and value > limit:
            raise UserError(f"--{opt.replace('_', '-')} must be at most {limit:,} ({_WHY[opt]}), got {value}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise UserError(f"--threads must be between 1 and {MAX_THREADS}, got {args.threads}")
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    from pathlib import Path

    data, out = Path(args.data).resolve(), Path(args.out).resolve()
    if data == out or out in data.parents:
        raise UserError(f"--out {args.out} holds the dataset {args.data}; choose another run folder")
    if args.resume:
        for opt in ("preset", "batch", "seed", "channels", "d_channels", "checkpoint_every", "ema", "minibatch_std", "augment"):
            if getattr(args, opt) is not None:
                raise UserError(f"--{opt.replace('_', '-')} cannot change on --resume (it is in the checkpoint)")
        cfg = make_config("default", iterations=args.iterations) if args.iterations else None
    else:
        cfg = make_config(args.preset or "default", iterations=args.iterations, batch=args.batch, seed=args.seed,
                          checkpoint_every=args.checkpoint_every, channels=channels, d_channels=d_channels,
                          ema=args.ema, mbstd=args.minibatch_std, augment=augment)
    summary = train(args.data, args.out, cfg, resume=args.resume, progress=not args.no_progress,
                    threads=args.threads)
    if summary["status"] == "interrupted":
        return 130
    spi = summary["seconds_per_iteration"]
    print(f"trained {summary['iteration']} iterations"
          + (f" ({spi:.3f} s/iteration)" if spi else "") + f"; checkpoint {summary['checkpoint']}")
    return 0
