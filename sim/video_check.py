"""Checkers of captured video: raster timing, TMDS decoding, frames, the scaled avatar, the sequence.

Everything works on per-pixel-clock samples (NumPy arrays) captured from the simulated design, and
every function raises :class:`VideoCheckError` with one line saying what is wrong and where. The
tests show that each checker fails on a wrong answer (a pixel, a sync width, a porch, a symbol).
"""

from __future__ import annotations

import numpy as np

from golden.tmds import decode

__all__ = ["VideoCheckError", "unpack_video", "check_timing", "decode_tmds", "split_frames", "avatar_from_frame",
           "match_sequence", "runs"]


class VideoCheckError(AssertionError):
    """Captured video that does not satisfy a check."""


def unpack_video(words: np.ndarray) -> dict:
    """Fields of ``rtl.video.rgb_layout`` words (r 0–7, g 8–15, b 16–23, hsync 24, vsync 25, de 26)."""
    w = np.asarray(words, dtype=np.int64)
    return {"r": w & 0xFF, "g": (w >> 8) & 0xFF, "b": (w >> 16) & 0xFF, "hsync": (w >> 24) & 1,
            "vsync": (w >> 25) & 1, "de": (w >> 26) & 1}


def runs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of the runs of ones in a 0/1 array (runs touching either end excluded)."""
    x = np.asarray(x, dtype=np.int8)
    d = np.diff(np.concatenate([[0], x, [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    keep = (starts > 0) & (ends < x.size)
    return starts[keep], (ends - starts)[keep]


def check_timing(hsync, vsync, de, timing) -> int:
    """Check sync widths, porches, line and frame lengths against ``timing`` (``rtl.video.VideoTiming``).

    ``hsync``/``vsync`` are the pin levels (active low when ``timing.sync_negative``), ``de`` the data
    enable, one sample per pixel clock. Checked for every complete line and frame in the capture:
    hsync every ``h_total`` clocks, ``h_sync`` wide; DE ``h_active`` wide, hsync starting ``h_front``
    clocks after DE falls, DE rising ``h_back`` clocks after hsync ends; ``v_active`` DE lines per
    frame; vsync every ``h_total · v_total`` clocks, ``v_sync`` lines wide, starting ``v_front`` lines
    after the last DE line starts plus one line, and the first DE line ``v_back`` lines after it ends.
    The vsync edges are checked to coincide with a line's start (the design changes vsync at the
    first clock of a line). Returns the number of complete frames checked (at least one required).
    """
    t = timing
    pol = 1 if t.sync_negative else 0
    hs = (np.asarray(hsync) ^ pol).astype(np.int8)
    vs = (np.asarray(vsync) ^ pol).astype(np.int8)
    de = np.asarray(de).astype(np.int8)
    hs_st, hs_len = runs(hs)
    vs_st, vs_len = runs(vs)
    de_st, de_len = runs(de)
    if vs_st.size < 2:
        raise VideoCheckError(f"fewer than two vsync pulses in {hs.size} clocks: no complete frame")
    for what, lens, want in (("hsync", hs_len, t.h_sync), ("DE", de_len, t.h_active),
                             ("vsync", vs_len, t.v_sync * t.h_total)):
        bad = np.flatnonzero(lens != want)
        if bad.size:
            raise VideoCheckError(f"{what} pulse {bad[0]} is {lens[bad[0]]} clocks wide, expected {want}")
    for what, st, want in (("hsync", hs_st, t.h_total), ("vsync", vs_st, t.h_total * t.v_total)):
        per = np.diff(st)
        bad = np.flatnonzero(per != want)
        if bad.size:
            raise VideoCheckError(f"{what} period {bad[0]} is {per[bad[0]]} clocks, expected {want}")
    # Horizontal porches: each DE run ends, h_front later hsync starts; hsync ends, h_back later DE rises.
    de_end = de_st + de_len
    i = np.searchsorted(hs_st, de_end)
    ok = i < hs_st.size
    fp = hs_st[i[ok]] - de_end[ok]
    if np.any(fp != t.h_front):
        k = int(np.flatnonzero(fp != t.h_front)[0])
        raise VideoCheckError(f"horizontal front porch after DE run {k} is {fp[k]} clocks, expected {t.h_front}")
    hs_end = hs_st + t.h_sync
    j = np.searchsorted(hs_end, de_st, side="right") - 1
    ok = j >= 0
    bp = de_st[ok] - hs_end[j[ok]]
    if np.any(bp != t.h_back):
        k = int(np.flatnonzero(bp != t.h_back)[0])
        raise VideoCheckError(f"horizontal back porch before DE run {k} is {bp[k]} clocks, expected {t.h_back}")
    # Vertical: per complete frame (vsync start to vsync start).
    frames = 0
    for a, b in zip(vs_st[:-1], vs_st[1:]):
        v_end = a + t.v_sync * t.h_total
        lines = de_st[(de_st >= v_end) & (de_st < b)]
        if lines.size != t.v_active:
            raise VideoCheckError(f"frame at clock {a}: {lines.size} DE lines, expected {t.v_active}")
        if np.any(np.diff(lines) != t.h_total):
            raise VideoCheckError(f"frame at clock {a}: DE lines are not one line apart")
        back = lines[0] - v_end
        if back != t.v_back * t.h_total:
            raise VideoCheckError(f"frame at clock {a}: vertical back porch is {back / t.h_total:g} lines, "
                                  f"expected {t.v_back}")
        front = b - (lines[-1] + t.h_total)
        if front != t.v_front * t.h_total:
            raise VideoCheckError(f"frame at clock {a}: vertical front porch is {front / t.h_total:g} lines, "
                                  f"expected {t.v_front}")
        frames += 1
    return frames


#: Decoded symbol table: for each 10-bit value, (is_data, value).
_TABLE = [decode(s) for s in range(1024)]
_IS_DATA = np.array([k == "data" for k, _ in _TABLE], dtype=bool)
_VALUE = np.array([v for _, v in _TABLE], dtype=np.int64)
_IS_CTRL = np.array([k == "ctrl" for k, _ in _TABLE], dtype=bool)


def decode_tmds(words: np.ndarray) -> dict:
    """Decode 30-bit TMDS captures (channel 0 bits 0–9, 1 bits 10–19, 2 bits 20–29) to RGB, DE, syncs.

    DE is where the three channels carry data symbols (they must agree); HSYNC and VSYNC are C0 and
    C1 of channel 0's control symbols, held through the active picture. A symbol that is neither a
    control symbol nor one a DVI encoder can produce in that position is not checked here (the
    encoder's own tests do that); disagreeing channels raise.
    """
    w = np.asarray(words, dtype=np.int64)
    syms = [(w >> (10 * c)) & 0x3FF for c in range(3)]
    data = [_IS_DATA[s] for s in syms]
    if not (np.array_equal(data[0], data[1]) and np.array_equal(data[0], data[2])):
        k = int(np.flatnonzero((data[0] != data[1]) | (data[0] != data[2]))[0])
        raise VideoCheckError(f"TMDS channels disagree on data/control at clock {k}")
    for c in (1, 2):
        ctl = np.flatnonzero(~data[c] & (_VALUE[syms[c]] != 0))
        if ctl.size:
            raise VideoCheckError(f"channel {c} sends control {(_VALUE[syms[c]])[ctl[0]]} at clock {ctl[0]} "
                                  f"(only channel 0 carries HSYNC/VSYNC)")
    de = data[0].astype(np.int8)
    ctrl = np.where(data[0], -1, _VALUE[syms[0]])
    # Hold the last control value through the data periods.
    idx = np.where(ctrl >= 0, np.arange(ctrl.size), 0)
    np.maximum.accumulate(idx, out=idx)
    held = ctrl[idx]
    held = np.where(held < 0, 0, held)
    return {"b": np.where(data[0], _VALUE[syms[0]], 0), "g": np.where(data[1], _VALUE[syms[1]], 0),
            "r": np.where(data[2], _VALUE[syms[2]], 0), "de": de, "hsync": held & 1, "vsync": (held >> 1) & 1}


def split_frames(sig: dict, timing) -> list[np.ndarray]:
    """The complete frames of a capture as uint8 ``(v_active, h_active, 3)`` RGB arrays.

    A frame is the DE pixels between two vsync starts; only frames with exactly
    ``v_active · h_active`` DE pixels are returned (a capture's partial first frame is dropped by
    starting after the first vsync).
    """
    t = timing
    pol = 1 if t.sync_negative else 0
    vs = (np.asarray(sig["vsync"]) ^ pol).astype(np.int8)
    vs_st, _ = runs(vs)
    de = np.asarray(sig["de"]).astype(bool)
    rgb = np.stack([sig["r"], sig["g"], sig["b"]], axis=-1)
    frames = []
    for a, b in zip(vs_st[:-1], vs_st[1:]):
        px = rgb[a:b][de[a:b]]
        if px.shape[0] != t.v_active * t.h_active:
            raise VideoCheckError(f"frame at clock {a} has {px.shape[0]} DE pixels, expected "
                                  f"{t.v_active * t.h_active}")
        frames.append(px.reshape(t.v_active, t.h_active, 3).astype(np.uint8))
    return frames


def avatar_from_frame(frame: np.ndarray, timing, size: int = 32) -> np.ndarray:
    """The ``size × size`` RGB avatar shown in ``frame``: each avatar pixel must fill its
    ``zoom × zoom`` block, everything outside the avatar must be black. Returns uint8 ``(size, size, 3)``."""
    zoom = timing.scale(size)
    x0, y0 = timing.origin(size)
    side = size * zoom
    img = frame[y0:y0 + side, x0:x0 + side]
    av = img[::zoom, ::zoom]
    up = np.repeat(np.repeat(av, zoom, axis=0), zoom, axis=1)
    diff = np.argwhere(np.any(up != img, axis=-1))
    if diff.size:
        y, x = diff[0]
        raise VideoCheckError(f"screen pixel ({x0 + x}, {y0 + y}) differs from its avatar pixel "
                              f"({x // zoom}, {y // zoom})")
    outside = frame.copy()
    outside[y0:y0 + side, x0:x0 + side] = 0
    nz = np.argwhere(np.any(outside != 0, axis=-1))
    if nz.size:
        y, x = nz[0]
        raise VideoCheckError(f"screen pixel ({x}, {y}) outside the avatar is not black")
    return av.copy()


def match_sequence(avatars: list, sequences: list) -> list[tuple[int, int]]:
    """Place each displayed avatar in the expected sequences, frame by frame.

    ``sequences`` is a list of arrays ``(N_i, size, size, 3)``: the avatars the golden model makes
    for each seed of the run, in order. A frame may show the same avatar as the frame before, the
    next one of the current sequence, or the first one of the next sequence (a re-seed); frames
    before the first avatar must be black. Returns ``(sequence, index)`` per frame, ``(-1, -1)`` for
    the black ones. Raises on the first frame that fits none of these.
    """
    out, cur = [], (-1, -1)
    for f, av in enumerate(avatars):
        cands = []
        s, i = cur
        if s >= 0:
            cands.append((s, i))
            if i + 1 < len(sequences[s]):
                cands.append((s, i + 1))
        if s + 1 < len(sequences):
            cands.append((s + 1, 0))
        hit = next(((ss, ii) for ss, ii in cands if np.array_equal(av, sequences[ss][ii])), None)
        if hit is None:
            if s < 0 and not av.any():
                out.append(cur)
                continue
            near = min(cands, key=lambda c: int(np.count_nonzero(av != sequences[c[0]][c[1]])))
            n = int(np.count_nonzero(np.any(av != sequences[near[0]][near[1]], axis=-1)))
            raise VideoCheckError(f"frame {f}: the avatar is none of the expected ones ({n} pixels differ from "
                                  f"sequence {near[0]} avatar {near[1]}, the nearest)")
        cur = hit
        out.append(cur)
    return out
