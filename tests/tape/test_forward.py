"""Forward mode: ForwardAccumulator (TensorFlow's semantics), jvp, hvp, forward Jacobians,
custom_gradient in forward mode, and the fused primitives' JVPs against their compositions."""

from __future__ import annotations

import numpy as np
import pytest

import nn
import tape
from tape import ForwardAccumulator, Tape, Variable
from tape._state import STATE


def cubic(x):
    return tape.sum(tape.sin(x) * x ** 3)


def hessian_of_cubic(x):
    # d2/dx2 of sin(x) x^3 = (6x - x^3) sin x + 6x^2 cos x, diagonal
    return np.diag((6 * x - x ** 3) * np.sin(x) + 6 * x ** 2 * np.cos(x))


# ---- ForwardAccumulator ------------------------------------------------------------------
def test_jvp_of_a_variable_function():
    x = Variable([1.0, 2.0])
    with ForwardAccumulator(x, np.array([1.0, 0.5])) as acc:
        y = x * x
    np.testing.assert_array_equal(acc.jvp(y).numpy(), [2.0, 2.0])
    assert acc.jvp(x).numpy().tolist() == [1.0, 0.5]


def test_unwatched_values_give_none_or_zeros():
    x, c = tape.constant([1.0, 2.0]), tape.constant([3.0, 4.0])
    with ForwardAccumulator(x, np.ones(2)) as acc:
        y = c * 2
    assert acc.jvp(y) is None
    assert acc.jvp(y, unconnected_gradients="zero").numpy().tolist() == [0.0, 0.0]
    assert acc.jvp([y, x])[0] is None


def test_structures_of_primals_and_results():
    a, b = tape.constant(2.0), tape.constant(3.0)
    with ForwardAccumulator({"a": a, "b": b}, {"a": 1.0, "b": 10.0}) as acc:
        y = a * b
    out = acc.jvp({"y": y, "pair": (y, a)})
    assert float(out["y"]) == 3.0 + 20.0 and float(out["pair"][1]) == 1.0


@pytest.mark.parametrize("primal, tangent, error, match", [
    (np.ones(2), np.ones(2), TypeError, "primal 0 must be a tensor or Variable"),
    (tape.constant([1, 2]), np.ones(2), TypeError, "dtype int64, which is not differentiable"),
    (tape.constant([1.0, 2.0]), np.ones(3), ValueError, r"shape \(3,\) but its primal has shape"),
    (tape.constant(np.ones(2, np.float32)), np.ones(2), ValueError,
     "dtype float64 but its primal has dtype float32"),
    (tape.constant(np.ones(2, np.float32)), tape.constant(np.ones(2)), ValueError,
     "tangents must have their primal's dtype"),
])
def test_bad_primals_and_tangents_are_refused(primal, tangent, error, match):
    with pytest.raises(error, match=match):
        ForwardAccumulator(primal, tangent)


def test_count_mismatch_and_repeated_primal_are_refused():
    x = tape.constant(1.0)
    with pytest.raises(ValueError, match="2 primal.* but 1 tangent"):
        ForwardAccumulator([x, x], [1.0])
    with pytest.raises(ValueError, match="watched twice"):
        ForwardAccumulator([x, x], [1.0, 2.0])


def test_integer_and_python_tangents_take_the_primal_dtype():
    x, s = tape.constant(np.ones(2, np.float32)), tape.constant(np.float32(1.0))
    with ForwardAccumulator([x, s], [np.array([1, 2]), 1.0]) as acc:
        y = x * s
    assert acc.jvp(y).dtype == np.float32
    assert acc.jvp(y).numpy().tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="1 primal.* but 2 tangent"):
        ForwardAccumulator(x, [1.0, 2.0])  # a list is a structure, as in TensorFlow


def test_entering_twice_and_jvp_of_an_array_are_errors():
    x = tape.constant(1.0)
    acc = ForwardAccumulator(x, 1.0)
    with acc:
        with pytest.raises(RuntimeError, match="already active"):
            acc.__enter__()
    with pytest.raises(TypeError, match="expects tensors or Variables, got ndarray"):
        acc.jvp(np.ones(2))
    assert STATE.tapes == []


def test_tangents_of_dead_values_are_released():
    x = tape.constant(np.ones(3))
    with ForwardAccumulator(x, np.ones(3)) as acc:
        for _ in range(50):
            y = tape.exp(x) * 2
        assert len(acc._tracked) <= 4  # x, and the live intermediate and output only
    assert float(acc.jvp(y)[0]) == pytest.approx(2 * np.e)


def test_operations_without_a_tangent_are_not_seen():
    x, c = tape.constant(1.0), tape.constant(2.0)
    with ForwardAccumulator(x, 1.0) as acc:
        before = len(acc._tracked)
        _ = c * c
    assert len(acc._tracked) == before


