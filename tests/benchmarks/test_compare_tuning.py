"""`python -m benchmarks.compare_tuning --quick` runs the four methods at the same budget."""

from __future__ import annotations

import pytest

from benchmarks import compare_tuning

pytest.importorskip("sklearn")


def test_quick_comparison_gives_every_method_the_same_budget(capsys):
    rows = compare_tuning.main(["--quick"])
    out = capsys.readouterr().out
    assert [r.method.split(" (")[0] for r in rows] == [
        "random search", "successive halving", "population-based training",
        "population culling"]
    assert all(r.epochs == compare_tuning.budget(3) == 12 for r in rows)
    assert all(0.5 < r.val_accuracy <= 1 and 0.5 < r.test_accuracy <= 1 for r in rows)
    assert "budget 12 epochs" in out and "winner test acc" in out


def test_cull_plan_takes_the_largest_population_that_fits():
    assert compare_tuning.cull_plan(12, 1) == (6, 12)  # 6 + 3 + 2 + 1
    assert compare_tuning.cull_plan(78, 2) == (18, 76)  # 2 * (18 + 9 + 5 + 3 + 2 + 1); 19: 80
