"""First and second derivatives through nested tapes, for every primitive (both rule forms),
against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import nn  # registers the fused primitives of nn, which the tables cover too
import tape
from tape import Tape, Variable
from tape._state import STATE

rng = np.random.default_rng(0)


def vals(*shape, low=-1.5, high=1.5):
    return rng.uniform(low, high, shape)


def spaced(*shape):
    """Distinct values at least 0.2 apart (extrema and selections are smooth there)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.2 - 0.1 * n + 0.05).reshape(shape)


@tape.custom_gradient
def log1pexp(x):
    e = tape.exp(x)
    return tape.log1p(e), lambda g: g * (1 - 1 / (1 + e))


@tape.custom_gradient
def product(x, y):
    """x * y for same-shaped x and y, with a hand-written gradient for both."""
    return tape.identity(x * y), lambda g: (g * y, g * x)


def _sin_product_forward(x, y):
    s, c = np.sin(y), np.cos(y)
    return x * s, (s, c)


def _sin_product_rule(needed, g, ans, residuals, x, y):
    if residuals is None:  # under an outer tape: recompute from the (tensor) inputs
        s, c = tape.sin(y), tape.cos(y)
    else:
        s, c = residuals
    return (tape.unbroadcast(g * s, x) if 0 in needed else None,
            tape.unbroadcast(g * x * c, y) if 1 in needed else None)


def _sin_product_jvp(tangents, ans, residuals, x, y):
    s, c = (tape.sin(y), tape.cos(y)) if residuals is None else residuals
    tx, ty = tangents
    return (0 if tx is None else tx * s) + (0 if ty is None else x * c * ty)


# A primitive written in the all-inputs form (forward residuals, one rule for every input).
sin_product = tape.Primitive("test.sin_product", _sin_product_forward, residuals=True,
                             register=False).defvjp_all(_sin_product_rule
                                                        ).defjvp_all(_sin_product_jvp)

CHECKER = np.indices((3, 4)).sum(axis=0) % 2 == 0
INDEX = (np.array([2, 0, 2]), slice(None, None, 2))

# name -> (function, args). The check squares the function's output, so each rule's result
# is itself differentiated (with respect to the upstream gradient and to the inputs).
def probability_rows(*shape):
    w = vals(*shape, low=0.1, high=1.0)
    return w / w.sum(-1, keepdims=True)


TABLE = {
    "add": (lambda x, y: x + y, (vals(3, 1), vals(4))),
    "subtract": (lambda x, y: x - y, (vals(3, 1), vals(4))),
    "multiply": (lambda x, y: x * y, (vals(3, 1), vals(4))),
    "divide": (lambda x, y: x / y, (vals(3, 1), vals(4, low=0.5))),
    "power": (lambda x, y: x ** y, (vals(3, 1, low=0.5), vals(4))),
    "negative": (lambda x: -x, (vals(3),)),
    "identity": (tape.identity, (vals(3),)),
    "cast": (lambda x: tape.cast(x, np.longdouble), (vals(3),)),
    "exp": (tape.exp, (vals(3),)),
    "log": (tape.log, (vals(3, low=0.3),)),
    "log1p": (tape.log1p, (vals(3, low=-0.6),)),
    "sqrt": (tape.sqrt, (vals(3, low=0.3),)),
    "square": (tape.square, (vals(3),)),
    "sin": (tape.sin, (vals(3),)),
    "cos": (tape.cos, (vals(3),)),
    "tanh": (tape.tanh, (vals(3),)),
    "erf": (tape.erf, (vals(3),)),
    "sigmoid": (tape.sigmoid, (vals(3),)),
    "relu": (tape.relu, (spaced(2, 3),)),
    "abs": (tape.abs, (spaced(2, 3),)),
    "maximum": (tape.maximum, (spaced(3, 4), spaced(4) + 0.1)),
    "minimum": (tape.minimum, (spaced(3, 4), spaced(4) + 0.1)),
    "where": (lambda x, y: tape.where(CHECKER, x * y, y), (vals(3, 4), vals(4))),
    "clip": (lambda x: tape.clip(x, -0.45, 0.35), (spaced(2, 3),)),
    "sum": (lambda x: tape.sum(x, axis=1), (vals(2, 3),)),
    "mean": (lambda x: tape.mean(x, axis=(0, 2), keepdims=True), (vals(2, 3, 2),)),
    "max": (lambda x: tape.max(x, axis=0), (spaced(3, 2),)),
    "min": (lambda x: tape.min(x), (spaced(3, 2),)),
    "var": (lambda x: tape.var(x, axis=1, ddof=1), (vals(2, 4),)),
    "std": (lambda x: tape.std(x, axis=-1), (vals(2, 4),)),
    "logsumexp": (lambda x: tape.logsumexp(x, axis=1), (vals(3, 4),)),
    "matmul": (tape.matmul, (vals(2, 3, 4), vals(4, 2))),
    "norm": (lambda x: tape.norm(x, axis=1, keepdims=True), (vals(3, 4),)),
    "norm, ord=1 (matrix)": (lambda x: tape.norm(x, ord=1), (spaced(3, 4),)),
    "norm, ord=inf (vector)": (lambda x: tape.norm(x, ord=np.inf, axis=0), (spaced(3, 2),)),
    "reshape": (lambda x: tape.reshape(x, (3, 2)), (vals(2, 3),)),
    "transpose": (lambda x: tape.transpose(x, (2, 0, 1)), (vals(2, 3, 2),)),
    "expand_dims": (lambda x: tape.expand_dims(x, 1), (vals(2, 3),)),
    "squeeze": (lambda x: tape.squeeze(x, 1), (vals(2, 1, 3),)),
    "broadcast_to": (lambda x: tape.broadcast_to(x, (2, 3)), (vals(3),)),
    "sum_to": (lambda x: tape.sum_to(x, (1, 3)), (vals(2, 3),)),
    "concatenate": (lambda x, y: tape.concatenate([x, y, x], axis=1), (vals(2, 1), vals(2, 3))),
    "stack": (lambda x, y: tape.stack([x, y], axis=-1), (vals(2, 3), vals(2, 3))),
    "getitem": (lambda x: x[INDEX], (vals(3, 4),)),
    "scatter_add": (lambda g: tape.scatter_add(g, INDEX, (3, 4)), (vals(3, 2),)),
    "custom_gradient": (log1pexp, (vals(3),)),
    "custom_gradient, two inputs": (product, (vals(2, 3), vals(2, 3))),
    "nn.batch_norm": (lambda x, g, b: nn.batch_norm(x, g, b), (spaced(5, 3), vals(3), vals(3))),
    "nn.layer_norm": (lambda x, g, b: nn.layer_norm(x, g, b), (spaced(3, 4), vals(4), vals(4))),
    "nn.layer_norm, feature axes (0, 2)": (lambda x, g, b: nn.layer_norm(x, g, b, axis=(0, 2)),
                                           (spaced(2, 3, 2), vals(2, 2), vals(2, 2))),
    "nn.softmax_cross_entropy": (
        lambda z, y: nn.softmax_cross_entropy(z, y, reduction="none", label_smoothing=0.1),
        (vals(4, 3), probability_rows(4, 3))),
    "test.sin_product (all-inputs form)": (sin_product, (vals(3, 1), vals(4))),
}


