"""Higher order: the first-order MLP step against NumPy, and a Hessian-vector product's cost.

The Hessian-vector product is reverse-over-reverse (forward mode is not available): the
gradient of `<grad loss, v>`, recorded by an outer tape around the inner tape's backward pass.
Its time is reported as a ratio to one gradient of the same loss (target: at most 4x).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

import tape
from benchmarks.bench_tape import _mlp_params, mlp_step
from benchmarks.timing import Row, compare
from tape import Tape, Variable

SIZES = (784, 256, 128, 10)



def hvp_reverse_over_reverse(loss_fn: Any, params: list[Any], vectors: list[Any]) -> Any:
    """H v by two nested reverse sweeps: the gradient of `<grad loss_fn(params), vectors>`.

    Example:
        >>> w = tape.Variable([1.0, 2.0])
        >>> [g.numpy() for g in hvp_reverse_over_reverse(lambda p: tape.sum(p[0] ** 3), [w],
        ...                                               [np.ones(2)])]
        [array([ 6., 12.])]
    """
    with Tape() as outer:
        with Tape() as inner:
            loss = loss_fn(params)
        grads = inner.gradient(loss, params)
        dot = tape.sum(tape.stack([tape.sum(g * v) for g, v in zip(grads, vectors, strict=True)]))
    return outer.gradient(dot, params)

def mlp_loss(variables: list[Variable], x: np.ndarray, y: np.ndarray) -> tape.Tensor:
    """Mean softmax cross-entropy of a ReLU MLP, from primitives.

    Example:
        >>> params = [Variable(a) for a in _mlp_params(np.random.default_rng(0), (3, 2))]
        >>> x, y = np.zeros((1, 3), np.float32), np.eye(2, dtype=np.float32)[:1]
        >>> round(float(mlp_loss(params, x, y)), 4)
        0.6931
    """
    h = x
    for k in range(0, len(variables) - 2, 2):
        h = tape.relu(h @ variables[k] + variables[k + 1])
    logits = h @ variables[-2] + variables[-1]
    return tape.mean(tape.logsumexp(logits, axis=1) - tape.sum(logits * y, axis=1))


def first_order(quick: bool) -> list[Row]:
    """The tape suite's MLP step, measured again in this run: the ratio must not move."""
    return [dataclasses.replace(row, suite="higher", case=row.case.replace("fwd+bwd", "gradient"))
            for row in mlp_step(quick)]


def hessian_vector_product(quick: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    variables = [Variable(a) for a in _mlp_params(rng, SIZES)]
    vectors = [rng.standard_normal(v.shape).astype(np.float32) for v in variables]
    rows = []
    for batch in (64,) if quick else (64, 256):
        x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
        y = np.eye(SIZES[-1], dtype=np.float32)[rng.integers(0, SIZES[-1], batch)]

        def gradient(x=x, y=y) -> None:
            with Tape() as t:
                loss = mlp_loss(variables, x, y)
            t.gradient(loss, variables)

        def hvp(x=x, y=y) -> None:
            hvp_reverse_over_reverse(lambda p: mlp_loss(p, x, y), variables, vectors)

        engine, reference = compare(hvp, gradient, repeat=5)
        rows.append(Row("higher", f"MLP Hessian-vector product, batch {batch}", engine,
                        reference, target=4.0, note="ratio to one gradient"))
    return rows


def run(quick: bool = False) -> list[Row]:
    return first_order(quick) + hessian_vector_product(quick)
