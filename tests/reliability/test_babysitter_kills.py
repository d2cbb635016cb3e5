"""Babysat runs killed with SIGKILL at random moments and resumed at once end bit for bit where
an uninterrupted run ends: weights, optimizer state, hyperparameters and history.

Each run is a child process training an `nn.Babysitter` with a plan that exercises every kind
of event (a schedule set mid-run, a rollback, a change after it, pruning with `keep=2`). The
parent kills it after a seeded random delay (so kills land in imports, in `resume`, mid-epoch,
mid-write, mid-rollback...), then starts the next child right away: it must resume (the OS lock
of the killed child must not block it) from the newest checkpoint on disk (no completed epoch
lost). The default run makes 3 kills in a few seconds; `-m slow` runs 4 seeds of 10 kills.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The child: train the plan to `epochs`, resuming if the directory holds a checkpoint.
CHILD = textwrap.dedent("""
    import os, re, sys
    import numpy as np
    import nn, optim

    directory, epochs = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((384, 8))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(np.int64)
    train, validation = (X[:320], y[:320]), (X[320:], y[320:])

    def model(seed):
        return nn.Sequential([nn.Dense(24, use_bias=False, seed=seed), nn.BatchNorm(),
                              nn.ReLU(), nn.Dense(2, seed=seed + 1)])

    print("ready", flush=True)
    if any(re.match(r"epoch-\\d{4}\\.npz$", n) for n in os.listdir(directory)):
        run = nn.Babysitter.resume(directory, model(seed=99), loss=nn.softmax_cross_entropy,
                                   optimizer=optim.Adam(), train=train, validation=validation)
    else:
        run = nn.Babysitter(model(seed=0), loss=nn.softmax_cross_entropy,
                            optimizer=optim.Adam(0.02), train=train, validation=validation,
                            batch_size=32, directory=directory, keep=2, metric="accuracy")
    print(f"start {run.epoch}", flush=True)  # one write: a kill cannot split it (unbuffered)
    while True:
        events = run.history.events
        sets = sum(ev["event"] == "set" for ev in events)
        rollbacks = sum(ev["event"] == "rollback" for ev in events)
        if run.epoch == 2 and sets == 0:
            run.set(learning_rate=optim.schedules.ExponentialDecay(0.02, 0.7,
                                                                   steps_per_epoch=10))
        elif run.epoch == 5 and rollbacks == 0:
            run.rollback(4)
        elif run.epoch == 4 and rollbacks == 1 and sets == 1:
            run.set(beta_1=0.8, clipnorm=5.0)
        elif run.epoch < epochs:
            run.train(epochs=1)
        else:
            break
    run.close()
    print("done", flush=True)
