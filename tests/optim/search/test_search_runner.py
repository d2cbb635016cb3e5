import math
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import pytest

from optim.search import (
    Choice,
    IntUniform,
    LogUniform,
    OneMinusLogUniform,
    TrialPruned,
    Uniform,
    coarse_to_fine,
    random_search,
)

SPACE = {"lr": LogUniform(1e-4, 1), "beta": OneMinusLogUniform(0.9, 0.999),
         "units": IntUniform(4, 64), "act": Choice(["relu", "tanh"]), "epochs": 3}
LR_OPT, BETA_OPT = 10 ** -2.5, 1 - 10 ** -2.2


def bowl(p):
    """Known optimum at lr = 10**-2.5, beta = 1 - 10**-2.2, act = "tanh"."""
    return ((math.log10(p["lr"]) + 2.5) ** 2 + (math.log10(1 - p["beta"]) + 2.2) ** 2
            + 0.5 * (p["act"] == "relu"))


def curve(p, report):
    for step in range(p["epochs"]):
        report(step, bowl(p) + 1.0 / (step + 1))
    return bowl(p)


def flaky(p):
    if p["units"] % 3 == 0:
        raise ValueError(f"bad units {p['units']}")
    if p["units"] % 3 == 1:
        return float("nan")
    return bowl(p)


def summary(study):
    return [(t.number, t.params, t.value, t.status, t.round, t.box) for t in study.trials]


def run(objective=bowl, n=12, **kw):
    return random_search(objective, SPACE, n, seed=kw.pop("seed", 7), progress=False, **kw)


def test_study_api():
    study = run(n=20)
    values = [t.value for t in study.trials]
    assert len(study) == 20 and [t.number for t in study.trials] == list(range(20))
    assert study.best_value == min(values) and study.best_params == study.best_trial.params
    assert set(study.best_params) == set(SPACE) and study.best_params["epochs"] == 3
    assert all(t.status == "ok" and t.duration >= 0 for t in study.trials)
    top = random_search(bowl, SPACE, 20, seed=7, direction="maximize", progress=False)
    assert top.best_value == max(values)


def test_trial_params_depend_only_on_seed_and_number():
    assert summary(run(n=5)) == summary(run(n=10))[:5]
    assert summary(run(seed=1)) != summary(run(seed=2))


def test_same_trials_serially_on_two_processes_and_on_threads():
    serial = summary(run(curve))
    assert summary(run(curve, n_jobs=2)) == serial
    with ThreadPoolExecutor(2) as ex:
        assert summary(run(curve, executor=ex)) == serial


def test_same_trials_on_a_dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = run(curve, executor=client.get_executor())
    assert summary(on_dask) == summary(run(curve))


def test_reported_values_are_recorded():
    study = run(curve, n=3)
    t = study.trials[0]
    assert [s for s, _ in t.intermediate] == [0, 1, 2]
    assert t.intermediate[-1][1] == pytest.approx(t.value + 1 / 3)


def test_failures_are_recorded_and_the_search_goes_on():
    study = run(flaky, n=30)
    by_units = {t.params["units"] % 3: t for t in study.trials}
    raised, nan, ok = by_units[0], by_units[1], by_units[2]
    assert raised.status == "failed" and raised.value is None
    assert "ValueError: bad units" in raised.error and "in flaky" in raised.error
    assert nan.status == "failed" and "nan" in nan.error
    assert ok.status == "ok"
    assert study.best_trial.params["units"] % 3 == 2


@pytest.mark.parametrize("value, words", [(float("inf"), "inf"), ("0.5", "str"),
                                          (None, "NoneType"), (np.ones(3), "")])
def test_non_numbers_fail(value, words):
    study = random_search(lambda p: value, {"x": Uniform(0, 1)}, 1, seed=0, progress=False)
    assert study.trials[0].status == "failed" and words in study.trials[0].error


def test_numpy_scalars_are_accepted():
    study = random_search(lambda p: np.float32(p["x"]), {"x": Uniform(0, 1)}, 2, seed=0,
                          progress=False)
    assert all(t.status == "ok" and type(t.value) is float for t in study.trials)


def test_all_failed_raises_with_the_first_error():
    def boom(p):
        raise KeyError("no data")

    study = random_search(boom, {"x": Uniform(0, 1)}, 3, seed=0, progress=False)
    with pytest.raises(RuntimeError, match=r"all 3 trials failed.*KeyError: 'no data'"):
        _ = study.best_trial
    assert len(study) == 3


def test_pruned_trials_keep_their_last_report_and_are_not_best():
    def obj(p, report):
        report(0, p["x"])
        if p["x"] < 0.5:
            raise TrialPruned("too small")
        return p["x"]

    study = random_search(obj, {"x": Uniform(0, 1)}, 20, seed=0, progress=False)
    pruned = [t for t in study.trials if t.status == "pruned"]
    assert pruned and all(t.value == t.params["x"] and "too small" in t.error for t in pruned)
    assert study.best_value >= 0.5


