"""A Hyperband search killed at random moments resumes at once and ends identical to an
uninterrupted one: no stored trial lost, none run twice (each trial is in the file once).

Uses the kill-and-resume harness of ``test_search_kills``; the ``slow`` version kills more
often and on 2 worker processes.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_search_kills import (  # noqa: E402
    SPACE,
    check,
    kill_and_resume,
    runs,  # noqa: F401  (a fixture)
    search_argv,
)

from optim.search import hyperband  # noqa: E402

TRIAL_SECONDS = 0.0  # the script sets it so that a kill lands while trials run
SCRIPT_TRIAL_SECONDS = 0.04

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="finds the processes of a killed run in /proc")


def objective(params):
    """Deterministic in ``params``; failures for large learning rates."""
    time.sleep(TRIAL_SECONDS)
    width, depth = params["shape"]
    x = ((math.log10(params["lr"]) + 2) ** 2 + 10 * (1 - params["beta"]) + width / 64
         + depth / 100 + int(params["units"]) / 100 + 0.1 * params["nesterov"])
    if params["lr"] > 0.3:
        raise FloatingPointError(f"diverged at lr={params['lr']}")
    return x + 1 / params["budget"]


def run(config, storage=None):
    space = {k: v for k, v in SPACE.items() if k != "epochs"}
    return hyperband(objective, space, config.get("max_resource", 9), eta=3, seed=11,
                     n_jobs=config.get("n_jobs", 1), storage=storage, progress=False)


@functools.cache
def uninterrupted(max_resource):
    return run({"max_resource": max_resource})


@pytest.mark.parametrize("config, kills", [
    ({"max_resource": 9}, 2),
    pytest.param({"max_resource": 27}, 6, marks=pytest.mark.slow),
    pytest.param({"max_resource": 27, "n_jobs": 2}, 6, marks=pytest.mark.slow),
], ids=lambda x: f"{x}kills" if isinstance(x, int) else json.dumps(x))
def test_a_killed_hyperband_resumes_at_once_and_ends_as_if_never_killed(tmp_path, runs,  # noqa: F811
                                                                        records, config,
                                                                        kills):
    path = tmp_path / "study.jsonl"
    expected = uninterrupted(config["max_resource"])
    argv = search_argv(config, path)
    script = [sys.executable, str(Path(__file__).resolve()), *argv(False)[2:]]
    at_kills = kill_and_resume(runs, lambda resume: script, path, len(expected), kills,
                               seed=kills, trial_seconds=SCRIPT_TRIAL_SECONDS)
    check(path, expected, at_kills, records)


if __name__ == "__main__":  # the search the tests kill: <config json> <storage path>
    TRIAL_SECONDS = SCRIPT_TRIAL_SECONDS
    run(json.loads(sys.argv[1]), sys.argv[2])
