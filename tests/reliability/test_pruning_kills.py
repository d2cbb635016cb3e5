"""A search with a pruner killed at random moments resumes at once: serially it ends
identical to an uninterrupted one (decisions included); on 2 worker processes no stored trial
is lost, none runs twice, and every stored decision is the one the pruner makes from the
study file's lines before it.

Uses the kill-and-resume harness of ``test_search_kills``.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[0] / "optim" / "search"))
import test_search_kills  # noqa: E402
from test_search_kills import (  # noqa: E402
    SPACE,
    kill_and_resume,
    objective,
    runs,  # noqa: F401  (a fixture)
)
from test_search_pruning import replay_decisions  # noqa: E402

from optim.search import MedianPruner, load_study, random_search  # noqa: E402

TRIALS = 30
PRUNER = MedianPruner(warmup_steps=1, min_trials=2)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="finds the processes of a killed run in /proc")


def run(config, storage=None):
    return random_search(objective, {**SPACE, "epochs": 6}, config.get("trials", TRIALS),
                         seed=5, n_jobs=config.get("n_jobs", 1), storage=storage,
                         progress=False, pruner=PRUNER)


@functools.cache
def uninterrupted(trials):
    return run({"trials": trials})


@pytest.mark.parametrize("config, kills", [
    ({}, 2), ({"n_jobs": 2}, 2),
    pytest.param({"n_jobs": 2, "trials": 64}, 6, marks=pytest.mark.slow),
], ids=lambda x: f"{x}kills" if isinstance(x, int) else f"n_jobs={x.get('n_jobs', 1)}")
def test_a_killed_pruned_search_resumes_from_its_stored_decisions(tmp_path, runs, records,  # noqa: F811
                                                                  config, kills):
    path = tmp_path / "study.jsonl"
    expected = uninterrupted(config.get("trials", TRIALS))
    assert "pruned" in {t.status for t in expected.trials}
    script = [sys.executable, str(Path(__file__).resolve()), json.dumps(config), str(path)]
    at_kills = kill_and_resume(runs, lambda resume: script, path, len(expected), kills,
                               seed=kills + len(config), trial_seconds=0.02)
    checked = replay_decisions(path, PRUNER)
    final = load_study(path)
    assert checked >= sum(len(t.intermediate) for t in final.trials)
    lost = [t for study in at_kills for t in records(study) if t not in records(final)]
    assert lost == [], f"{len(lost)} trials stored before a kill are gone"
    trial_lines = [line for line in path.read_text().splitlines() if '"kind": "trial"' in line]
    assert len(trial_lines) == len(expected) == len(final)  # each trial once
    if config.get("n_jobs", 1) == 1:  # serially: as if never killed, decisions included
        assert records(final) == records(expected)
        return
    # on 2 workers, the objective's numbers are the same; only the decisions may differ
    for mine, theirs in zip(final.trials, expected.trials):
        short = min(len(mine.intermediate), len(theirs.intermediate))
        assert mine.params == theirs.params
        assert mine.intermediate[:short] == theirs.intermediate[:short]
        if mine.status == theirs.status == "failed":
            assert mine.error == theirs.error


if __name__ == "__main__":  # the search the tests kill: <config json> <storage path>
    test_search_kills.TRIAL_SECONDS = 0.02
    run(json.loads(sys.argv[1]), sys.argv[2])
