"""Optimizers against hand-written NumPy: the seed loop with Adam, and one Adam update of a
1M-parameter float32 model and of a digits-sized one against an in-place NumPy Adam with
preallocated buffers; and the update plan's call for one scalar Variable (absolute)."""

from __future__ import annotations

import math
import timeit
from collections.abc import Callable

import numpy as np

from benchmarks.timing import Row, compare
from optim import Adam
from tape import Tape, Variable

LR, B1, B2, EPS = 0.1, 0.9, 0.999, 1e-8


def _numpy_adam(params: list[np.ndarray], lr: float) -> Callable[[list[np.ndarray]], None]:
    """A hand-written in-place Adam step over `params` given their gradients (PyTorch's order)."""
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    tmps = [np.empty_like(p) for p in params]
    step = [0]

    def update(grads: list[np.ndarray]) -> None:
        step[0] += 1
        bc1, bc2 = 1 - B1 ** step[0], 1 - B2 ** step[0]
        for w, g, m, v, tmp in zip(params, grads, ms, vs, tmps, strict=True):
            m *= B1
            np.multiply(g, 1 - B1, out=tmp)
            m += tmp
            v *= B2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - B2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= math.sqrt(bc2)
            tmp += EPS
            np.divide(m, tmp, out=tmp)
            tmp *= lr / bc1
            w -= tmp
    return update


def seed_loop() -> list[Row]:
    """`x[0]*w**2 + x[1]*w + x[2]` with Adam(0.1): record, gradient, update, per step."""
    x = np.array([1.0, -10.0, 25.0])
    w = Variable(0.0)
    opt = Adam(LR)

    def loss():
        return x[0] * w**2 + x[1] * w + x[2]

    def with_minimize() -> None:
        opt.minimize(loss, [w])

    variables = [w]

    def with_apply_gradients() -> None:
        with Tape() as t:
            cost = loss()
        opt.apply_gradients(zip(t.gradient(cost, variables), variables, strict=True))

    v = np.array(0.0)
    update = _numpy_adam([v], LR)

    def reference() -> None:
        _ = x[0] * v**2 + x[1] * v + x[2]
        update([2 * x[0] * v + x[1]])

    rows = []
    for case, fn in (("minimize", with_minimize), ("apply_gradients(zip(...))",
                                                   with_apply_gradients)):
        t, ref = compare(fn, reference, repeat=9)
        verdict = "ok" if t <= 45e-6 else "MISSED"
        rows.append(Row("optim", f"seed loop, Adam, {case}", t, ref,
                        note=f"target <= 45 us/step: {verdict}"))
    return rows


def _adam_update(shapes: list[tuple[int, ...]], quick: bool) -> tuple[float, float]:
    """Seconds of one eager Adam update of float32 variables of `shapes`, and of the NumPy
    reference's, interleaved."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) * 1e-2 for s in shapes]
    variables = [Variable(a) for a in arrays]
    opt = Adam(1e-3)
    pairs = list(zip(grads, variables, strict=True))
    update = _numpy_adam([a.copy() for a in arrays], 1e-3)
    return compare(lambda: opt.apply_gradients(pairs), lambda: update(grads),
                   repeat=5 if quick else 15)


def adam_1m(quick: bool) -> list[Row]:
    """One Adam update of ~1M float32 parameters (a 1000-800-250 MLP's weights and biases)."""
    shapes = [(1000, 800), (800,), (800, 250), (250,)]
    n = sum(math.prod(s) for s in shapes)
    return [Row("optim", f"Adam update, {n / 1e6:.2f}M float32 params",
                *_adam_update(shapes, quick), target=1.2)]


def adam_small(quick: bool) -> list[Row]:
    """One Adam update of a digits-sized model (64-64-32-10 with batch norm: 8 float32
    variables, 6.8K parameters), where per-call overhead dominates; and the update plan's call
    for one 0-d float64 Variable (what a traced seed loop runs per step)."""
    shapes = [(64, 64), (64,), (64,), (64, 32), (32,), (32,), (32, 10), (10,)]
    w, opt = Variable(0.0), Adam(LR)
    plan, g = opt.update_plan([w]), [np.array(0.5)]
    run = opt._run_plan  # what a tape.function replay calls (the plan, in a kernel)
    return [Row("optim", "Adam update, digits-sized (8 vars, 6.8K float32)",
                *_adam_update(shapes, quick), target=1.0),
            Row("optim", "update plan call (replay), one 0-d float64 Variable",
                min(timeit.repeat("run(plan, g)", globals={"run": run, "plan": plan, "g": g},
                                  number=20_000, repeat=5 if quick else 15)) / 20_000,
                target=1.5)]


def run(quick: bool = False) -> list[Row]:
    return seed_loop() + adam_1m(quick) + adam_small(quick)