def test_every_registered_primitive_has_a_case():
    missing = set(tape.PRIMITIVES) - set(TABLE)
    assert not missing, f"primitives with no entry in the derivative table: {sorted(missing)}"


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("name", sorted(TABLE))
def test_derivatives_match_finite_differences(name, order):
    fn, args = TABLE[name]
    tape.check_gradients(lambda *xs: fn(*xs) ** 2, *args, order=order, rtol=1e-4, atol=1e-5)


def test_every_registered_primitive_has_a_forward_rule():
    missing = [name for name, p in tape.PRIMITIVES.items() if not (p.jvps or p.jvp_all)]
    assert not missing, f"primitives without a JVP rule: {sorted(missing)}"


@tape.custom_gradient
def log1pexp_forward(x):
    e = tape.exp(x)
    return tape.log1p(e), lambda g: g * (1 - 1 / (1 + e))


@log1pexp_forward.defjvp
def _log1pexp_jvp(primals, tangents):
    return tangents[0] * tape.sigmoid(primals[0])


@tape.custom_gradient
def product_forward(x, y):
    return tape.identity(x * y), lambda g: (g * y, g * x)


product_forward.defjvp(lambda primals, tangents: tangents[0] * primals[1]
                       + primals[0] * tangents[1])

# The JVP table: the derivative table, with custom_gradient functions that have a defjvp rule
# (without one, forward mode refuses them: tests/tape/test_forward.py).
JVP_TABLE = {**TABLE, "custom_gradient": (log1pexp_forward, TABLE["custom_gradient"][1]),
             "custom_gradient, two inputs": (product_forward,
                                             TABLE["custom_gradient, two inputs"][1])}


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("name", sorted(JVP_TABLE))
def test_jvps_match_finite_differences_and_reverse_mode(name, order):
    fn, args = JVP_TABLE[name]
    tape.check_jvps(fn, *args, order=order, rtol=1e-4, atol=1e-5)


def test_third_order_through_three_tapes():
    x = Variable(0.7)
    with Tape() as t3:
        with Tape() as t2:
            with Tape() as t1:
                y = tape.sin(x) * x
            d1 = t1.gradient(y, x)
        d2 = t2.gradient(d1, x)
    d3 = t3.gradient(d2, x)
    # y = x sin x: y''' = -3 sin x - x cos x
    assert np.isclose(float(d3), -3 * np.sin(0.7) - 0.7 * np.cos(0.7))


def count_primitive_calls(monkeypatch):
    calls = []
    original = tape.Primitive.__call__

    def counting(self, *args, **params):
        calls.append(self.name)
        return original(self, *args, **params)

    monkeypatch.setattr(tape.Primitive, "__call__", counting)
    return calls


