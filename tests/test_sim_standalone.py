"""The standalone mode on Verilator: whole video frames captured, timing checked, TMDS decoded, avatars
compared with the golden model pixel for pixel; the buttons; the real 640×480 raster's counters.

What is simulated: ``StandaloneLogic`` (latent walk → tiny Generator → dual-clock frame buffer →
video → TMDS encoders) with a scaled video mode (72×66 active, 90×73 total: the same logic with
other constants, zoom 2) so that 20 frames take seconds; the real 640×480 mode's raster counters
alone (``VideoOut``), recorded by their edges. Not simulated: the PLLs, the 10:1 serializer's
ODDRX1F primitives (the serializer's logic is unit-tested in amaranth.sim) and anything after
place and route.
"""


import numpy as np
import pytest

from golden.fixed import fixed_rgb
from golden.noise import walk_z
from golden.random_models import random_qmodel
from rtl.standalone import BUTTONS, StandaloneLogic
from rtl.top import Generator
from rtl.video import VGA_640x480, VideoTiming
from sim import standalone
from sim import video_check as vc

TINY = (8, 8, 4, 4, 1)
#: Scaled mode for simulation: h 72 + 4 + 8 + 6 = 90, v 66 + 2 + 2 + 3 = 73; zoom 2, origin (4, 1).
SMALL = VideoTiming(72, 4, 8, 6, 66, 2, 2, 3)
SEED, STEPS = 5, 2
FRAME = SMALL.h_total * SMALL.v_total
#: Button presses at the start of these video frames (split frame index = video frame − 1).
PAUSE, STEP, RESEED, RUN, FRAMES = 6, 11, 13, 14, 20


@pytest.fixture(scope="module")
def run():
    qm = random_qmodel(TINY, seed=1, std=0.3)
    logic = StandaloneLogic(Generator.from_model(qm, lanes=4), qm.nz, SMALL, steps_log2=STEPS, seed=SEED, debounce=4)
    b = {name: i for i, name in enumerate(BUTTONS)}
    presses = [(PAUSE * FRAME, b["pause"], 20), (STEP * FRAME, b["step"], 20), (RESEED * FRAME, b["reseed"], 20),
               (RUN * FRAME, b["pause"], 20)]
    # Engine clock 8 × the pixel clock: a frame is 52 560 engine cycles against 28 030 per tiny avatar
    # (on the board: 1.27 M cycles of 76 MHz per frame against 97 716 per avatar).
    res = standalone.capture(logic, FRAMES * FRAME, presses=presses, pix_ns=40, sync_ns=5, build_root="build/sim")
    res["qm"] = qm
    res["rgb"] = vc.unpack_video(res["video"])
    res["dec"] = vc.decode_tmds(res["tmds"])
    res["frames"] = vc.split_frames(res["rgb"], SMALL)
    return res


def golden_avatars(qm, seed, n):
    return fixed_rgb(qm, walk_z(qm.nz, seed, STEPS, n)).transpose(0, 2, 3, 1)


def test_timing_of_pre_tmds_and_decoded_tmds(run):
    """Every complete line and frame of the capture: sync widths, porches, totals (both outputs)."""
    n = vc.check_timing(run["rgb"]["hsync"], run["rgb"]["vsync"], run["rgb"]["de"], SMALL)
    m = vc.check_timing(run["dec"]["hsync"], run["dec"]["vsync"], run["dec"]["de"], SMALL)
    assert n >= FRAMES - 2 and m >= FRAMES - 2


def test_tmds_frames_equal_rgb_frames(run):
    tf = vc.split_frames(run["dec"], SMALL)
    assert len(tf) == len(run["frames"])
    for a, b in zip(tf, run["frames"]):
        assert np.array_equal(a, b)


def test_displayed_avatars_are_the_golden_walk(run):
    """Frame by frame the avatar equals the golden model's for the walk's z sequence; new avatar every
    frame while running; pause freezes it (after the avatars already in flight), step shows exactly
    one more, re-seed restarts the walk from the seed the design reports."""
    qm = run["qm"]
    new_seed = int(run["seed"][-1])
    assert new_seed != SEED and int(run["seed"][0]) == SEED
    seqs = [golden_avatars(qm, SEED, 16), golden_avatars(qm, new_seed, 8)]
    avatars = [vc.avatar_from_frame(f, SMALL) for f in run["frames"]]
    pos = vc.match_sequence(avatars, seqs)
    first = next(i for i, p in enumerate(pos) if p != (-1, -1))
    assert first <= 2, pos
    split = [v - 1 for v in (PAUSE, STEP, RESEED, RUN)]     # split frame j = video frame j + 1
    p, s, r, u = split
    # Running: one new avatar per frame.
    assert [pos[i][1] for i in range(first, p + 1)] == list(range(p + 1 - first)), pos
    # Paused: at most three avatars in flight (frame buffer, Generator, z stream) still appear, then frozen.
    frozen = pos[s]
    assert pos[s - 1] == frozen and 0 <= frozen[1] - pos[p][1] <= 3, pos
    # Step: exactly one more, then frozen until the walk runs again.
    assert pos[r] == (0, frozen[1] + 1) and pos[u] == pos[r], pos
    # Re-seeded and running: the new walk from its first avatar, one per frame.
    tail = [q for q in pos[u + 1:] if q[0] == 1]
    assert tail and tail[0] == (1, 0) and [q[1] for q in tail] == list(range(len(tail))), pos
    assert len(tail) >= 3


def test_frame_png(run, tmp_path):
    """A captured frame as PNG (what the README shows), equal to the frame it was written from."""
    from PIL import Image

    frame = run["frames"][4]
    path = tmp_path / "frame.png"
    Image.fromarray(frame).save(path)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), frame)


