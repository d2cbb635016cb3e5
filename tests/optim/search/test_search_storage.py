import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from optim.search import (
    Choice,
    LogUniform,
    OneMinusLogUniform,
    coarse_to_fine,
    load_study,
    random_search,
)
from optim.search.spaces import as_space, space_to_dict
from optim.search.storage import TrialStore

REPO = Path(__file__).resolve().parents[3]
SPACE = {"lr": LogUniform(1e-4, 1), "beta": OneMinusLogUniform(0.9, 0.999),
         "act": Choice(["relu", "tanh"])}


def objective(p):
    return (p["lr"] - 0.01) ** 2 + (p["act"] == "relu") + (1 - p["beta"])


def summary(study):
    return [(t.number, t.params, t.value, t.status, t.round, t.box) for t in study.trials]


def counted(calls):
    def f(p):
        calls.append(p)
        return objective(p)
    return f


def trial_lines(path):
    lines = Path(path).read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "header"
    return [json.loads(line) for line in lines[1:]]


def test_stored_study_reloads_and_a_rerun_calls_nothing(tmp_path):
    path = tmp_path / "s.jsonl"
    first = random_search(objective, SPACE, 6, seed=0, storage=path, progress=False)
    assert sorted(r["number"] for r in trial_lines(path)) == list(range(6))
    calls = []
    again = random_search(counted(calls), SPACE, 6, seed=0, storage=path, progress=False)
    assert calls == [] and summary(again) == summary(first) == summary(load_study(path))
    more = random_search(counted(calls), SPACE, 9, seed=0, storage=path, progress=False)
    assert len(calls) == 3 and summary(more) == summary(random_search(objective, SPACE, 9,
                                                                      seed=0, progress=False))


def test_coarse_to_fine_resumes_mid_round_with_the_same_boxes(tmp_path):
    path = tmp_path / "c.jsonl"
    kw = dict(rounds=3, trials_per_round=5, seed=2, progress=False)
    full = coarse_to_fine(objective, SPACE, **kw)
    coarse_to_fine(objective, SPACE, storage=path, **kw)
    # keep the header and the first 7 trials, as if the run had died in round 1
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:8]))
    calls = []
    resumed = coarse_to_fine(counted(calls), SPACE, storage=path, **kw)
    assert len(calls) == 8 and summary(resumed) == summary(full)


RUN_SCRIPT = """
import sys, time
from optim.search import Choice, LogUniform, OneMinusLogUniform, random_search

calls_path, storage, block_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
SPACE = {"lr": LogUniform(1e-4, 1), "beta": OneMinusLogUniform(0.9, 0.999),
         "act": Choice(["relu", "tanh"])}

def objective(p):
    with open(calls_path, "a") as f:
        f.write(repr(p["lr"]) + "\\n")
    with open(calls_path) as f:
        if 0 <= block_at < len(f.readlines()):
            time.sleep(600)  # wait here to be killed
    return (p["lr"] - 0.01) ** 2 + (p["act"] == "relu") + (1 - p["beta"])

random_search(objective, SPACE, 10, seed=0, storage=storage, progress=False)
"""


def test_resume_after_sigkill_loses_nothing_and_repeats_nothing(tmp_path):
    script, calls, path = tmp_path / "run.py", tmp_path / "calls.txt", tmp_path / "s.jsonl"
    script.write_text(textwrap.dedent(RUN_SCRIPT))
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def start(block_at):
        return subprocess.Popen([sys.executable, str(script), str(calls), str(path),
                                 str(block_at)], env=env, cwd=tmp_path)

    proc = start(block_at=4)  # trials 0-3 finish, trial 4 hangs
    deadline = time.monotonic() + 60
    while not (calls.exists() and len(calls.read_text().splitlines()) == 5):
        assert proc.poll() is None and time.monotonic() < deadline, "search did not reach trial 4"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # holding the file lock, mid-trial
    proc.wait()
    assert [r["number"] for r in trial_lines(path)] == [0, 1, 2, 3]

    assert start(block_at=-1).wait(timeout=60) == 0
    expected = random_search(objective, SPACE, 10, seed=0, progress=False)
    assert summary(load_study(path)) == summary(expected)
    assert sorted(r["number"] for r in trial_lines(path)) == list(range(10))
    lr = [t.params["lr"] for t in expected.trials]
    assert Counter(float(x) for x in calls.read_text().split()) == Counter(lr + [lr[4]])


def test_truncated_last_line_is_ignored_repaired_and_rerun(tmp_path):
    path = tmp_path / "s.jsonl"
    first = random_search(objective, SPACE, 5, seed=0, storage=path, progress=False)
    path.write_bytes(path.read_bytes()[:-25])  # a crash in the middle of writing trial 4
    calls = []
    with pytest.warns(RuntimeWarning, match="truncated last line.*4 complete trials"):
        again = random_search(counted(calls), SPACE, 5, seed=0, storage=path, progress=False)
    assert len(calls) == 1 and summary(again) == summary(first)
    assert [r["number"] for r in trial_lines(path)] == [0, 1, 2, 3, 4]


def test_truncated_header_is_repaired(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"kind": "header", "form')
    with pytest.warns(RuntimeWarning, match="truncated"):
        study = random_search(objective, SPACE, 2, seed=0, storage=path, progress=False)
    assert summary(load_study(path)) == summary(study)


@pytest.mark.parametrize("change, words", [
    (dict(seed=1), "seed is 0 in the file but 1"),
    (dict(space={**SPACE, "lr": LogUniform(1e-5, 1)}), "space"),
    (dict(direction="maximize"), "direction"),
])
def test_mismatched_storage_raises_and_leaves_the_file_untouched(tmp_path, change, words):
    path = tmp_path / "s.jsonl"
    random_search(objective, SPACE, 3, seed=0, storage=path, progress=False)
    before = path.read_bytes()
    args = dict(space=SPACE, seed=0) | change
    with pytest.raises(ValueError, match=words):
        random_search(objective, args.pop("space"), 3, storage=path, progress=False, **args)
    with pytest.raises(ValueError, match="search is 'random_search' in the file"):
        coarse_to_fine(objective, SPACE, rounds=2, trials_per_round=2, seed=0, storage=path,
                       progress=False)
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_study_is_left_alone(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"my notes")
    with pytest.raises(ValueError, match="not a study file"):
        random_search(objective, SPACE, 2, seed=0, storage=path, progress=False)
    assert path.read_bytes() == b"my notes"


def test_two_searches_on_one_file_get_a_clear_error(tmp_path):
    path = tmp_path / "s.jsonl"
    header = {"search": "random_search", "space": space_to_dict(as_space(SPACE)), "seed": 0,
              "direction": "minimize"}
    with TrialStore(path, header):
        with pytest.raises(RuntimeError, match="in use by another running search"):
            random_search(objective, SPACE, 2, seed=0, storage=path, progress=False)
    with TrialStore(path, header) as store:  # the lock went with the first store
        assert store.trials == []


def test_numpy_numbers_as_coarse_to_fine_arguments_are_stored(tmp_path):
    path = tmp_path / "c.jsonl"
    kw = dict(rounds=np.int64(2), trials_per_round=np.int32(3), keep=np.float32(0.5),
              padding=np.float64(0.1), seed=np.int64(0), progress=False)
    first = coarse_to_fine(objective, SPACE, storage=path, **kw)
    calls = []
    assert summary(coarse_to_fine(counted(calls), SPACE, storage=path, **kw)) == summary(first)
    assert calls == [] and json.loads(Path(path).read_text().splitlines()[0])["rounds"] == 2
