"""The README's main job and the seed example run end to end (quick modes)."""

from __future__ import annotations

import json

import pytest

from benchmarks import seed_example, tune_digits

pytest.importorskip("sklearn")


def test_seed_example_reaches_five(capsys):
    assert seed_example.main() == pytest.approx(5.0, abs=1e-6)
    assert "final" in capsys.readouterr().out


def test_tune_digits_quick_runs_end_to_end(tmp_path, capsys):
    accuracy = tune_digits.main(["--quick", "--out", str(tmp_path), "--n-jobs", "2"])
    out = capsys.readouterr().out
    assert 0.5 < accuracy <= 1.0
    assert "best configuration" in out and "test accuracy" in out
    lines = (tmp_path / "study.jsonl").read_text().splitlines()
    trials = [json.loads(line) for line in lines[1:]]
    assert len(trials) == 8 and all(t["status"] == "ok" for t in trials)
    if "plots skipped" not in out:
        assert (tmp_path / "pairs.png").stat().st_size > 0
        assert (tmp_path / "curves.png").stat().st_size > 0


def test_tune_digits_resume_runs_nothing_new(tmp_path, capsys):
    tune_digits.main(["--quick", "--out", str(tmp_path), "--n-jobs", "1"])
    before = (tmp_path / "study.jsonl").read_text()
    tune_digits.main(["--quick", "--out", str(tmp_path), "--n-jobs", "1", "--resume"])
    assert (tmp_path / "study.jsonl").read_text() == before
