"""Pruners stop trials from their reported curves, deciding from the finished trials."""

import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from optim.search import (
    MedianPruner,
    PopulationObjective,
    SuccessiveHalvingPruner,
    Uniform,
    coarse_to_fine,
    load_study,
    random_search,
)
from optim.search.pruners import loss

SPACE = {"x": Uniform(0, 1), "steps": 9}
calls: list[float] = []


def curve(params, report):
    """A curve whose level is x: worse x is worse at every step."""
    calls.append(params["x"])
    for step in range(params["steps"]):
        report(step, params["x"] + 1.0 / (step + 1))
    return params["x"]


def search(pruner, n=30, **kw):
    return random_search(curve, SPACE, n, seed=3, progress=False, pruner=pruner, **kw)


def test_median_pruner_stops_exactly_the_trials_worse_than_the_median_of_earlier_ones():
    study = search(MedianPruner(warmup_steps=2, min_trials=3))
    statuses = [t.status for t in study.trials]
    assert len(study) == 30 and "pruned" in statuses and "ok" in statuses
    for t in study.trials:  # serially, the finished trials are those numbered before it
        earlier = [u for u in study.trials if u.number < t.number and u.status == "ok"]
        for k, (step, _) in enumerate(t.intermediate):
            at = [v for u in earlier for s, v in u.intermediate if s == step]
            best = min(v for _, v in t.intermediate[: k + 1])
            stop = step >= 2 and len(at) >= 3 and best > np.median(at)
            assert stop == (t.status == "pruned" and k == len(t.intermediate) - 1), t
        if t.status == "pruned":
            assert t.value == t.intermediate[-1][1] and "pruned at step" in t.error
            assert "worse than the median" in t.error
    assert study.best_trial.status == "ok" and study.best_value == min(
        t.params["x"] for t in study.trials)


def test_successive_halving_keeps_the_top_fraction_at_each_rung():
    eta = 3
    study = search(SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta), n=27)
    rungs = [1, 3]  # steps 0..8: rungs at 1, 3 (and 9, never reached)
    for t in study.trials:
        earlier = [u for u in study.trials if u.number < t.number]
        for rung in rungs:
            mine = [v for s, v in t.intermediate if s == rung]
            if not mine:
                continue
            values = sorted([mine[0]] + [v for u in earlier for s, v in u.intermediate
                                         if s == rung])
            kept = mine[0] <= values[max(1, len(values) // eta) - 1]
            last = t.intermediate[-1][0] == rung
            assert kept or (t.status == "pruned" and last), t
    reached = [len(t.intermediate) for t in study.trials]
    past = [sum(r > n for r in reached) for n in (2, 4)]  # past rung 1, past rung 3
    assert past[1] < past[0] < len(study)  # fewer and fewer go on
    assert study.trials[0].status == "ok"  # the first trial has no one to lose against


def test_pruning_is_deterministic_serially_and_resumes_to_the_same_study(tmp_path):
    pruner = MedianPruner(warmup_steps=1, min_trials=2)
    whole = search(pruner)
    path = tmp_path / "s.jsonl"
    search(pruner, n=11, storage=path)
    resumed = search(pruner, storage=path)
    key = [(t.number, t.status, t.value, t.intermediate, t.error) for t in whole.trials]
    assert [(t.number, t.status, t.value, t.intermediate, t.error)
            for t in resumed.trials] == key
    stored = load_study(path)
    assert [t.status for t in stored.trials] == [t.status for t in whole.trials]
    with pytest.raises(ValueError, match="pruner is .*MedianPruner.* in the file"):
        search(SuccessiveHalvingPruner(), storage=path)


def test_threads_prune_and_record_every_trial():
    with ThreadPoolExecutor(2) as ex:
        study = search(MedianPruner(warmup_steps=1, min_trials=2), executor=ex)
    assert len(study) == 30 and {t.status for t in study.trials} == {"ok", "pruned"}
    assert all(t.intermediate for t in study.trials)


def test_coarse_to_fine_takes_a_pruner_and_zooms_on_ok_trials_only():
    study = coarse_to_fine(curve, SPACE, rounds=3, trials_per_round=10, seed=1,
                           progress=False, pruner=MedianPruner(1, 3))
    assert len(study) == 30 and "pruned" in {t.status for t in study.trials}
    assert study.best_params["x"] < 0.1


def test_a_nan_report_counts_as_the_worst_value():
    def nan_for_some(params, report):
        for step in range(3):
            report(step, math.nan if params["x"] > 0.8 else params["x"])
        return params["x"]

    study = random_search(nan_for_some, SPACE, 30, seed=0, progress=False,
                          pruner=MedianPruner(0, 2))
    late = [t for t in study.trials if t.params["x"] > 0.8 and t.number > 5]
    assert late and all(t.status == "pruned" and len(t.intermediate) == 1 for t in late)
    assert loss(math.nan, "maximize") == math.inf
    shp = random_search(nan_for_some, SPACE, 30, seed=0, progress=False,
                        pruner=SuccessiveHalvingPruner(1, 2))
    assert all(t.status == "pruned" for t in shp.trials
               if t.params["x"] > 0.8 and t.number > 0)


@pytest.mark.parametrize("kw", [{"n_jobs": 2}, "processes"])
def test_process_executors_are_refused_with_a_pruner(kw):
    if kw == "processes":
        with ProcessPoolExecutor(1) as ex, pytest.raises(
                ValueError, match="pruner= needs the trials to run in this process"):
            search(MedianPruner(), executor=ex)
    else:
        with pytest.raises(ValueError, match="ThreadPoolExecutor.*got n_jobs=2"):
            search(MedianPruner(), **kw)


def test_an_objective_that_cannot_report_is_refused_before_the_first_trial():
    calls.clear()

    def plain(params):
        calls.append(params["x"])
        return params["x"]

    with pytest.raises(ValueError, match="reports its learning curve.*takes only params"):
        random_search(plain, SPACE, 5, seed=0, progress=False, pruner=MedianPruner())
    assert calls == []


def test_an_objective_that_never_reports_is_refused_at_the_first_trials_end(tmp_path):
    def silent(params, report):
        return params["x"]

    with pytest.raises(ValueError, match="trial 0 ended without calling report"):
        random_search(silent, SPACE, 5, seed=0, progress=False, pruner=MedianPruner(),
                      storage=tmp_path / "s.jsonl")
    assert len(load_study(tmp_path / "s.jsonl")) == 0


def test_bad_pruner_arguments():
    with pytest.raises(TypeError, match="pruner must be a Pruner"):
        search("median")
    with pytest.raises(ValueError, match="reduction_factor must be an integer >= 2"):
        SuccessiveHalvingPruner(1, 1)
    with pytest.raises(ValueError, match="min_trials must be an integer >= 1"):
        MedianPruner(0, 0)
    objective = PopulationObjective(lambda batch, report: [p["x"] for p in batch])
    with pytest.raises(ValueError, match="cannot be combined with population=2"):
        random_search(objective, SPACE, 4, seed=0, progress=False, population=2,
                      pruner=MedianPruner())