""")

_CHECKPOINT = re.compile(r"^epoch-(\d{4})\.npz$")


def newest_checkpoint(directory):
    epochs = [int(m[1]) for m in map(_CHECKPOINT.match, os.listdir(directory)) if m]
    return max(epochs, default=0)


def start(script, directory, epochs):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(script), str(directory), str(epochs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert line == "ready\n", f"the child failed to start: {line!r} {proc.stderr.read()}"
    return proc


def finish(proc):
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"the child failed ({proc.returncode}): {err}"
    return out.split()


def final_state(directory, epochs):
    """The final checkpoint's arrays, its hyperparameters, and the log's events (without the
    resumes and wall-clock times, which differ between an interrupted run and a straight one)."""
    with np.load(os.path.join(directory, f"epoch-{epochs:04d}.npz"), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))
    with open(os.path.join(directory, "log.json")) as f:
        events = json.load(f)["events"]
    kept = [{k: v for k, v in ev.items() if k not in ("time", "reason")} for ev in events
            if ev["event"] != "resume"]
    return arrays, meta["hyperparameters"], kept


def killed_run(tmp_path, seed, kills, epochs):
    """Run the plan for `epochs` straight, then again with `kills` SIGKILLs, each child
    started right after the previous one died. Returns both final states and a report: the
    kills made, their delays, the newest checkpoint on disk at each kill, and the completed
    epochs lost (that checkpoint's epoch minus the epoch the next child resumed from)."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    straight = tmp_path / "straight"
    straight.mkdir()
    proc = start(script, straight, epochs)
    t_ready = time.perf_counter()
    assert finish(proc)[-1] == "done"
    span = time.perf_counter() - t_ready  # from "ready" to the end: where kills may land

    d = tmp_path / "killed"
    d.mkdir()
    rng = np.random.default_rng(seed)
    report = {"kills": 0, "lost": 0, "resumes": 0, "delays": [], "at": []}
    newest = None  # the newest checkpoint on disk when the last child was killed
    while True:
        proc = start(script, d, epochs)
        killed = False
        if report["kills"] < kills:  # delays add up to < 0.6 span: the run cannot end first
            delay = float(rng.uniform(0.0, 0.6 * span / kills))
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL
                killed = True
                report["delays"].append(round(delay, 3))
        if killed:
            proc.wait()
            assert proc.returncode == -9
            out = proc.stdout.read().split()
            proc.stdout.close()
            proc.stderr.close()
        else:
            out = finish(proc)
        if newest is not None and "start" in out:
            report["resumes"] += 1
            report["lost"] += newest - int(out[out.index("start") + 1])
        if not killed:
            assert out[-1] == "done"
            break
        report["kills"] += 1
        newest = newest_checkpoint(d)
        report["at"].append(newest)
    return final_state(straight, epochs), final_state(d, epochs), report


def check_same(expected, got):
    (arrays, hyper, events), (arrays2, hyper2, events2) = expected, got
    kinds = [ev["event"] for ev in events]
    assert (kinds.count("set"), kinds.count("rollback")) == (2, 1)  # the plan ran
    assert arrays.keys() == arrays2.keys()
    for k in arrays:
        np.testing.assert_array_equal(arrays2[k], arrays[k], err_msg=k, strict=True)
    assert hyper2 == hyper
    assert events2 == events


def test_kills_at_random_moments_lose_nothing(tmp_path):
    expected, got, report = killed_run(tmp_path, seed=0, kills=3, epochs=16)
    assert report["kills"] == 3 and report["lost"] == 0, report
    check_same(expected, got)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_many_kills_at_random_moments_lose_nothing(tmp_path, seed):
    expected, got, report = killed_run(tmp_path, seed=seed, kills=10, epochs=60)
    assert report["kills"] == 10 and report["lost"] == 0, report
    check_same(expected, got)


# A babysat process that forks a worker (as a fork-based process pool does), then is killed.
FORKING = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import nn, optim

    X = np.linspace(-1, 1, 16).reshape(8, 2); y = (X[:, 0] > 0).astype(np.int64)
    run = nn.Babysitter(nn.Dense(2, seed=0), loss=nn.softmax_cross_entropy,
                        optimizer=optim.SGD(0.1), train=(X, y), directory=sys.argv[1])
    run.train(epochs=1)
    if os.fork() == 0:  # the worker outlives its killed parent for a while
        print(os.getpid(), flush=True)  # after the fork handlers ran in this child
        time.sleep(60)
        os._exit(0)
    time.sleep(60)
""")


def test_a_forked_worker_does_not_keep_the_lock_of_a_killed_run(tmp_path):
    import nn
    import optim
    script = tmp_path / "forking.py"
    script.write_text(FORKING)
    d = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(script), str(d)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    worker = None
    try:
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"the child failed: {line!r} {proc.stderr.read()}"
        worker = int(line)
        proc.kill()
        proc.wait()
        X = np.linspace(-1, 1, 16).reshape(8, 2)
        y = (X[:, 0] > 0).astype(np.int64)
        with nn.Babysitter.resume(d, nn.Dense(2), loss=nn.softmax_cross_entropy,
                                  optimizer=optim.SGD(0.1), train=(X, y)) as run:
            assert run.epoch == 1
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        if worker is not None:
            os.kill(worker, 9)
