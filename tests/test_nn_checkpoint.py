"""The float checkpoint: round trip through load_generator, and a UserError for every bad file."""

import json

import numpy as np
import pytest

from base.errors import UserError
from golden.checkpoint import generator_arrays, load_generator, read_checkpoint, save_checkpoint, save_generator
from golden.models import Generator

CH = [8, 6, 4, 3, 1]


@pytest.fixture
def gen():
    return Generator(CH, np.random.default_rng(0))


def test_round_trip(tmp_path, gen):
    p = save_generator(tmp_path / "g.npz", gen, {"preset": "seed", "iteration": 7})
    back = load_generator(p)
    assert back.channels == CH
    assert back.meta["iteration"] == 7 and back.meta["preset"] == "seed"
    np.testing.assert_array_equal(back.v, gen.v)
    assert back.v.dtype == np.float32 and back.v.shape == (2, 8)
    assert set(back.params) == {"w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4"}
    assert back.params["w2"].shape == (6, 4, 4, 4)
    z = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_array_equal(back.rgb(z), gen.rgb(z))
    rgb = back.rgb(z)
    assert rgb.shape == (3, 3, 32, 32) and rgb.dtype == np.float32
    # float vs float: the G plane is the network on z + v1, but in a batch of 3N instead of N, and
    # BLAS may round a column differently in another batch size (OpenBLAS's Haswell kernels do)
    np.testing.assert_allclose(rgb[:, 1], back.plane(z + gen.v[0]), rtol=0, atol=1e-6)
    layers = back.layers(z)
    assert [a.shape for a in layers] == [(3, 6, 4, 4), (3, 4, 8, 8), (3, 3, 16, 16), (3, 1, 32, 32)]
    np.testing.assert_array_equal(np.tanh(layers[-1][:, 0]), back.plane(z))
    assert [x.name for x in tmp_path.iterdir()] == ["g.npz"]


def _write(path, meta, arrays):
    payload = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)} if meta is not None else {}
    payload.update(arrays)
    np.savez(path, **payload)
    return path


def _meta(**kw):
    m = {"format": "avatargan-checkpoint", "format_version": 1, "iteration": 0, "channels": CH, "preset": "seed"}
    m.update(kw)
    return m


def test_bad_files_are_user_errors(tmp_path, gen):
    good = generator_arrays(gen)
    cases = {
        "missing": None,
        "text": "not a zip",
        "nometa": (None, good),
        "format": (_meta(format="other"), good),
        "version": (_meta(format_version=2), good),
        "channels": (_meta(channels=[8, 6, 4, 3, 3]), good),
        "missing_key": (_meta(), {k: a for k, a in good.items() if k != "G.w3"}),
        "shape": (_meta(), dict(good, **{"G.b2": np.zeros(5, np.float32)})),
        "dtype": (_meta(), dict(good, v=good["v"].astype(np.float64))),
        "nan": (_meta(), dict(good, **{"G.w1": np.full_like(good["G.w1"], np.nan)})),
        "inf": (_meta(), dict(good, v=np.full_like(good["v"], np.inf))),
    }
    for name, spec in cases.items():
        p = tmp_path / f"{name}.npz"
        if spec == "not a zip":
            p.write_text(spec)
        elif spec is not None:
            _write(p, *spec)
        with pytest.raises(UserError) as e:
            load_generator(p)
        assert str(p) in str(e.value), name
    # the good file passes the same checker
    _write(tmp_path / "ok.npz", _meta(), good)
    load_generator(tmp_path / "ok.npz")


def test_generator_only_file_cannot_resume(tmp_path, gen):
    p = save_generator(tmp_path / "g.npz", gen)
    read_checkpoint(p)
    with pytest.raises(UserError, match="cannot be resumed"):
        read_checkpoint(p, need_all=True)


def test_save_keeps_old_file_on_failure(tmp_path, gen):
    p = save_generator(tmp_path / "g.npz", gen)
    before = p.read_bytes()
    with pytest.raises(ValueError):
        save_checkpoint(p, {"bad": object()}, {"iteration": 1, "channels": CH, "preset": "x"})
    assert p.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ["g.npz"]
