"""Study.retest: the best configurations re-run with new seeds, mean and spread per config."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from optim.search import RetestResult, Study, Trial, Uniform, random_search
from optim.search.retest import retest

SPACE = {"x": Uniform(0, 1)}


def noisy(params):
    """(x - 0.3)^2 plus noise that depends on the seed only."""
    noise = np.random.default_rng(params.get("seed", 0)).normal(0, 0.01)
    return (params["x"] - 0.3) ** 2 + noise


@pytest.fixture(scope="module")
def study():
    return random_search(noisy, SPACE, 12, seed=0, progress=False)


def test_the_best_k_are_rerun_with_the_same_new_seeds(study):
    seen = []

    def objective(params):
        seen.append(dict(params))
        return noisy(params)

    result = study.retest(objective, top=3, seeds=4)
    assert isinstance(result, RetestResult) and len(result.seeds) == 4
    assert len(set(result.seeds)) == 4 and 0 not in result.seeds  # new seeds
    assert {r.trial for r in result.rows} == {t.number for t in study.ranked()[:3]}
    assert len(seen) == 12 and {p["seed"] for p in seen} == set(result.seeds)
    for row in result.rows:
        trial = next(t for t in study.trials if t.number == row.trial)
        assert row.params == trial.params and row.original == trial.value
        expected = [noisy({**trial.params, "seed": s}) for s in result.seeds]
        assert row.values == expected and row.n_ok == 4 and row.errors == [None] * 4
        assert row.mean == pytest.approx(np.mean(expected))
        assert row.std == pytest.approx(np.std(expected, ddof=1))
    means = [r.mean for r in result.rows]
    assert means == sorted(means) and result.best is result.rows[0]
    again = study.retest(objective, top=3, seeds=4)
    assert again.seeds == result.seeds and again.rows == result.rows
    assert study.retest(objective, top=3, seeds=4, seed=1).seeds != result.seeds


def test_the_table_prints_mean_spread_and_params(study):
    text = str(study.retest(noisy, top=2, seeds=[1, 2, 3]))
    head, *rows = text.splitlines()
    assert head.split() == ["trial", "original", "mean", "std", "min", "max", "ok", "x"]
    assert len(rows) == 2 and all(r.split()[6] == "3/3" for r in rows)


def test_failed_runs_are_left_out_of_the_mean():
    s = Study(SPACE)
    s.add(Trial(0, {"x": 0.1}, 0.1, "ok"))
    s.add(Trial(1, {"x": 0.2}, 0.2, "ok"))
    s.add(Trial(2, {"x": 0.9}, None, "failed", error="boom"))

    def objective(params):
        if params["seed"] == 2 and params["x"] == 0.1:
            raise RuntimeError("diverged")
        if params["x"] == 0.2:
            return float("nan")
        return params["x"] * params["seed"]

    result = s.retest(objective, top=5, seeds=[1, 2, 3])
    first, second = result.rows  # only the ok trials; the all-failed one last
    assert (first.trial, first.values, first.n_ok) == (0, [0.1, None, 0.1 * 3], 2)
    assert first.mean == pytest.approx(0.2)
    assert "RuntimeError: diverged" in first.errors[1]
    assert second.mean is None and second.std is None and second.n_ok == 0
    assert "0/3" in str(result)


def test_maximize_ranks_by_the_highest_mean():
    s = Study(SPACE, direction="maximize")
    for i, x in enumerate([0.1, 0.5, 0.9]):
        s.add(Trial(i, {"x": x}, x, "ok"))
    result = s.retest(lambda p: p["x"] + 0.01 * p["seed"], top=2, seeds=[1, 2])
    assert [r.trial for r in result.rows] == [2, 1]


def test_an_executor_gives_the_same_result_and_report_objectives_work(study):
    def with_report(params, report):
        report(0, 1.0)
        return noisy(params)

    serial = retest(study, with_report, top=2, seeds=3)
    with ThreadPoolExecutor(2) as pool:
        parallel = retest(study, with_report, top=2, seeds=3, executor=pool)
    assert parallel.rows == serial.rows


def test_bad_input(study):
    for bad in ({"top": 0}, {"seeds": 0}, {"seeds": []}, {"seeds": [1.5]}, {"seed": -1},
                {"seeds": True}):
        with pytest.raises(ValueError):
            study.retest(noisy, **bad)
    with pytest.raises(ValueError, match="no successful"):
        Study(SPACE).retest(noisy)
    with pytest.raises(ValueError, match="'seed'"):
        s = Study({"seed": Uniform(0, 1)})
        s.add(Trial(0, {"seed": 0.5}, 1.0, "ok"))
        s.retest(noisy)
    with pytest.raises(RuntimeError, match="no configuration"):
        s = Study(SPACE)
        s.add(Trial(0, {"x": 0.5}, 1.0, "ok"))
        _ = s.retest(lambda p: 1 / 0, seeds=1).best
