"""Pruners stop trials from their reported curves, deciding from the finished trials."""

import contextlib
import functools
import json
import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from optim.search import (
    MedianPruner,
    PopulationObjective,
    SuccessiveHalvingPruner,
    Trial,
    Uniform,
    coarse_to_fine,
    load_study,
    random_search,
)
from optim.search.boxes import draw
from optim.search.execution import execute
from optim.search.pruners import loss
from optim.search.referee import DecisionServer

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


# ---------------------------------------------------------------- across processes

def replay_decisions(path, pruner):
    """Check that every decision a study file holds is the one ``pruner`` makes from the
    journal lines before it: the reporting trial's earlier reports and the trials finished by
    then. Also that each trial's curve is its reports and it was pruned exactly when its last
    report said stop. Returns the number of decisions checked."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    direction = lines[0]["direction"]
    finished, curves, checked = [], {}, 0
    for r in lines[1:]:
        if r["kind"] == "report":
            curve = curves.setdefault(r["number"], {})
            curve[r["step"]] = (r["value"], r["decision"])
            points = [(s, v) for s, (v, _) in curve.items()]
            assert pruner.decide(points, finished, direction) == r["decision"], r
            checked += 1
        else:
            t = Trial(r["number"], {}, r["value"], r["status"],
                      intermediate=[tuple(p) for p in r["intermediate"]])
            mine = curves.get(t.number, {})
            assert t.intermediate == [(s, v) for s, (v, _) in mine.items()], t
            stopped = bool(mine) and list(mine.values())[-1][1] is not None
            assert stopped == (t.status == "pruned"), t
            finished.append(t)
    return checked


def records(study):
    return [(t.number, t.status, t.value, t.intermediate, t.error) for t in study.trials]


def reports(path):
    return [line for line in path.read_text().splitlines() if '"kind": "report"' in line]


@contextlib.contextmanager
def executor_of(kind, workers):
    if kind == "processes":
        with ProcessPoolExecutor(workers) as ex:
            yield ex
        return
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                  processes=kind == "dask-processes", dashboard_address=None
                                  ) as cluster, distributed.Client(cluster) as client:
        yield client.get_executor()


@pytest.mark.parametrize("kind", ["processes", "dask-threads"])
def test_one_worker_at_a_time_prunes_exactly_as_the_serial_search(tmp_path, kind):
    """Trials finish in number order on one worker, so each decision sees what it sees
    serially: the same study and the same decisions in the file, bit for bit."""
    pruner = MedianPruner(warmup_steps=1, min_trials=2)
    serial = search(pruner, storage=tmp_path / "serial.jsonl")
    with executor_of(kind, 1) as ex:
        remote = search(pruner, executor=ex, storage=tmp_path / "remote.jsonl")
    assert records(remote) == records(serial)
    assert "pruned" in {t.status for t in serial.trials}
    assert reports(tmp_path / "remote.jsonl") == reports(tmp_path / "serial.jsonl")


@pytest.mark.parametrize("kind", ["n_jobs=2", "dask-threads",
                                  pytest.param("dask-processes", marks=pytest.mark.slow)])
@pytest.mark.parametrize("pruner", [MedianPruner(warmup_steps=1, min_trials=2),
                                    SuccessiveHalvingPruner(1, 3)], ids=repr)
def test_on_two_workers_every_decision_follows_from_the_journal(tmp_path, kind, pruner):
    path = tmp_path / "s.jsonl"
    if kind == "n_jobs=2":
        study = search(pruner, storage=path, n_jobs=2)
    else:
        with executor_of(kind, 2) as ex:
            study = search(pruner, storage=path, executor=ex)
    assert len(study) == 30 and {t.status for t in study.trials} == {"ok", "pruned"}
    assert replay_decisions(path, pruner) == sum(len(t.intermediate) for t in study.trials)
    for t in study.trials:  # the objective's numbers do not depend on the executor
        assert t.intermediate == [(s, t.params["x"] + 1.0 / (s + 1))
                                  for s in range(len(t.intermediate))]


def test_serial_decisions_follow_from_the_journal_too(tmp_path):
    pruner = SuccessiveHalvingPruner(1, 2)
    search(pruner, storage=tmp_path / "s.jsonl")
    assert replay_decisions(tmp_path / "s.jsonl", pruner) > 30


def test_a_resumed_search_answers_a_rerun_trial_with_its_stored_decisions(tmp_path):
    """A trial that was running when the search died reports again on resume: the decisions
    stored for its reports come back (here a stop written into the file), the later ones are
    decided anew."""
    path = tmp_path / "s.jsonl"
    pruner = MedianPruner(warmup_steps=1, min_trials=2)
    first = search(pruner, n=11, storage=path)
    x = draw(SPACE, 3, 11)["x"]
    with open(path, "a") as f:  # trial 11 ran, reported steps 0-2, and the search died
        for step, decision in [(0, None), (1, None), (2, "stopped in an earlier run")]:
            f.write(json.dumps({"kind": "report", "number": 11, "step": step,
                                "value": x + 1.0 / (step + 1), "decision": decision}) + "\n")
    n_reports = len(reports(path))
    with ProcessPoolExecutor(1) as ex:
        study = search(pruner, storage=path, executor=ex)
    t = study.trials[11]
    assert t.status == "pruned" and len(t.intermediate) == 3
    assert "pruned at step 2: stopped in an earlier run" in t.error
    assert records(study)[:11] == records(first)
    stored = reports(path)[n_reports:]  # the replayed reports are not stored twice
    assert stored and all('"number": 11,' not in line for line in stored)


def test_a_trial_whose_search_has_gone_stops_at_its_next_report():
    server = DecisionServer(lambda number, curve: None, lambda number, outcome: None)
    referee = server.referee
    assert referee(0, [(0, 1.0)]) is None
    server.close()
    seen = []

    def objective(params, report):
        for step in range(5):
            seen.append(step)
            report(step, 1.0)
        return 1.0

    out = execute(objective, True, {}, functools.partial(referee, 4))
    assert seen == [0] and out["status"] == "failed"
    assert "DriverLost: trial 4 cannot reach the search that runs it" in out["error"]
    assert "so this trial stops" in out["error"]


def test_a_pruner_that_fails_fails_the_trial_and_the_search_goes_on():
    class Broken(MedianPruner):
        def decide(self, curve, trials, direction):
            if curve[-1][0] == 3:
                raise ZeroDivisionError("no rung")
            return None

    with ProcessPoolExecutor(1) as ex:
        study = search(Broken(), n=4, executor=ex)
    assert [t.status for t in study.trials] == ["failed"] * 4
    assert "the pruner failed on trial 0's report at step 3: ZeroDivisionError: no rung" in \
        study.trials[0].error


def test_an_objective_that_cannot_report_is_refused_before_the_first_trial():
    calls.clear()

    def plain(params):
        calls.append(params["x"])
        return params["x"]

    with pytest.raises(ValueError, match="reports its learning curve.*takes only params"):
        random_search(plain, SPACE, 5, seed=0, progress=False, pruner=MedianPruner())
    assert calls == []


def silent(params, report):
    return params["x"]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_an_objective_that_never_reports_is_refused_at_the_first_trials_end(tmp_path, n_jobs):
    with pytest.raises((ValueError, RuntimeError), match="trial . ended without calling report"):
        random_search(silent, SPACE, 5, seed=0, progress=False, pruner=MedianPruner(),
                      storage=tmp_path / "s.jsonl", n_jobs=n_jobs)
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
