"""`avatargan bench train` runs both implementations at each thread count and reports their ratio
(figures not judged here)."""

import json

from avatargan import cli
from avatargan.commands import bench


def test_bench_targets_are_discovered():
    assert "train" in bench.targets()


def test_bench_train_reports_numpy_torch_and_ratio(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = cli.main(["bench", "train", "--batch", "2", "--iterations", "1", "--warmup", "0",
                       "--threads", "2,1", "--profile", "--json", str(out), "--out", str(tmp_path / "md")])
    assert status == 0
    text = capsys.readouterr().out
    assert "| NumPy s/iteration |" in text and "| PyTorch s/iteration |" in text and "NumPy / PyTorch" in text
    assert "| 1 thread | 2 threads |" in text
    res = json.loads(out.read_text())
    assert res["target"] == "train" and res["batch"] == 2 and res["threads"] == [1, 2]
    assert [r["threads"] for r in res["runs"]] == [1, 2]
    for r in res["runs"]:
        assert r["numpy_s_per_it"] > 0 and r["torch_s_per_it"] > 0
        assert 0 < r["numpy_main_thread_cpu_s_per_it"] <= r["numpy_cpu_s_per_it"] + 1e-3
        assert abs(r["ratio_numpy_over_torch"] - r["numpy_s_per_it"] / r["torch_s_per_it"]) < 1e-12
        rows = r["profile"]["rows"]
        assert rows["Conv2d forward"] > 0 and rows["ConvTranspose2d backward"] > 0 and rows["Adam"] > 0
        assert rows["inside the convolutions: im2col"] < rows["Conv2d forward"] + rows["ConvTranspose2d backward"]
    blas = [b for b in res["blas"] if b["user_api"] == "blas"]
    assert blas and blas[0]["internal_api"] in text            # the BLAS library is named
    assert 1 <= res["default_threads"] <= res["usable_cores"]
    assert (tmp_path / "md" / "bench_train.md").read_text() == text
    assert json.loads((tmp_path / "md" / "bench_train.json").read_text()) == res


def test_bench_bad_option_is_a_user_error():
    assert cli.main(["bench", "train", "--iterations", "0"]) == 2