def test_first_order_backward_runs_no_primitive_without_an_outer_tape(monkeypatch):
    x = Variable(np.ones(3))
    with Tape() as t:
        y = tape.sum(tape.exp(x) * x)
    calls = count_primitive_calls(monkeypatch)
    assert not STATE.tapes
    t.gradient(y, x)
    assert calls == []


def test_a_paused_outer_tape_keeps_the_fast_path(monkeypatch):
    x = Variable(np.ones(3))
    with Tape() as outer:
        with Tape() as inner:
            y = tape.sum(tape.exp(x) * x)
        with outer.stop_recording():
            calls = count_primitive_calls(monkeypatch)
            inner.gradient(y, x)
    assert calls == []


def test_backward_is_recorded_only_by_the_outer_tape():
    x = Variable(np.ones(3))
    with Tape(persistent=True) as outer:
        with Tape() as inner:
            y = tape.sum(tape.exp(x) * x)
        before = outer.stats().records
        inner.gradient(y, x)
    assert outer.stats().records > before


def test_second_derivative_of_an_unconnected_first_derivative_is_none():
    x = Variable(2.0)
    with Tape() as outer:
        with Tape() as inner:
            y = 3 * x
        g = inner.gradient(y, x)
    assert float(g) == 3.0
    assert outer.gradient(g, x) is None


# ---- stop_gradient --------------------------------------------------------------------------

def test_stop_gradient_blocks_the_gradient_and_keeps_the_value():
    x = Variable([1.0, 2.0])
    with Tape() as t:
        s = tape.stop_gradient(x * x)
        y = tape.sum(s * x)
    assert np.array_equal(s.numpy(), [1.0, 4.0])
    assert np.array_equal(t.gradient(y, x).numpy(), [1.0, 4.0])


def test_stop_gradient_of_a_variable_is_a_snapshot():
    w = Variable(1.0)
    s = tape.stop_gradient(w)
    w.assign(5.0)
    assert float(s) == 1.0 and not isinstance(s, Variable)


def test_stop_gradient_inside_nested_tapes():
    # y = x**2 * sg(x): dy/dx = 2 x sg(x); d2y/dx2 = 2 sg(x) (sg(x) is a constant to both)
    x = Variable(3.0)
    with Tape() as outer:
        with Tape() as inner:
            y = x ** 2 * tape.stop_gradient(x)
        g = inner.gradient(y, x)
    assert float(g) == 18.0
    assert float(outer.gradient(g, x)) == 6.0


def test_stop_gradient_on_the_first_derivative_cuts_second_order():
    x = Variable(3.0)
    with Tape() as outer:
        with Tape() as inner:
            y = x ** 3
        g = tape.stop_gradient(inner.gradient(y, x))
    assert outer.gradient(g, x) is None


# ---- a Hessian against finite differences -----------------------------------------------------

SIZES = (3, 4, 2)
X = rng.standard_normal((5, SIZES[0]))
LABELS = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], 5)]


def unpack(theta):
    out, k = [], 0
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:], strict=False):
        out.append(tape.reshape(theta[k:k + fan_in * fan_out], (fan_in, fan_out)))
        k += fan_in * fan_out
        out.append(theta[k:k + fan_out])
        k += fan_out
    return out


N_PARAMS = sum(i * o + o for i, o in zip(SIZES[:-1], SIZES[1:], strict=False))


def mlp_loss(theta):
    w1, b1, w2, b2 = unpack(theta)
    logits = tape.tanh(X @ w1 + b1) @ w2 + b2
    return tape.mean(tape.logsumexp(logits, axis=1) - tape.sum(logits * LABELS, axis=1))


def gradient_at(theta):
    t0 = tape.constant(theta)
    with Tape() as t:
        t.watch(t0)
        loss = mlp_loss(t0)
    return t.gradient(loss, t0).numpy()


def test_hessian_of_a_small_mlp_loss_matches_finite_differences():
    theta = tape.constant(rng.standard_normal(N_PARAMS) * 0.5)
    with Tape(persistent=True) as outer:
        outer.watch(theta)
        with Tape() as inner:
            inner.watch(theta)
            loss = mlp_loss(theta)
        g = inner.gradient(loss, theta)
    hessian = outer.jacobian(g, theta).numpy()
    eps = 1e-5
    at = theta.numpy()
    numeric = np.stack([(gradient_at(at + eps * e) - gradient_at(at - eps * e)) / (2 * eps)
                        for e in np.eye(N_PARAMS)], axis=1)
    assert hessian.shape == (N_PARAMS, N_PARAMS)
    np.testing.assert_allclose(hessian, numeric, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)


def test_hessian_vector_product_reverse_over_reverse():
    theta = tape.constant(rng.standard_normal(N_PARAMS) * 0.5)
    v = rng.standard_normal(N_PARAMS)
    with Tape(persistent=True) as outer:
        outer.watch(theta)
        with Tape() as inner:
            inner.watch(theta)
            loss = mlp_loss(theta)
        g = inner.gradient(loss, theta)
        gv = tape.sum(g * v)
    hvp = outer.gradient(gv, theta).numpy()
    np.testing.assert_allclose(hvp, outer.jacobian(g, theta).numpy() @ v, rtol=1e-10, atol=1e-12)