# ---- nesting with tapes and accumulators -------------------------------------------------
def test_forward_over_reverse_is_the_hessian_vector_product(rng):
    x0, v = rng.uniform(-1, 1, 4), rng.standard_normal(4)
    x = tape.constant(x0)
    with ForwardAccumulator(x, v) as acc:
        with Tape() as t:
            t.watch(x)
            y = cubic(x)
        g = t.gradient(y, x)
    np.testing.assert_allclose(acc.jvp(g).numpy(), hessian_of_cubic(x0) @ v, rtol=1e-12)


def test_reverse_over_forward_differentiates_the_tangent(rng):
    x0, v = rng.uniform(-1, 1, 4), rng.standard_normal(4)
    x = tape.constant(x0)
    with Tape() as t:
        t.watch(x)
        with ForwardAccumulator(x, v) as acc:
            y = cubic(x)
        jt = acc.jvp(y)
    np.testing.assert_allclose(t.gradient(jt, x).numpy(), hessian_of_cubic(x0) @ v, rtol=1e-12)


def test_nested_accumulators_give_second_directional_derivatives(rng):
    x0, u, v = rng.uniform(-1, 1, 4), rng.standard_normal(4), rng.standard_normal(4)
    x = tape.constant(x0)
    with ForwardAccumulator(x, u) as outer:
        with ForwardAccumulator(x, v) as inner:
            y = cubic(x)
        d2 = outer.jvp(inner.jvp(y))
    np.testing.assert_allclose(float(d2), u @ hessian_of_cubic(x0) @ v, rtol=1e-12)


def test_an_inner_tape_does_not_record_the_tangent_computation():
    x = Variable(2.0)
    with ForwardAccumulator(x, 1.0) as acc:
        with Tape(persistent=True) as t:
            y = x * x
    assert [r.primitive.name for r in t._records] == ["multiply"]
    assert float(acc.jvp(y)) == 4.0


def test_gradient_inside_an_accumulator_is_unchanged(rng):
    w = Variable(rng.standard_normal((3, 2)))
    x = rng.standard_normal((4, 3))
    with Tape() as t:
        y = tape.sum(tape.tanh(x @ w))
    plain = t.gradient(y, w)
    with ForwardAccumulator(w, np.ones((3, 2))):
        with Tape() as t:
            y = tape.sum(tape.tanh(x @ w))
        inside = t.gradient(y, w)
    np.testing.assert_array_equal(inside.numpy(), plain.numpy())


# ---- functional forms ----------------------------------------------------------------------
def test_jvp_returns_outputs_and_tangents_in_their_structure():
    x = np.array([0.5, 1.0])
    out, tangent = tape.jvp(lambda a, b: {"s": a * b, "c": tape.constant(1.0)},
                            [x, 3.0], [np.ones(2), 1.0])
    np.testing.assert_allclose(tangent["s"].numpy(), 3 + x)
    assert float(tangent["c"]) == 0.0
    with pytest.raises(TypeError, match="sequences of positional arguments"):
        tape.jvp(tape.exp, x, np.ones(2))


def test_hvp_matches_the_hessian(rng):
    x0, v = rng.uniform(-1, 1, 5), rng.standard_normal(5)
    np.testing.assert_allclose(tape.hvp(cubic, x0, v).numpy(), hessian_of_cubic(x0) @ v,
                               rtol=1e-12)


def test_hvp_over_a_list_of_variables():
    a, b = Variable([1.0, 2.0]), Variable(3.0)
    hv = tape.hvp(lambda p: tape.sum(p[0] ** 2) * p[1], [a, b], [np.array([1.0, 0.0]), 1.0])
    # H = [[2b, 0, 2a0], [0, 2b, 2a1], [2a0, 2a1, 0]] at a=(1,2), b=3
    np.testing.assert_allclose(hv[0].numpy(), [6.0 + 2.0, 4.0])
    assert float(hv[1]) == 2.0