def test_unpicklable_objective_fails_before_any_trial(tmp_path):
    calls = []
    path = tmp_path / "s.jsonl"
    with pytest.raises(ValueError, match=r"(?s)<lambda>.*cannot be pickled.*module-level"):
        random_search(lambda p: calls.append(p) or 0.0, SPACE, 4, seed=0, n_jobs=2,
                      storage=path, progress=False)
    assert calls == [] and not path.exists()


def test_coarse_to_fine_boxes_shrink_and_contain_the_best_point():
    study = coarse_to_fine(bowl, SPACE, rounds=4, trials_per_round=25, seed=0, progress=False)
    assert len(study) == 100 and [t.round for t in study.trials] == [r for r in range(4)
                                                                      for _ in range(25)]
    boxes = [study.trials[25 * r].box for r in range(4)]
    assert all(t.box == boxes[t.round] for t in study.trials)
    assert boxes[0]["lr"] == [0.0, 1.0] and "epochs" not in boxes[0]
    # "units" does not matter to bowl, so only the other boxes must shrink
    areas = [math.prod(b[n][1] - b[n][0] for n in ("lr", "beta")) for b in boxes]
    assert all(a > b for a, b in pairwise(areas)) and areas[-1] < 0.15
    assert boxes[-1]["act"] == ["tanh"]
    for r in range(1, 4):  # each box holds the best point found before its round
        best = min((t for t in study.trials if t.round < r), key=lambda t: t.value)
        for n in ("lr", "beta", "units"):
            lo, hi = boxes[r][n]
            assert lo <= SPACE[n].to_unit(best.params[n]) <= hi
    for t in study.trials:  # every trial lies in its box
        for n in ("lr", "beta"):
            assert t.box[n][0] - 1e-9 <= SPACE[n].to_unit(t.params[n]) <= t.box[n][1] + 1e-9
    lo, hi = boxes[-1]["lr"]
    assert lo <= SPACE["lr"].to_unit(LR_OPT) <= hi


def test_coarse_to_fine_beats_plain_random_search():
    def error(study):
        p = study.best_params
        return math.hypot(math.log10(p["lr"] / LR_OPT),
                          math.log10((1 - p["beta"]) / (1 - BETA_OPT)))

    c2f = [error(coarse_to_fine(bowl, SPACE, rounds=4, trials_per_round=20, seed=s,
                                progress=False)) for s in range(5)]
    rnd = [error(random_search(bowl, SPACE, 80, seed=s, progress=False)) for s in range(5)]
    assert np.mean(c2f) < 0.7 * np.mean(rnd)


def test_coarse_to_fine_is_the_same_on_a_process_pool():
    kw = dict(rounds=3, trials_per_round=6, seed=1, progress=False)
    assert summary(coarse_to_fine(curve, SPACE, n_jobs=2, **kw)) == \
        summary(coarse_to_fine(curve, SPACE, **kw))


@pytest.mark.parametrize("kw, words", [
    (dict(n_trials=0), "n_trials"),
    (dict(direction="min"), "direction"),
    (dict(seed=-1), "seed"),
    (dict(seed="a"), "seed"),
    (dict(n_jobs=0), "n_jobs"),
    (dict(n_jobs=2, executor=ThreadPoolExecutor(1)), "n_jobs"),
])
def test_bad_random_search_arguments(kw, words):
    args = dict(n_trials=3, seed=0, progress=False) | kw
    with pytest.raises(ValueError, match=words):
        random_search(bowl, SPACE, **args)


@pytest.mark.parametrize("kw, words", [
    (dict(keep=0), r"keep must be a fraction in \(0, 1\]; got keep=0"),
    (dict(keep=1.5), "keep=1.5"),
    (dict(rounds=0), "rounds"),
    (dict(trials_per_round=0), "trials_per_round"),
    (dict(padding=0), "padding"),
    (dict(direction="best"), "direction"),
])
def test_bad_coarse_to_fine_arguments(kw, words):
    args = dict(rounds=2, trials_per_round=3, seed=0, progress=False) | kw
    with pytest.raises(ValueError, match=words):
        coarse_to_fine(bowl, SPACE, **args)


@pytest.mark.parametrize("search", [
    lambda obj, **kw: random_search(obj, SPACE, 3, seed=0, **kw),
    lambda obj, **kw: coarse_to_fine(obj, SPACE, rounds=2, trials_per_round=2, seed=0, **kw),
])
@pytest.mark.parametrize("objective", [3, "bowl", None, SPACE])
def test_an_objective_that_is_not_callable_is_refused_before_any_trial(tmp_path, search,
                                                                       objective):
    path = tmp_path / "s.jsonl"
    with pytest.raises(TypeError, match=r"objective must be a callable.*got "
                                        + type(objective).__name__):
        search(objective, storage=path, n_jobs=2, progress=False)
    assert not path.exists()


def test_retest_refuses_an_objective_that_is_not_callable():
    study = run(n=3)
    with pytest.raises(TypeError, match="objective must be a callable.*got int 3"):
        study.retest(3, top=1, seeds=2)
