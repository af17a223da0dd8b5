"""The weights each weight-ROM word must hold, derived from the definitions (not from rtl.config).

For ``tests/test_rtl_config.py`` and ``tests/test_rtl_codebook.py``: the expected lane values of
every word of one layer, ``{address: [weight of lane j]}``, from ``w[ic, oc, ky, kx]``.
"""

KERNEL = 4


def expected_words(w, lp, lanes: int) -> dict:
    """One-tap layers: word ``base + ((g·4 + ky)·4 + kx)·icg + c``, lane ``j = o·icp + i`` holds
    ``w[c·icp + i, g·ocp + o, ky, kx]`` (idle lanes 0). Tap-parallel layers (``lp.tp == 4``): word
    ``base + py·2 + px``, lane ``j = t·icp + i`` holds the weight of tap slot ``t = 2a + b``, the
    pixel's input row ``a`` (0: ``m = oy // 2``, 1: the other one) and window column ``b`` (0:
    ``(ox − 1) // 2``, 1: the next), with kernel index ``k = o + 1 − 2·i`` (stride 2, pad 1:
    ``o = 2i − 1 + k``), taken at an inner pixel ``m = n = 2``."""
    words = {}
    if lp.tp > 1:
        for py in range(2):
            for px in range(2):
                oy, ox = 4 + py, 4 + px
                rows = [2, 1 if py == 0 else 3]
                cols = [(ox - 1) // 2, (ox - 1) // 2 + 1]
                vals = [0] * lanes
                for j in range(4 * lp.icp * lp.ocp):
                    o, rest = divmod(j, 4 * lp.icp)
                    t, i = divmod(rest, lp.icp)
                    ky, kx = oy + 1 - 2 * rows[t >> 1], ox + 1 - 2 * cols[t & 1]
                    vals[j] = int(w[i, o, ky, kx])
                words[lp.weight_base + py * 2 + px] = vals
        return words
    for g in range(lp.ocg):
        for ky in range(KERNEL):
            for kx in range(KERNEL):
                for c in range(lp.icg):
                    vals = [0] * lanes
                    for j in range(lp.ocp * lp.icp):
                        o, i = divmod(j, lp.icp)
                        vals[j] = int(w[c * lp.icp + i, g * lp.ocp + o, ky, kx])
                    words[lp.weight_base + ((g * 4 + ky) * 4 + kx) * lp.icg + c] = vals
    return words
