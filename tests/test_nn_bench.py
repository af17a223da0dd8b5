"""`avatargan bench train` runs both implementations and reports their ratio (figures not judged here)."""

import json

from avatargan import cli
from avatargan.commands import bench


def test_bench_targets_are_discovered():
    assert "train" in bench.targets()


def test_bench_train_reports_numpy_torch_and_ratio(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = cli.main(["bench", "train", "--batch", "2", "--iterations", "1", "--warmup", "0",
                       "--threads", "1", "--json", str(out)])
    assert status == 0
    text = capsys.readouterr().out
    assert "numpy" in text and "pytorch" in text and "ratio" in text
    res = json.loads(out.read_text())
    assert res["target"] == "train" and res["batch"] == 2 and res["threads"] == 1
    assert res["numpy_s_per_it"] > 0 and res["torch_s_per_it"] > 0
    assert abs(res["ratio_numpy_over_torch"] - res["numpy_s_per_it"] / res["torch_s_per_it"]) < 1e-12


def test_bench_bad_option_is_a_user_error():
    assert cli.main(["bench", "train", "--iterations", "0"]) == 2
