"""tape.function: traced steps against eager steps and the hand-written NumPy reference.

Rows: the seed loop with Adam (eager and traced, absolute us/step), the batch-norm MLP training
step of `bench_nn` eager and traced at batch 64/256/1024 against the same NumPy reference (plus
minor page faults per step of each, also in a fresh process), 20 digits epochs of
`nn.fit(compile=True)` against a hand-written loop over the same batches, a 32-member digits
population with `fit(compile=True)` against eager `fit`, and the eager step with and without
`tape.config.keep_freed_memory()`.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

import nn
import optim
import tape
from benchmarks.bench_nn import BETA_1, BETA_2, EPS_ADAM, LR, Reference, _engine, _reference
from benchmarks.timing import Row, best_time, compare
from tape import Tape, Variable


def _seed_steps() -> tuple[Any, Any, Any]:
    """The seed example with Adam: eager step, traced step, and a NumPy reference step."""
    x = np.array([1.0, -10.0, 25.0])
    w, opt = Variable(0.0), optim.Adam(0.1)

    def eager() -> Any:
        with Tape() as t:
            cost = x[0] * w**2 + x[1] * w + x[2]
        opt.apply_gradients(zip(t.gradient(cost, [w]), [w]))
        return cost

    traced = tape.function(eager)
    state = {"w": 0.0, "m": 0.0, "v": 0.0, "t": 0}

    def reference() -> float:  # Adam on a Python float, as one would write it by hand
        wv = state["w"]
        cost = x[0] * wv**2 + x[1] * wv + x[2]
        g = 2 * x[0] * wv + x[1]
        state["t"] += 1
        state["m"] = 0.9 * state["m"] + 0.1 * g
        state["v"] = 0.999 * state["v"] + 0.001 * g * g
        mhat = state["m"] / (1 - 0.9 ** state["t"])
        vhat = state["v"] / (1 - 0.999 ** state["t"])
        state["w"] = wv - 0.1 * mhat / (np.sqrt(vhat) + 1e-8)
        return float(cost)

    return eager, traced, reference


def seed_loop(quick: bool) -> list[Row]:
    eager, traced, reference = _seed_steps()
    repeat = 3 if quick else 7
    traced_time, eager_time = compare(traced, eager, repeat=repeat)
    return [
        Row("function", "seed loop, Adam: traced vs eager", traced_time, eager_time,
            note="absolute: traced target <= 4 us/step"),
        Row("function", "seed loop, Adam: traced (us/step)", traced_time, target=4.0),
        Row("function", "seed loop, Adam: traced vs scalar NumPy", traced_time,
            best_time(reference, repeat=repeat)),
    ]


def _mlp_step(batch: int) -> tuple[Any, ...]:
    """`bench_nn`'s data and model, and the training step traced by `tape.function`."""
    x, labels, model = _engine(batch)[:3]
    variables = model.trainable_variables
    opt = optim.Adam(LR, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPS_ADAM)

    @tape.function
    def train_step(x: Any, y: Any) -> Any:
        with Tape() as t:
            loss = nn.softmax_cross_entropy(model(x, training=True), y)
        opt.apply_gradients(zip(t.gradient(loss, variables), variables))
        return loss

    return x, labels, model, lambda: train_step(x, labels)


def _faults_per_step(fn: Any, n: int = 50) -> float:
    fn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n


TARGETS = {64: 0.9, 256: 0.95, 1024: 0.95}


def mlp_step(quick: bool) -> list[Row]:
    rows = []
    for batch in (64, 256) if quick else (64, 256, 1024):
        x, labels, model, step = _mlp_step(batch)
        ref_step = _reference(model, x, labels)[0]
        eager_step = _engine(batch)[3]
        engine, reference = compare(step, ref_step, repeat=5 if quick else 9)
        eager, reference_2 = compare(eager_step, ref_step, repeat=5 if quick else 9)
        rows.append(Row("function", f"MLP train step traced, batch {batch}", engine, reference,
                        target=TARGETS[batch]))
        rows.append(Row("function", f"MLP train step eager, batch {batch}", eager,
                        reference_2))
        faults = f"NumPy reference: {_faults_per_step(ref_step):.2f}"
        rows.append(Row("function", f"  minor page faults per step traced, batch {batch}",
                        _faults_per_step(step), unit="faults", note=faults))
        rows.append(Row("function", f"  minor page faults per step eager, batch {batch}",
                        _faults_per_step(eager_step), unit="faults", note=faults))
    return rows


