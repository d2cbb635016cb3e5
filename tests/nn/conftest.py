"""Fixtures shared by the tests of nn."""

import numpy as np
import pytest

import tape
from tape import Tape


def _grads(f, x, gamma, beta, order):
    """First derivatives, or (order 2) gradient of <first derivatives, w> (an HVP)."""
    xs = [tape.constant(v) for v in (x, gamma, beta)]
    w = np.random.default_rng(1).standard_normal(x.shape)
    with Tape() as outer:
        outer.watch(xs)
        with Tape() as inner:
            inner.watch(xs)
            y = tape.sum(f(*xs) * w)
        first = inner.gradient(y, xs)
        total = sum(tape.sum(g * np.cos(np.arange(g.size).reshape(g.shape))) for g in first)
    if order == 1:
        return [g.numpy() for g in first]
    return [g.numpy() for g in outer.gradient(total, xs, unconnected_gradients="zero")]


@pytest.fixture
def norm_grads():
    """`(f, x, gamma, beta, order) -> derivatives`: a normalization's first derivatives in
    (x, gamma, beta), or (order 2) the gradient of a weighted sum of them (an HVP), to compare
    a fused rule with its composition."""
    return _grads
