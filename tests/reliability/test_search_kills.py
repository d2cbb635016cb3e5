"""Searches killed at random moments resume at once and end identical to uninterrupted runs.

Each test starts a search in a subprocess (this file run as a script), kills it with SIGKILL
or SIGTERM at a seeded random moment while its trials run (serially, on 2 worker processes or
on a dask cluster), checks at once that nothing holds the study file's lock, resumes it right
away, and checks that no process of the killed run is left. The finished study must equal an
uninterrupted one bit for bit (numbers, typed parameters, values, errors, learning curves,
rounds and boxes), and every trial stored before a kill must still be there: no trial lost.

``KILLS`` kills by default; the ``slow`` versions kill more often and also kill a dask cluster
of worker processes and ``python -m benchmarks.tune_digits``.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from optim.search import (
    Choice,
    Fixed,
    LogUniform,
    OneMinusLogUniform,
    Uniform,
    coarse_to_fine,
    load_study,
    random_search,
)

REPO = Path(__file__).resolve().parents[2]
TRIAL_SECONDS = 0.0  # the script sets it so that a kill lands while trials run
SCRIPT_TRIAL_SECONDS = 0.04
MARGIN = 6  # trials left unfinished at the latest kill, so that it lands before the end
SPACE = {"lr": LogUniform(1e-4, 1), "beta": OneMinusLogUniform(0.9, 0.999),
         "shape": Choice([(64, 32), (32, 16), (16, 8)]),
         "units": Choice([np.int64(16), np.int64(32), np.int64(48)]),
         "nesterov": Choice([True, False]), "epochs": 3}
SEARCHES = {"coarse_to_fine": lambda n: (coarse_to_fine, dict(rounds=4, trials_per_round=n // 4)),
            "random_search": lambda n: (random_search, dict(n_trials=n))}
TRIALS, SLOW_TRIALS = 24, 64  # trials in a search killed KILLS times, and 8 times (slow)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="finds the processes of a killed run in /proc")


def objective(params, report):
    """Deterministic in ``params``; a learning curve, and a failure for large learning rates."""
    time.sleep(TRIAL_SECONDS)
    width, depth = params["shape"]
    x = ((math.log10(params["lr"]) + 2) ** 2 + 10 * (1 - params["beta"]) + width / 64
         + depth / 100 + int(params["units"]) / 100 + 0.1 * params["nesterov"])
    for step in range(params["epochs"]):
        report(step, x + 1 / (step + 1))
    if params["lr"] > 0.3:
        raise FloatingPointError(f"diverged at lr={params['lr']}")
    return x


def run(config, storage=None):
    """The search ``config`` describes: the one killed (script) and the uninterrupted one."""
    search, kw = SEARCHES[config["search"]](config.get("trials", TRIALS))
    kw = dict(kw, seed=7, storage=storage, progress=False)
    executor = config.get("executor")
    if executor is None:
        return search(objective, SPACE, n_jobs=config.get("n_jobs", 1), **kw)
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                                  processes=executor == "dask-processes") as cluster, \
            distributed.Client(cluster) as client:
        return search(objective, SPACE, executor=client.get_executor(), **kw)


@functools.cache
def uninterrupted(search, trials):
    return run({"search": search, "trials": trials})


# ---------------------------------------------------------------- killing and looking

def session_processes(sid):
    """Live processes (not zombies) of session ``sid``: pid -> command line."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                state, _ppid, _pgrp, session = f.read().rsplit(b")", 1)[1].split()[:4]
            if int(session) == sid and state != b"Z":
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):  # it ended meanwhile
            continue
    return found


def assert_unlocked(path):
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pytest.fail(f"right after the kill, another process still holds the lock on {path}")
    finally:
        os.close(fd)


def stored_trials(path):
    try:
        return len(load_study(path))
    except (FileNotFoundError, ValueError):  # not there yet, or its header half written
        return 0


