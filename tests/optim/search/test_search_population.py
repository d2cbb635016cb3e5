"""Searches with population=K: batches of trials that share their structural parameters,
recorded exactly as the same search without populations records them."""

import math

import pytest

from optim.search import (
    Choice,
    LogUniform,
    PopulationObjective,
    TrialPruned,
    coarse_to_fine,
    random_search,
)

SPACE = {"lr": LogUniform(1e-4, 1), "units": Choice([8, 16]), "act": Choice(["relu", "tanh"]),
         "epochs": 3}
BATCHES: list[list[dict]] = []  # what the batched objective saw (serial runs only)


def value(p):
    return (math.log10(p["lr"]) + 2.5) ** 2 + p["units"] / 100 + 0.5 * (p["act"] == "relu")


def single(p, report):
    for step in range(p["epochs"]):
        report(step, value(p) + 1.0 / (step + 1))
    if p["lr"] > 0.3:
        raise FloatingPointError("diverged")
    return value(p)


def batched(batch, report):
    BATCHES.append(batch)
    results = []
    for k, p in enumerate(batch):
        for step in range(p["epochs"]):
            report(k, step, value(p) + 1.0 / (step + 1))
        results.append(FloatingPointError("diverged") if p["lr"] > 0.3 else value(p))
    return results


OBJECTIVE = PopulationObjective(batched, structural=["units", "act"])


def summary(study):
    return [(t.number, t.params, t.value, t.status, t.intermediate, t.round, t.box,
             t.error and t.error.split(" (at ")[0]) for t in study.trials]


@pytest.mark.parametrize("search", ["random", "coarse_to_fine"])
def test_populations_record_the_same_trials(search):
    def run(objective, population):
        if search == "random":
            return random_search(objective, SPACE, 40, seed=3, progress=False,
                                 population=population)
        return coarse_to_fine(objective, SPACE, rounds=3, trials_per_round=12, seed=3,
                              progress=False, population=population)

    BATCHES.clear()
    together = run(OBJECTIVE, 5)
    alone = run(single, None)
    assert summary(together) == summary(alone)
    assert any(t.status == "failed" for t in together.trials)
    assert all(1 <= len(b) <= 5 for b in BATCHES) and max(map(len, BATCHES)) == 5
    for b in BATCHES:  # each batch shares its structural parameters
        assert len({(p["units"], p["act"]) for p in b}) == 1


def test_a_population_objective_is_also_a_plain_objective():
    BATCHES.clear()
    study = random_search(OBJECTIVE, SPACE, 6, seed=3, progress=False)
    assert summary(study) == summary(random_search(single, SPACE, 6, seed=3, progress=False))
    assert all(len(b) == 1 for b in BATCHES)


def test_failures_prunes_and_bad_results_stay_per_trial():
    def fn(batch, report):
        if batch[0]["units"] == 8 and batch[0]["act"] == "relu":
            raise RuntimeError("the whole batch failed")
        report(0, 1, 0.25)
        return [TrialPruned("hopeless"), *(float("nan") for _ in batch[1:])]

    study = random_search(PopulationObjective(fn, ["units", "act"]), SPACE, 16, seed=0,
                          progress=False, population=8)
    for t in study.trials:
        if (t.params["units"], t.params["act"]) == (8, "relu"):
            assert t.status == "failed" and t.error.startswith("RuntimeError: the whole batch")
    pruned = [t for t in study.trials if t.status == "pruned"]
    assert pruned and all(t.value == 0.25 and t.intermediate == [(1, 0.25)] for t in pruned)
    assert any(t.error == "ValueError: objective returned nan" for t in study.trials)

    wrong = PopulationObjective(lambda batch, report: [], ["units"])
    study = random_search(wrong, SPACE, 6, seed=0, progress=False, population=3)
    assert all(t.status == "failed" and "returned 0 results for a batch of" in t.error
               for t in study.trials)


def test_process_pool_and_resume(tmp_path):
    path = tmp_path / "study.jsonl"
    first = random_search(OBJECTIVE, SPACE, 10, seed=1, progress=False, population=4,
                          n_jobs=2, storage=path)
    more = random_search(OBJECTIVE, SPACE, 14, seed=1, progress=False, population=4,
                         storage=path)
    assert summary(more)[:10] == summary(first)
    assert summary(more) == summary(random_search(single, SPACE, 14, seed=1, progress=False))


def test_bad_input():
    with pytest.raises(TypeError, match="PopulationObjective"):
        random_search(single, SPACE, 4, seed=0, progress=False, population=4)
    with pytest.raises(ValueError, match="population must be an integer >= 1"):
        random_search(OBJECTIVE, SPACE, 4, seed=0, progress=False, population=0)
    with pytest.raises(ValueError, match=r"structural parameters \['layers'\]"):
        random_search(PopulationObjective(batched, ["layers"]), SPACE, 4, seed=0,
                      progress=False, population=2)
    with pytest.raises(TypeError, match="callable"):
        PopulationObjective("not a function")
