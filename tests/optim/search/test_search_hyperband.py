"""Hyperband: brackets of successive halving, stored and resumed like the other searches."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from optim.search import LogUniform, Uniform, hyperband, load_study
from optim.search.halving import brackets

SPACE = {"lr": LogUniform(1e-4, 1), "x": Uniform(0, 1)}


def objective(params):
    if params["x"] > 0.9:
        raise FloatingPointError("diverged")
    return (params["x"] - 0.3) ** 2 + 1.0 / params["epochs"]


def run(**kw):
    return hyperband(objective, SPACE, 27, eta=3, seed=5, resource="epochs", progress=False,
                     **kw)


def test_the_plan_is_the_papers():
    # Li et al. 2018, table 1 (R = 81, eta = 3): n_i and r_i per bracket
    assert brackets(81, 3) == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)]]
    assert brackets(1, 3) == [[(1, 1)]]


def test_each_rung_continues_the_best_ok_trials_of_the_rung_before():
    study = run()
    by_round: dict[int, list] = {}
    for t in study.trials:
        by_round.setdefault(t.round, []).append(t)
    assert sorted(by_round) == [0, 1, 2, 3]
    for b, bracket in enumerate(brackets(27, 3)):
        trials = by_round[b]
        rungs = [[t for t in trials if t.params["epochs"] == r] for _, r in bracket]
        assert len(rungs[0]) == bracket[0][0]
        for i in range(len(rungs) - 1):
            ok = sorted((t for t in rungs[i] if t.status == "ok"), key=lambda t: t.value)
            best = {t.params["x"] for t in ok[: bracket[i + 1][0]]}
            assert {t.params["x"] for t in rungs[i + 1]} == best
    assert any(t.status == "failed" for t in study.trials)
    assert len({t.number for t in study.trials}) == len(study)


def test_threads_give_the_same_study_and_a_resumed_search_ends_the_same(tmp_path):
    whole = run()
    key = [(t.number, t.params, t.value, t.status, t.round) for t in whole.trials]
    with ThreadPoolExecutor(2) as ex:
        assert [(t.number, t.params, t.value, t.status, t.round)
                for t in run(executor=ex).trials] == key
    path = tmp_path / "hb.jsonl"
    seen = []

    def interrupted(params):
        if len(seen) == 20:
            raise KeyboardInterrupt
        seen.append(params)
        return objective(params)

    with pytest.raises(KeyboardInterrupt):
        hyperband(interrupted, SPACE, 27, eta=3, seed=5, resource="epochs", progress=False,
                  storage=path)
    assert len(load_study(path)) == 20
    seen.clear()
    resumed = run(storage=path)
    assert [(t.number, t.params, t.value, t.status, t.round) for t in resumed.trials] == key
    assert len(load_study(path)) == len(whole)
    with pytest.raises(ValueError, match="eta is 3 in the file but 2 in this call"):
        hyperband(objective, SPACE, 27, eta=2, seed=5, resource="epochs", progress=False,
                  storage=path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="already has a parameter named 'x'"):
        hyperband(objective, SPACE, 9, seed=0, resource="x", progress=False)
    with pytest.raises(ValueError, match="max_resource must be an integer >= 1"):
        hyperband(objective, SPACE, 0, seed=0, progress=False)
    with pytest.raises(ValueError, match="eta must be an integer >= 2"):
        hyperband(objective, SPACE, 9, eta=1, seed=0, progress=False)