class Runs:
    """Searches started as this file's script, each in a session of its own; whatever they
    leave behind is killed (by pid) when the test ends."""

    def __init__(self, tmp_path):
        self.tmp_path, self.sessions, self.count = tmp_path, [], 0
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO), os.environ.get("PYTHONPATH", "")])}

    def start(self, argv):
        self.count += 1
        log = open(self.tmp_path / f"run{self.count}.log", "wb")
        proc = subprocess.Popen(argv, cwd=self.tmp_path, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        proc.log = log.name
        self.sessions.append(proc.pid)  # the session id is the leader's pid
        return proc

    def output(self, proc):
        return Path(proc.log).read_text()[-3000:]

    def assert_gone(self, sid, timeout=15.0):
        deadline = time.monotonic() + timeout
        while (left := session_processes(sid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"processes of the killed run outlived it: {left}"

    def cleanup(self):
        for sid in self.sessions:
            for pid in session_processes(sid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def runs(tmp_path):
    r = Runs(tmp_path)
    yield r
    r.cleanup()


def kill_and_resume(runs, argv, path, total, kills, seed, trial_seconds):
    """Start ``argv``, kill it ``kills`` times at random moments (each after at least one
    more trial is stored, and with ``MARGIN`` trials left), resume at once, run to the end.
    Returns the trial records stored at each kill (``load_study``)."""
    rng = random.Random(seed)
    at_kills = []
    for k in range(kills):
        proc = runs.start(argv(resume=k > 0))
        done = stored_trials(path)
        assert done + 1 <= total - MARGIN, f"kill {k} comes too late: {done} trials stored"
        target = rng.randint(done + 1, done + 1 + (total - MARGIN - done - 1) // (kills - k))
        deadline = time.monotonic() + 120
        while stored_trials(path) < target:
            assert proc.poll() is None, f"run {k} ended early:\n{runs.output(proc)}"
            assert time.monotonic() < deadline, f"run {k} stalled:\n{runs.output(proc)}"
            time.sleep(0.005)
        time.sleep(rng.uniform(0, trial_seconds))
        assert proc.poll() is None, f"run {k} ended before its kill:\n{runs.output(proc)}"
        proc.send_signal(signal.SIGKILL if k % 2 == 0 else signal.SIGTERM)
        proc.wait()
        assert_unlocked(path)  # at once: no worker of the dead run holds the study
        at_kills.append(load_study(path))
        resumed = runs.start(argv(resume=True)) if k == kills - 1 else None
        runs.assert_gone(proc.pid)
        if resumed is not None:
            assert resumed.wait(timeout=300) == 0, runs.output(resumed)
    return at_kills


def check(path, expected, at_kills, records):
    final = records(load_study(path))
    assert final == records(expected)
    lost = [t for study in at_kills for t in records(study) if t not in final]
    assert lost == [], f"{len(lost)} trials stored before a kill are gone"
    assert len(path.read_text().splitlines()) == 1 + len(expected)  # each trial once


def search_argv(config, path):
    script = [sys.executable, str(Path(__file__).resolve()), json.dumps(config), str(path)]
    return lambda resume: script


KILLS = 2


@pytest.mark.parametrize("config, kills", [
    ({"search": "coarse_to_fine"}, KILLS),
    ({"search": "coarse_to_fine", "n_jobs": 2}, KILLS),
    ({"search": "coarse_to_fine", "executor": "dask-threads"}, 1),
    pytest.param({"search": "random_search", "trials": SLOW_TRIALS}, 8, marks=pytest.mark.slow),
    pytest.param({"search": "coarse_to_fine", "trials": SLOW_TRIALS}, 8,
                 marks=pytest.mark.slow),
    pytest.param({"search": "random_search", "n_jobs": 2, "trials": SLOW_TRIALS}, 8,
                 marks=pytest.mark.slow),
    pytest.param({"search": "coarse_to_fine", "n_jobs": 2, "trials": SLOW_TRIALS}, 8,
                 marks=pytest.mark.slow),
    pytest.param({"search": "coarse_to_fine", "executor": "dask-processes"}, 3,
                 marks=pytest.mark.slow),
], ids=lambda x: f"{x}kills" if isinstance(x, int) else
    f"{x['search']}-{x.get('executor') or 'n_jobs=' + str(x.get('n_jobs', 1))}")
def test_a_killed_search_resumes_at_once_and_ends_as_if_never_killed(tmp_path, runs, records,
                                                                     config, kills):
    if "executor" in config:
        pytest.importorskip("distributed")
    path = tmp_path / "study.jsonl"
    expected = uninterrupted(config["search"], config.get("trials", TRIALS))
    at_kills = kill_and_resume(runs, search_argv(config, path), path, len(expected), kills,
                               seed=len(json.dumps(config)) + kills,
                               trial_seconds=SCRIPT_TRIAL_SECONDS)
    check(path, expected, at_kills, records)


@pytest.mark.slow
def test_tune_digits_killed_resumes_with_resume(tmp_path, runs, records):
    pytest.importorskip("sklearn")

    def argv(out, resume):
        return [sys.executable, "-m", "benchmarks.tune_digits", "--quick", "--n-jobs", "2",
                "--out", str(out)] + ["--resume"] * resume

    whole = runs.start(argv(tmp_path / "whole", False))
    assert whole.wait(timeout=300) == 0, runs.output(whole)
    expected = load_study(tmp_path / "whole" / "study.jsonl")
    path = tmp_path / "killed" / "study.jsonl"
    at_kills = kill_and_resume(runs, functools.partial(argv, tmp_path / "killed"), path,
                               len(expected), 1, seed=1, trial_seconds=0.3)
    check(path, expected, at_kills, records)


# ---------------------------------------------------------------- workers hold no lock

def study_descriptors(params):
    """How many descriptors of the study file this process has open."""
    fds = "/proc/self/fd"
    return float(sum(_points_to(os.path.join(fds, fd), params["path"]) for fd in os.listdir(fds)))


def _points_to(link, path):
    try:
        return os.readlink(link) == path
    except OSError:
        return False


def start_method(name, *marks):
    """A process start method as a test parameter, skipped where the platform lacks it."""
    missing = name not in multiprocessing.get_all_start_methods()
    return pytest.param(name, marks=[*marks, pytest.mark.skipif(
        missing, reason=f"no {name} start method on this platform")])


@pytest.mark.parametrize("pool", ["n_jobs=2", start_method("fork"), start_method("forkserver"),
                                  "threads", start_method("spawn", pytest.mark.slow)])
def test_workers_never_hold_the_study_file(tmp_path, pool):
    path = tmp_path / "study.jsonl"
    space = {"path": Fixed(str(path)), "x": Uniform(0, 1)}
    kw = dict(seed=0, storage=path, progress=False)
    if pool == "n_jobs=2":
        study = random_search(study_descriptors, space, 4, n_jobs=2, **kw)
    elif pool == "threads":  # the search's own process holds it: the probe sees it
        with ThreadPoolExecutor(2) as ex:
            study = random_search(study_descriptors, space, 4, executor=ex, **kw)
    else:
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(pool)) as ex:
            study = random_search(study_descriptors, space, 4, executor=ex, **kw)
    assert [t.value for t in study.trials] == [1.0 if pool == "threads" else 0.0] * 4


if __name__ == "__main__":  # the search the tests kill: <config json> <storage path>
    TRIAL_SECONDS = SCRIPT_TRIAL_SECONDS
    run(json.loads(sys.argv[1]), sys.argv[2])
