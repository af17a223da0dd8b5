"""``avatargan board``: ask a ULX3S running the board bitstream for one avatar over the serial port.

The host sends z (from ``--seed`` or a ``.npy`` file), reads the three planes back, writes the PNG
and prints the Generator's cycle count. With ``--model`` it also computes the golden model's
avatar for the same z and says whether the board's is bit-exact. Protocol: :mod:`rtl.board`.
"""

from __future__ import annotations

import sys
import time

NAME = "board"
HELP = "send z to a ULX3S running the board bitstream and write the avatar PNG"


def configure(p):
    src = p.add_mutually_exclusive_group()
    src.add_argument("--seed", type=int, default=0, help="z = standard normal draws from this seed (default 0)")
    src.add_argument("--z", metavar="FILE", help="z from a .npy file of nz floats")
    p.add_argument("--port", required=True, help="serial port of the board's FTDI, e.g. /dev/ttyUSB0")
    p.add_argument("--baud", type=int, default=None, help="serial rate (default: the bitstream's, 3000000)")
    p.add_argument("--model", help="quantized model of the bitstream: gives nz and a bit-exact check")
    p.add_argument("--nz", type=int, default=100, help="length of z when no --model is given (default 100)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the reply (default 5)")
    p.add_argument("--out", required=True, help="PNG to write (RGB, 32x32)")


def z_codes(seed: int | None, zfile: str | None, nz: int):
    """The S(16,12) codes of z from a seed or a ``.npy`` file (one vector of ``nz`` floats)."""
    import numpy as np

    from base.errors import UserError
    from golden.fixed import quantize_z

    if zfile is not None:
        from golden.npzfile import read_z

        z = read_z(zfile, nz)
        if len(z) != 1:
            raise UserError(f"z file {zfile} holds {len(z)} vectors; the board draws one")
        z = z[0].astype(np.float64)
    else:
        if seed < 0:
            raise UserError(f"--seed must be a non-negative integer, got {seed}")
        z = np.random.default_rng(seed).standard_normal(nz)
    codes, n_sat = quantize_z(z, nz=nz)
    if np.ndim(codes) != 1:
        raise UserError(f"z must hold one vector of {nz} values, got shape {np.shape(codes)}")
    if n_sat:
        print(f"avatargan board: {n_sat} z value(s) outside [-8, 8) saturated", file=sys.stderr)
    return codes


def exchange(link, zq, timeout: float):
    """Send one request on ``link`` (``write``/``read``/``reset_input_buffer``) and decode the reply."""
    from base.errors import UserError
    from gen.boardlink import decode_reply, encode_request, reply_size

    link.reset_input_buffer()
    link.write(encode_request(zq))
    want, data, t0 = reply_size(), bytearray(), time.monotonic()
    while len(data) < want and time.monotonic() - t0 < timeout:
        data += link.read(want - len(data))
    if len(data) < want:
        raise UserError(f"no full reply from the board within {timeout:g} s ({len(data)} of {want} bytes); "
                        f"is the board bitstream loaded and the port right?")
    return decode_reply(bytes(data))


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from base.errors import UserError
    from base.fileio import atomic_path
    from rtl.board import DEFAULT_BAUD

    from avatargan.commands._avatars import png_out

    png_out(args.out, inputs=[args.model, args.z])
    if not 1 <= args.nz <= 1024:
        raise UserError(f"--nz must be between 1 and 1024, got {args.nz}")
    if not 0 < args.timeout <= 3600:  # also refuses nan
        raise UserError(f"--timeout must be in (0, 3600] seconds, got {args.timeout:g}")
    if args.baud is not None and not 1 <= args.baud <= 12_000_000:
        raise UserError(f"--baud must be between 1 and 12000000 (the FTDI's limit), got {args.baud}")
    qm = None
    nz = args.nz
    if args.model:
        from golden.qmodel import load_qmodel

        qm = load_qmodel(args.model)
        nz = qm.nz
    zq = z_codes(None if args.z else args.seed, args.z, nz)
    try:
        import serial  # pyserial, only needed by this command
    except ImportError:
        raise UserError("this command needs pyserial: pip install pyserial") from None
    try:
        link = serial.Serial(args.port, args.baud or DEFAULT_BAUD, timeout=0.1)
    except (serial.SerialException, OSError, ValueError) as e:
        raise UserError(f"cannot open serial port {args.port}: {e}") from None
    with link:
        rgb, cycles = exchange(link, zq, args.timeout)
    with atomic_path(args.out, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(rgb.transpose(1, 2, 0)), mode="RGB").save(tmp, format="PNG")
    print(f"wrote {args.out}; the Generator took {cycles} cycles")
    if qm is not None:
        from golden.fixed import fixed_rgb

        gold = fixed_rgb(qm, zq[None, :])[0]
        bad = int(np.count_nonzero(gold != rgb))
        if bad:
            print(f"MISMATCH: {bad} of {rgb.size} pixels differ from the golden model", file=sys.stderr)
            return 1
        print("bit-exact with the golden model")
    return 0
