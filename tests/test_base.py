"""The small helpers of base/ that several rooms share: environment changes, legacy folders, hashing."""

import hashlib
import os

import pytest

from base.environ import environment
from base.fileio import legacy_owner, sha256_file


def test_environment_sets_removes_and_restores(monkeypatch):
    monkeypatch.setenv("AG_T_KEEP", "old")
    monkeypatch.setenv("AG_T_DROP", "here")
    monkeypatch.delenv("AG_T_NEW", raising=False)
    with pytest.raises(RuntimeError):
        with environment({"AG_T_KEEP": "new", "AG_T_DROP": None, "AG_T_NEW": "1"}):
            assert os.environ["AG_T_KEEP"] == "new" and os.environ["AG_T_NEW"] == "1"
            assert "AG_T_DROP" not in os.environ
            raise RuntimeError
    assert os.environ["AG_T_KEEP"] == "old" and os.environ["AG_T_DROP"] == "here"
    assert "AG_T_NEW" not in os.environ


def test_legacy_owner():
    legacy = legacy_owner("demo", "demo.json", r"^(demo\.(json|md)|hardware\.png)$")
    assert legacy(["demo.json", "hardware.png"]) == "demo"
    assert legacy(["demo.md", "hardware.png"]) is None          # no marker
    assert legacy(["demo.json", "thesis.tex"]) is None          # a file it did not write


def test_sha256_file(tmp_path):
    data = os.urandom(3 << 20 | 5)                              # more than one 1 MiB chunk
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