# ---- Jacobians in forward mode -------------------------------------------------------------
def test_forward_jacobian_equals_reverse(rng):
    x = Variable(rng.standard_normal(3))
    m = rng.standard_normal((5, 3))
    with Tape(persistent=True) as t:
        lin = tape.matmul(m, x) * 2 + 1
        y = tape.exp(lin) * tape.sum(x)
    for target in (lin, y):
        rev = t.jacobian(target, x).numpy()
        fwd = t.jacobian(target, x, mode="forward").numpy()
        np.testing.assert_allclose(fwd, rev, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(t.jacobian(lin, x, mode="forward").numpy(), 2 * m)


def test_auto_mode_goes_forward_when_inputs_are_fewer(monkeypatch):
    x = Variable([1.0, 2.0])
    with Tape(persistent=True) as t:
        y = tape.concatenate([x * x, tape.sin(x), x])
    monkeypatch.setattr(Tape, "gradient", lambda *a, **k: pytest.fail("reverse mode used"))
    jac = t.jacobian(y, x, mode="auto")
    assert jac.shape == (6, 2)


def test_forward_jacobian_shapes_structures_and_unconnected():
    x, s, c = Variable(np.ones((2, 2))), Variable(2.0), Variable(1.0)
    with Tape(persistent=True) as t:
        y = x * s
    jx, js, jc = t.jacobian(y, [x, s, c], mode="forward")
    assert jx.shape == (2, 2, 2, 2) and js.shape == (2, 2) and jc is None
    zero = t.jacobian(y, c, mode="forward", unconnected_gradients="zero")
    assert zero.shape == (2, 2) and not zero.numpy().any()
    with pytest.raises(ValueError, match="mode must be one of"):
        t.jacobian(y, x, mode="sideways")


def test_forward_jacobian_is_differentiable_under_an_outer_tape():
    x = Variable([0.3, -0.7])
    with Tape() as outer:
        with Tape(persistent=True) as inner:
            y = tape.sin(x) * x
        jac = inner.jacobian(y, x, mode="forward")
        total = tape.sum(jac)
    # sum of the diagonal of d/dx (sin x * x) = cos x * x + sin x; its derivative:
    expected = -np.sin(x.numpy()) * x.numpy() + 2 * np.cos(x.numpy())
    np.testing.assert_allclose(outer.gradient(total, x).numpy(), expected, rtol=1e-12)


def test_forward_jacobian_refuses_a_variable_assigned_since():
    w = Variable([1.0, 2.0], name="w")
    with Tape(persistent=True) as t:
        y = w * w
    w.assign([3.0, 4.0])
    with pytest.raises(RuntimeError, match="Variable 'w' was assigned after"):
        t.jacobian(y, w, mode="forward")


# ---- custom_gradient in forward mode --------------------------------------------------------
@tape.custom_gradient
def clipped(x):
    return tape.identity(x), lambda g: tape.clip(g, -1.0, 1.0)


def test_custom_gradient_without_a_jvp_refuses_forward_mode():
    x = tape.constant([1.0, 2.0])
    with pytest.raises(TypeError, match=r"'clipped' has only a reverse-mode rule.*"
                                        r"@clipped.defjvp"):
        with ForwardAccumulator(x, np.ones(2)):
            clipped(x)


def test_custom_gradient_with_a_jvp_uses_it_forward_and_grad_fn_backward():
    @tape.custom_gradient
    def double(x):
        return x * 2, lambda g: g * 100  # a deliberately different reverse rule

    double.defjvp(lambda primals, tangents: tangents[0] * 2)
    x = Variable([1.0, 2.0])
    with Tape() as t:
        with ForwardAccumulator(x, np.array([1.0, -1.0])) as acc:
            y = double(x)
    assert acc.jvp(y).numpy().tolist() == [2.0, -2.0]
    assert t.gradient(y, x).numpy().tolist() == [100.0, 100.0]


def test_custom_gradient_reading_a_variable_with_a_tangent_is_refused():
    w = Variable(2.0, name="w")

    @tape.custom_gradient
    def scale(x):
        return x * w, lambda g, variables: (g * w, [g * x])

    scale.defjvp(lambda primals, tangents: tangents[0] * w)
    x = tape.constant(1.0)
    with pytest.raises(TypeError, match="reads Variable 'w', which has a tangent"):
        with ForwardAccumulator([x, w], [1.0, 1.0]):
            scale(x)


# ---- fused primitives against their compositions --------------------------------------------
def _batch_norm_composed(x, gamma, beta, epsilon=1e-3):
    mean = tape.mean(x, axis=0, keepdims=True)
    var = tape.mean((x - mean) ** 2, axis=0, keepdims=True)
    return (x - mean) / tape.sqrt(var + epsilon) * gamma + beta


def _xent_composed(z, y, smoothing):
    y = y * (1 - smoothing) + smoothing / z.shape[-1]
    log_p = z - tape.logsumexp(z, axis=-1, keepdims=True)
    return tape.mean(-tape.sum(y * log_p, axis=-1))


def test_batch_norm_jvp_matches_its_composition(rng):
    args = [rng.standard_normal((6, 3)), rng.standard_normal(3), rng.standard_normal(3)]
    tangents = [rng.standard_normal(a.shape) for a in args]
    _, fused = tape.jvp(nn.batch_norm, args, tangents)
    _, composed = tape.jvp(_batch_norm_composed, args, tangents)
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("labels", ["ids", "rows"])
def test_softmax_cross_entropy_jvp_matches_its_composition(rng, labels):
    z = rng.standard_normal((5, 4))
    ids = rng.integers(0, 4, 5)
    rows = np.eye(4)[ids] if labels == "ids" else rng.dirichlet(np.ones(4), 5)
    given = ids if labels == "ids" else rows
    tz = rng.standard_normal(z.shape)
    fused = tape.jvp(lambda a: nn.softmax_cross_entropy(a, given, label_smoothing=0.1), [z],
                     [tz])[1]
    composed = tape.jvp(lambda a: _xent_composed(a, rows, 0.1), [z], [tz])[1]
    np.testing.assert_allclose(float(fused), float(composed), rtol=1e-12)
