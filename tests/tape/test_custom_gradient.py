"""`tape.custom_gradient` (TensorFlow semantics) and user-defined primitives."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tape import Tape, Variable


@tape.custom_gradient
def log1pexp(x):
    """log(1 + e^x) whose gradient stays finite where e^x overflows."""
    e = tape.exp(x)

    def grad(upstream):
        return upstream * (1 - 1 / (1 + e))

    return tape.log1p(e), grad


@tape.custom_gradient
def clip_gradient_by_norm(x, norm):
    """The identity, with its gradient clipped to `norm` (one gradient per argument)."""
    def grad(upstream):
        scale = tape.minimum(1.0, norm / tape.sqrt(tape.sum(upstream * upstream)))
        return upstream * scale, None

    return tape.identity(x), grad


def test_log1pexp_gradient_is_finite_where_the_plain_one_is_not():
    x = Variable([0.0, 100.0, 1000.0])
    with Tape(persistent=True) as t, np.errstate(over="ignore"):
        y = log1pexp(x)
        plain = tape.log1p(tape.exp(x))
    np.testing.assert_allclose(t.gradient(y, x).numpy(), [0.5, 1.0, 1.0])
    with np.errstate(invalid="ignore", over="ignore"):
        assert np.isnan(t.gradient(plain, x).numpy()[2])
    np.testing.assert_allclose(y.numpy()[:2], [np.log(2), 100.0])


def test_log1pexp_matches_finite_differences_to_second_order():
    x = np.array([-2.0, 0.3, 4.0])
    tape.check_gradients(log1pexp, x)
    tape.check_gradients(log1pexp, x, order=2)


def test_gradient_clipping_identity():
    x, weights = Variable([1.0, 2.0]), np.array([30.0, 40.0])  # upstream norm: 50
    with Tape() as t:
        y = tape.sum(clip_gradient_by_norm(x, 1.0) * weights)
    np.testing.assert_allclose(t.gradient(y, x).numpy(), [0.6, 0.8])
    with Tape() as t:
        y = tape.sum(clip_gradient_by_norm(x, 100.0) * weights)
    np.testing.assert_allclose(t.gradient(y, x).numpy(), [30.0, 40.0])
    np.testing.assert_array_equal(y.numpy(), 110.0)


# ---- Variables read inside the function ------------------------------------------------------

def make_dense():
    w, b = Variable([[1.0, 2.0], [3.0, 4.0]], name="w"), Variable([0.5, -0.5], name="b")

    @tape.custom_gradient
    def dense(x):
        y = x @ w + b

        def grad(upstream, variables=None):
            assert [v.name for v in variables] == ["w", "b"]
            return upstream @ tape.transpose(w), [tape.transpose(x) @ upstream,
                                                 tape.sum(upstream, axis=0)]

        return y, grad

    return dense, w, b


def test_variables_read_inside_get_gradients_from_grad_fn():
    dense, w, b = make_dense()
    x = Variable([[1.0, -1.0], [2.0, 0.5], [0.0, 1.0]])
    with Tape() as t:
        y = tape.sum(tape.sin(dense(x)))
    gx, gw, gb = t.gradient(y, [x, w, b])
    with Tape() as t:
        y = tape.sum(tape.sin(x @ w + b))
    for got, want in zip((gx, gw, gb), t.gradient(y, [x, w, b]), strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy())


def test_variables_read_inside_need_a_variables_argument():
    w = Variable(2.0, name="w")

    @tape.custom_gradient
    def scale(x):
        return x * w, lambda upstream: upstream * w

    with pytest.raises(TypeError, match=r"reads the Variables \['w'\].*argument `variables`"):
        scale(tape.constant(1.0))


def test_a_variable_passed_as_an_argument_is_an_input_not_a_captured_variable():
    w = Variable(2.0)

    @tape.custom_gradient
    def square(x):
        return x * x, lambda upstream: 2 * x * upstream

    with Tape() as t:
        y = square(w)
    assert float(t.gradient(y, w)) == 4.0


def test_variable_gradient_count_is_checked():
    w = Variable(2.0)

    @tape.custom_gradient
    def scale(x):
        return x * w, lambda upstream, variables: (upstream * w, [])

    x = Variable(1.0)
    with Tape() as t:
        y = scale(x)
    with pytest.raises(ValueError, match="0 variable gradients for 1 Variables"):
        t.gradient(y, x)


# ---- contract checks ---------------------------------------------------------------------------

def test_grad_fn_must_return_one_gradient_per_argument():
    @tape.custom_gradient
    def two(x, y):
        return x * y, lambda upstream: upstream * y

    a, b = Variable(1.0), Variable(2.0)
    with Tape() as t:
        z = two(a, b)
    with pytest.raises(ValueError, match="takes 2 input"):
        t.gradient(z, a)


def test_gradient_of_the_wrong_shape_is_an_error():
    @tape.custom_gradient
    def bad(x):
        return tape.sum(x), lambda upstream: upstream

    x = Variable(np.ones(3))
    with Tape() as t:
        y = bad(x)
    with pytest.raises(ValueError, match=r"shape \(\) for input 0, of shape \(3,\)"):
        t.gradient(y, x)


def test_function_must_return_a_value_and_a_grad_fn():
    @tape.custom_gradient
    def no_grad(x):
        return x * 2

    with pytest.raises(TypeError, match=r"must return \(y, grad_fn\)"):
        no_grad(tape.constant(1.0))


def test_grad_fn_runs_once_per_backward_pass_and_sees_a_tensor():
    calls = []

    @tape.custom_gradient
    def product(x, y):
        def grad(upstream):
            calls.append(type(upstream))
            return upstream * y, upstream * x
        return x * y, grad

    a, b = Variable(3.0), Variable(4.0)
    with Tape(persistent=True) as t:
        z = product(a, b)
    assert [float(g) for g in t.gradient(z, [a, b])] == [4.0, 3.0]
    assert [float(g) for g in t.gradient(z, [b, a])] == [3.0, 4.0]
    assert calls == [tape.Tensor, tape.Tensor]


def test_several_outputs_get_one_upstream_each():
    @tape.custom_gradient
    def polar(x):
        c, s = tape.cos(x), tape.sin(x)
        return {"cos": c, "sin": s}, lambda g_cos, g_sin: -g_cos * s + g_sin * c

    x = Variable(0.4)
    with Tape() as t:
        out = polar(x)
        y = 2 * out["cos"] + 3 * out["sin"]
    assert set(out) == {"cos", "sin"}
    assert np.isclose(float(t.gradient(y, x)), -2 * np.sin(0.4) + 3 * np.cos(0.4))


def test_only_the_custom_rule_is_used():
    @tape.custom_gradient
    def fake(x):
        return tape.exp(x), lambda upstream: upstream * 100.0

    x = Variable(0.0)
    with Tape() as t:
        y = fake(x)
    assert float(t.gradient(y, x)) == 100.0


def test_hessian_through_a_custom_gradient_written_with_tape_ops():
    @tape.custom_gradient
    def cube(x):
        return x ** 3, lambda upstream: upstream * 3 * x ** 2

    x = Variable(2.0)
    with Tape() as outer:
        with Tape() as inner:
            y = cube(x)
        g = inner.gradient(y, x)
    assert float(g) == 12.0
    assert float(outer.gradient(g, x)) == 12.0


# ---- defining a new primitive ------------------------------------------------------------------

def test_a_user_defined_primitive_works_like_the_built_ins():
    softplus = tape.Primitive("softplus_test", lambda x: np.logaddexp(0, x), register=False)
    softplus.defvjp(lambda g, ans, x: g * tape.sigmoid(x))
    x = np.array([-1.0, 0.5, 3.0])
    tape.check_gradients(softplus, x)
    tape.check_gradients(softplus, x, order=2)
