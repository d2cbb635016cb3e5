"""The tape engine against hand-written NumPy: the seed loop, per-op overhead, an MLP step."""

from __future__ import annotations

import numpy as np

import tape
from benchmarks.timing import Row, compare
from tape import Tape, Variable


def seed_loop() -> list[Row]:
    """`cost = w**2 - 10*w + 25`: record, gradient, update, per step."""
    w = Variable(0.0)

    def engine() -> None:
        with Tape() as t:
            cost = w**2 - 10 * w + 25
        (dw,) = t.gradient(cost, [w])
        w.assign_sub(0.1 * dw)

    v = np.array(0.0)

    def reference() -> None:
        _ = v**2 - 10 * v + 25
        dv = 2 * v - 10
        v[...] -= 0.1 * dv

    return [Row("tape", "seed loop (record + gradient + update)", *compare(engine, reference),
                note="target: <= 30 us/step")]


OPS_PER_CALL = 100


def op_overhead() -> list[Row]:
    rows = []
    n = OPS_PER_CALL
    for label, value in (("0-d", np.float64(1.5)), ("1000-element", np.ones(1000))):
        x = tape.constant(value)

        def recorded(x=x) -> None:
            with Tape() as t:
                t.watch(x)
                for _ in range(OPS_PER_CALL):
                    x * 1.0001

        def unrecorded(x=x) -> None:
            for _ in range(OPS_PER_CALL):
                x * 1.0001

        def raw(value=value) -> None:
            for _ in range(OPS_PER_CALL):
                value * 1.0001

        engine_time, raw_time = compare(recorded, raw)
        rows.append(Row("tape", f"multiply on {label}, recorded (per op)", engine_time / n,
                        raw_time / n))
        engine_time, raw_time = compare(unrecorded, raw)
        rows.append(Row("tape", f"multiply on {label}, no tape (per op)", engine_time / n,
                        raw_time / n))
    return rows


def _mlp_params(rng: np.random.Generator, sizes: tuple[int, ...]) -> list[np.ndarray]:
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in))
                      .astype(np.float32))
        params.append(np.zeros(fan_out, np.float32))
    return params


def mlp_step(quick: bool) -> list[Row]:
    """784-256-128-10 ReLU MLP, mean softmax cross-entropy from primitives, forward + backward."""
    rng = np.random.default_rng(0)
    arrays = _mlp_params(rng, (784, 256, 128, 10))
    variables = [Variable(a) for a in arrays]
    rows = []
    for batch in (64, 256) if quick else (64, 256, 1024):
        x = rng.standard_normal((batch, 784)).astype(np.float32)
        labels = rng.integers(0, 10, batch)
        y = np.eye(10, dtype=np.float32)[labels]

        def engine(x=x, y=y) -> None:
            w1, b1, w2, b2, w3, b3 = variables
            with Tape() as t:
                h1 = tape.relu(x @ w1 + b1)
                h2 = tape.relu(h1 @ w2 + b2)
                logits = h2 @ w3 + b3
                loss = tape.mean(tape.logsumexp(logits, axis=1) - tape.sum(logits * y, axis=1))
            t.gradient(loss, variables)

        def reference(x=x, y=y) -> None:
            w1, b1, w2, b2, w3, b3 = arrays
            z1 = x @ w1 + b1
            h1 = np.maximum(z1, 0)
            z2 = h1 @ w2 + b2
            h2 = np.maximum(z2, 0)
            logits = h2 @ w3 + b3
            m = logits.max(axis=1, keepdims=True)
            e = np.exp(logits - m)
            s = e.sum(axis=1, keepdims=True)
            _ = np.mean(np.log(s[:, 0]) + m[:, 0] - np.sum(logits * y, axis=1))
            dlogits = (e / s - y) / len(x)
            dw3, db3 = h2.T @ dlogits, dlogits.sum(axis=0)
            dz2 = (dlogits @ w3.T) * (z2 > 0)
            dw2, db2 = h1.T @ dz2, dz2.sum(axis=0)
            dz1 = (dz2 @ w2.T) * (z1 > 0)
            _ = (x.T @ dz1, dz1.sum(axis=0), dw2, db2, dw3, db3)

        rows.append(Row("tape", f"MLP fwd+bwd, CE from primitives, batch {batch}",
                        *compare(engine, reference, repeat=9), target=1.3))
    return rows


def run(quick: bool = False) -> list[Row]:
    return seed_loop() + op_overhead() + mlp_step(quick)