def digits_loop() -> list[Row]:
    """20 epochs of batch-64 Adam on digits: `nn.fit(compile=True)` against
    `bench_nn.Reference` (the same network, hand-written), both over the same batches (no
    shuffling, no metrics); wall seconds."""
    try:
        X, y = nn.datasets.load_digits(seed=0)[:2]
    except ImportError as e:
        return [Row("function", "digits, 20 epochs compiled", float("nan"), note=str(e))]
    X = X.astype(np.float32)
    batches = [(X[i:i + 64], y[i:i + 64]) for i in range(0, len(X), 64)]
    compiled = reference = float("inf")
    for _ in range(3):  # interleaved, best of each: the load drifts
        model = nn.Sequential([
            nn.Dense(64, use_bias=False, seed=0), nn.BatchNorm(), nn.ReLU(),
            nn.Dense(32, use_bias=False, seed=1), nn.BatchNorm(), nn.ReLU(), nn.Dense(10, seed=2)])
        model.build((None, X.shape[1]))
        opt = optim.Adam(LR, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPS_ADAM)
        ref = Reference([v.numpy() for v in model.trainable_variables])
        start = time.perf_counter()
        nn.fit(model, X, y, loss=nn.softmax_cross_entropy, optimizer=opt, epochs=20,
               batch_size=64, shuffle=False, metric=None, verbose=0, compile=True)
        compiled = min(compiled, time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(20):
            for xb, yb in batches:
                ref.step(xb, yb)
        reference = min(reference, time.perf_counter() - start)
    return [Row("function", "digits, 20 epochs fit(compile=True) (wall s)", compiled, reference,
                unit="s", target=0.7, note="2 traces (last batch); best of 3")]


def population(quick: bool) -> list[Row]:
    """32 digits models as one `nn.Population`: `fit(compile=True)` against eager `fit`."""
    from benchmarks import bench_population as bp

    try:
        X, y = nn.datasets.load_digits(seed=0)[:2]
    except ImportError as e:
        return [Row("function", "digits population compiled", float("nan"), note=str(e))]
    epochs = 2 if quick else 20
    seconds = {}
    for compile in (True, False):
        pop = nn.Population(bp.make_model, bp.MODELS, seed=list(range(bp.MODELS)))
        start = time.perf_counter()
        nn.fit(pop, X, y, loss=nn.softmax_cross_entropy,
               optimizer=optim.Adam(bp.LEARNING_RATES), epochs=epochs, batch_size=bp.BATCH,
               verbose=0, compile=compile)
        seconds[compile] = time.perf_counter() - start
    return [Row("function", f"digits population of {bp.MODELS}, {epochs} epochs: compiled vs "
                f"eager fit (wall s)", seconds[True], seconds[False], unit="s")]


_MALLOPT_CHILD = """
import sys, tape
from benchmarks.bench_nn import _engine
from benchmarks.timing import best_time
if sys.argv[1] == "keep":
    tape.config.keep_freed_memory()
step = _engine(int(sys.argv[2]))[3]
print(best_time(step, repeat=5))
"""


_FAULTS_CHILD = """
import sys
from benchmarks.bench_function import _faults_per_step, _mlp_step
from benchmarks.bench_nn import _engine
step = _mlp_step(int(sys.argv[2]))[3] if sys.argv[1] == "traced" else _engine(int(sys.argv[2]))[3]
for _ in range(3):
    step()
print(_faults_per_step(step, 20))
"""


def fresh_process_faults(quick: bool) -> list[Row]:
    """Minor page faults per step in a fresh process (3 warm-up steps, then 20 measured),
    where glibc's malloc has not yet adapted its thresholds to the step's arrays."""
    rows = []
    for batch in (256,) if quick else (256, 1024):
        faults = {}
        for mode in ("traced", "eager"):
            out = subprocess.run([sys.executable, "-c", _FAULTS_CHILD, mode, str(batch)],
                                 capture_output=True, text=True, check=True)
            faults[mode] = float(out.stdout.split()[-1])
        rows.append(Row("function", f"  minor page faults per step, fresh process, batch {batch}",
                        faults["traced"], unit="faults",
                        note=f"traced; eager: {faults['eager']:.1f}"))
    return rows


def keep_freed_memory(quick: bool) -> list[Row]:
    """The eager step in fresh processes with and without the process-wide malloc setting."""
    rows = []
    for batch in (256,) if quick else (256, 1024):
        times = {"keep": float("inf"), "default": float("inf")}
        for _ in range(1 if quick else 3):  # alternated, best of each: the load drifts
            for mode in times:
                out = subprocess.run([sys.executable, "-c", _MALLOPT_CHILD, mode, str(batch)],
                                     capture_output=True, text=True, check=True)
                times[mode] = min(times[mode], float(out.stdout.split()[-1]))
        rows.append(Row("function", f"eager step keep_freed_memory vs default, batch {batch}",
                        times["keep"], times["default"],
                        note="glibc mallopt; separate processes"))
    return rows


def run(quick: bool = False) -> list[Row]:
    return (seed_loop(quick) + mlp_step(quick) + fresh_process_faults(quick) + digits_loop()
            + population(quick) + keep_freed_memory(quick))