# ------------------------------------------------------------------- every checker fails on a wrong answer

def test_timing_checker_fails_on_wrong_sync_and_porch(run):
    rgb = run["rgb"]
    hs, vs, de = rgb["hsync"].copy(), rgb["vsync"].copy(), rgb["de"].copy()
    starts, _ = vc.runs(1 - hs)
    bad = hs.copy()
    bad[starts[10] + SMALL.h_sync] = 0                    # one hsync pulse a clock too wide
    with pytest.raises(vc.VideoCheckError, match="hsync pulse"):
        vc.check_timing(bad, vs, de, SMALL)
    bad = de.copy()
    d0, dl = vc.runs(de)
    bad[d0[20] + dl[20]] = 1                              # one DE line a clock too long
    with pytest.raises(vc.VideoCheckError, match="DE pulse"):
        vc.check_timing(hs, vs, bad, SMALL)
    vst, _ = vc.runs(1 - vs)
    bad = vs.copy()
    bad[vst[2] + SMALL.v_sync * SMALL.h_total] = 0        # vsync a clock too long
    with pytest.raises(vc.VideoCheckError, match="vsync"):
        vc.check_timing(hs, bad, de, SMALL)
    other = VideoTiming(72, 5, 8, 5, 66, 2, 2, 3)         # same totals, other porches
    with pytest.raises(vc.VideoCheckError, match="porch"):
        vc.check_timing(hs, vs, de, other)
    with pytest.raises(vc.VideoCheckError, match="no complete frame"):
        vc.check_timing(hs[:FRAME], vs[:FRAME], de[:FRAME], SMALL)
    bad = dict(rgb, de=de.copy())
    bad["de"][d0[200]] = 0                                # one pixel missing from a frame (frame 3)
    with pytest.raises(vc.VideoCheckError, match="DE pixels"):
        vc.split_frames(bad, SMALL)
    bad = dict(rgb, vsync=vs.copy())
    bad["vsync"][vst[3]:vst[3] + SMALL.v_sync * SMALL.h_total] = 1     # a frame without vsync
    with pytest.raises(vc.VideoCheckError, match="vsync period"):
        vc.check_timing(hs, bad["vsync"], de, SMALL)


def test_avatar_checkers_fail_on_one_wrong_pixel(run):
    qm = run["qm"]
    frame = run["frames"][3].copy()
    x0, y0 = SMALL.origin(32)
    frame[y0 + 7, x0 + 9, 1] ^= 1                         # one screen pixel, one bit of green
    with pytest.raises(vc.VideoCheckError, match="differs from its avatar pixel"):
        vc.avatar_from_frame(frame, SMALL)
    frame = run["frames"][3].copy()
    frame[0, 0, 2] = 1                                     # a border pixel not black
    with pytest.raises(vc.VideoCheckError, match="not black"):
        vc.avatar_from_frame(frame, SMALL)
    avatars = [vc.avatar_from_frame(f, SMALL) for f in run["frames"]]
    seqs = [golden_avatars(qm, SEED, 16), golden_avatars(qm, int(run["seed"][-1]), 8)]
    k = next(i for i, a in enumerate(avatars) if a.any())
    avatars[k + 1] = avatars[k + 1].copy()
    avatars[k + 1][31, 31, 0] ^= 0x80                      # one avatar pixel wrong
    with pytest.raises(vc.VideoCheckError, match="none of the expected"):
        vc.match_sequence(avatars, seqs)
    wrong_seed = [golden_avatars(qm, SEED + 1, 16)]
    with pytest.raises(vc.VideoCheckError, match="none of the expected"):
        vc.match_sequence([vc.avatar_from_frame(f, SMALL) for f in run["frames"]], wrong_seed)


def test_tmds_decode_fails_on_a_wrong_symbol(run):
    """One symbol of one data pixel changed: the decoded frame is no longer the RGB frame."""
    tm = run["tmds"].copy()
    de = run["dec"]["de"]
    i = int(np.flatnonzero(de)[5000])
    tm[i] ^= np.uint64(1 << 13)                            # green channel, bit 3
    dec = vc.decode_tmds(tm)
    frames = vc.split_frames(dec, SMALL)
    assert any(not np.array_equal(a, b) for a, b in zip(frames, run["frames"]))
    tm = run["tmds"].copy()
    tm[i] = (tm[i] & ~np.uint64(0x3FF)) | np.uint64(0b1101010100)   # blue sends control in the picture
    with pytest.raises(vc.VideoCheckError, match="disagree"):
        vc.decode_tmds(tm)


# ------------------------------------------------------------------- the real 640×480 raster

def test_real_640x480_raster_counters():
    """VideoOut with the 640×480@60 constants, 3 frames recorded by their edges: 800 × 525 clocks,
    hsync 96 / front 16 / back 48 clocks, vsync 2 / front 10 / back 33 lines, 480 lines of 640 pixels."""
    t = VGA_640x480
    assert (t.h_total, t.v_total) == (800, 525)
    res = standalone.timing_edges(t, 3 * t.h_total * t.v_total + 5000, build_root="build/sim")
    assert vc.check_timing(res["hsync"], res["vsync"], res["de"], t) >= 2
    assert (res["hsync"][0], res["vsync"][0]) == (1, 1)          # negative sync: idle high
    with pytest.raises(vc.VideoCheckError):
        vc.check_timing(res["hsync"], res["vsync"], res["de"], VideoTiming(640, 16, 96, 48, 480, 11, 2, 32))
