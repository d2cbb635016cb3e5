"""Tensor, Variable and Tape behaviour, and the errors bad input gets."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tape
from tape import Tape, Tensor, Variable


def descend(cost_fn, w, steps=200, lr=0.1):
    for _ in range(steps):
        with Tape() as t:
            cost = cost_fn()
        (dw,) = t.gradient(cost, [w])
        w.assign_sub(lr * dw)
    return w


# ---- the seed example ------------------------------------------------------------------------
def test_seed_example_reaches_five():
    w = Variable(0.0)
    descend(lambda: w**2 - 10 * w + 25, w)
    assert abs(w.numpy() - 5.0) < 1e-6


def test_seed_example_with_coefficients_in_an_array():
    x = np.array([1.0, -10.0, 25.0])
    w = Variable(0.0)
    descend(lambda: x[0] * w**2 + x[1] * w + x[2], w)
    assert abs(w.numpy() - 5.0) < 1e-6


def test_least_squares_with_matrices_batches_and_broadcasting():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    w_true, b_true = np.array([1.0, -2.0, 0.5]), 0.3
    y = X @ w_true + b_true
    w, b = Variable(np.zeros(3)), Variable(0.0)
    for _ in range(300):
        with Tape() as t:
            loss = tape.mean((X @ w + b - y) ** 2)
        dw, db = t.gradient(loss, [w, b])
        w.assign_sub(0.1 * dw)
        b.assign_sub(0.1 * db)
    np.testing.assert_allclose(w.numpy(), w_true, atol=1e-6)
    assert abs(float(b) - b_true) < 1e-6


# ---- operators ---------------------------------------------------------------------------
@pytest.mark.parametrize("expr, expected", [
    (lambda w: 10 * w, 10.0),
    (lambda w: 25 - w, -1.0),
    (lambda w: w / 2, 0.5),
    (lambda w: 2 / w, -2 / 9),
    (lambda w: 2**w, 8 * np.log(2)),
    (lambda w: w**3, 27.0),
    (lambda w: -w, -1.0),
    (lambda w: abs(-w), 1.0),
    (lambda w: +w * w, 6.0),
    (lambda w: np.float64(2.0) * w, 2.0),
    (lambda w: np.array([1.0, 2.0]) * w, 3.0),
])
def test_operators_and_reflected_operators(expr, expected):
    w = Variable(3.0)
    with Tape() as t:
        y = expr(w)
    assert float(t.gradient(y, w)) == pytest.approx(expected)


def test_matmul_operator_both_ways():
    w = Variable(np.ones((2, 3)))
    x = np.arange(6.0).reshape(3, 2)
    with Tape() as t:
        y = tape.sum(w @ x) + tape.sum(x @ w)
    np.testing.assert_allclose(t.gradient(y, w).numpy(),
                               np.ones((2, 2)) @ x.T + x.T @ np.ones((3, 3)))


def test_dtype_follows_numpy_nep50():
    assert Variable(0.0).dtype == np.float64
    assert Variable(1).dtype == np.int64
    x = tape.constant(np.ones(3, np.float32))
    assert (x * 2.0).dtype == np.float32
    assert (x + np.float64(1.0)).dtype == np.float64
    assert Variable(0.0, dtype="float32").dtype == np.float32


def test_comparisons_are_plain_boolean_arrays():
    x = tape.constant([1.0, 2.0, 3.0])
    for result in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2):
        assert isinstance(result, np.ndarray) and result.dtype == bool
    np.testing.assert_array_equal(x > 1.5, [False, True, True])


def test_indexing_basic_and_advanced_with_repeated_indices():
    w = Variable(np.arange(4.0))
    with Tape() as t:
        y = tape.sum(w[[0, 0, 3]]) + tape.sum(w[1:3] * 2) + w[-1]
    np.testing.assert_array_equal(t.gradient(y, w).numpy(), [2.0, 2.0, 2.0, 2.0])


def test_tensor_index_inside_brackets_is_not_differentiated():
    w = Variable(np.arange(4.0))
    idx = tape.constant(np.array([1, 1]))
    with Tape() as t:
        y = tape.sum(w[idx])
    np.testing.assert_array_equal(t.gradient(y, w).numpy(), [0, 2, 0, 0])


def test_inspection_properties_and_repr():
    t = tape.constant(np.zeros((2, 3), np.float32))
    assert (t.shape, t.dtype, t.ndim, t.size) == ((2, 3), np.float32, 2, 6)
    assert t.T.shape == (3, 2)
    assert isinstance(t.numpy(), np.ndarray)
    assert np.asarray(t).shape == (2, 3)
    assert "shape=(2, 3)" in repr(t) and "float32" in repr(t)
    v = Variable([1.0, 2.0], name="weights")
    assert "weights" in repr(v) and "shape=(2,)" in repr(v)


def test_variable_numpy_is_a_snapshot():
    v = Variable([1.0, 2.0])
    snapshot = v.numpy()
    v.assign([5.0, 6.0])
    np.testing.assert_array_equal(snapshot, [1.0, 2.0])


def test_assign_is_not_recorded():
    w = Variable(2.0)
    with Tape() as t:
        y = w * 3
        w.assign_add(1.0)
        w.assign_sub(0.5)
    assert float(w) == 2.5
    assert len(t._records) == 1
    # `multiply` reads w's value in its rule for the *other* input only; w's own gradient is 3
    with pytest.raises(RuntimeError, match=w.name):
        t.gradient(y, w)


def test_assign_rejects_wrong_shape_with_names():
    v = Variable(np.zeros(3), name="kernel")
    with pytest.raises(ValueError, match="kernel.*shape"):
        v.assign(np.zeros(4))
    with pytest.raises(ValueError, match="kernel"):
        v.assign_sub(np.zeros((2, 3)))



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", ["same array", "other dtype", "broadcast", "python float",
                                   "int list"])
def test_writes_give_numpys_bits_in_place_and_count_as_writes(dtype, value):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 4)).astype(dtype)
    delta = {"same array": rng.standard_normal((3, 4)).astype(dtype),
             "other dtype": rng.standard_normal((3, 4)).astype(np.float16),
             "broadcast": rng.standard_normal(4).astype(dtype),
             "python float": 0.1, "int list": [1, 2, 3, 4]}[value]
    for method, ufunc in (("assign", None), ("assign_add", np.add), ("assign_sub", np.subtract)):
        v = Variable(start.copy())
        storage, version = v._value, v._version
        if ufunc is None and np.shape(delta) != start.shape:  # assign takes the shape only
            with pytest.raises(ValueError, match="differs from the variable's shape"):
                v.assign(delta)
            np.testing.assert_array_equal(v.numpy(), start, strict=True)
            continue
        getattr(v, method)(delta)
        expected = (np.broadcast_to(np.asarray(delta).astype(dtype), start.shape)
                    if ufunc is None else ufunc(start, np.asarray(delta), dtype=dtype,
                                                casting="same_kind"))
        np.testing.assert_array_equal(v.numpy(), expected, strict=True)
        assert v._value is storage and v._version == version + 1

# ---- Tape ------------------------------------------------------------------------------
def test_persistent_tape_gives_several_gradients():
    x = Variable(3.0)
    with Tape(persistent=True) as t:
        y = x * x
        z = y * y
    assert float(t.gradient(z, x)) == pytest.approx(108.0)
    assert float(t.gradient(y, x)) == pytest.approx(6.0)


def test_watch_accessed_variables_false_needs_explicit_watch():
    a, b = Variable(2.0), Variable(3.0)
    with Tape(watch_accessed_variables=False) as t:
        t.watch(a)
        y = a * b
    ga, gb = t.gradient(y, [a, b])
    assert float(ga) == 3.0 and gb is None
    assert t.watched_variables() == (a,)


def test_watch_constant_tensor_and_watched_variables_order():
    x = tape.constant(2.0)
    v1, v2 = Variable(1.0), Variable(1.0)
    with Tape() as t:
        t.watch(x)
        y = x**2 * v2 * v1
    assert t.watched_variables() == (v2, v1)
    assert float(t.gradient(y, x)) == 4.0


def test_non_trainable_variables_are_not_watched_automatically():
    v = Variable(1.0, trainable=False)
    with Tape() as t:
        y = v * 2
    assert t.gradient(y, v) is None


def test_nested_source_structures_keep_their_shape():
    a, b, c = Variable(1.0), Variable(2.0), Variable(3.0)
    with Tape() as t:
        y = a * b * c
    grads = t.gradient(y, {"first": [a, (b,)], "second": c})
    assert set(grads) == {"first", "second"}
    assert isinstance(grads["first"], list) and isinstance(grads["first"][1], tuple)
    assert [float(grads["first"][0]), float(grads["first"][1][0]), float(grads["second"])] \
        == [6.0, 3.0, 2.0]


def test_single_source_gives_single_gradient():
    w = Variable(1.0)
    with Tape() as t:
        y = w * 5
    assert isinstance(t.gradient(y, w), Tensor)


def test_non_scalar_targets_are_summed():
    w = Variable(np.array([1.0, 2.0]))
    with Tape() as t:
        y = w * w
    np.testing.assert_array_equal(t.gradient(y, w).numpy(), [2.0, 4.0])


def test_output_gradients_weight_the_target():
    w = Variable(np.array([1.0, 2.0]))
    with Tape() as t:
        y = w * w
    np.testing.assert_array_equal(t.gradient(y, w, output_gradients=[1.0, 10.0]).numpy(),
                                  [2.0, 40.0])


def test_list_of_targets_adds_their_gradients():
    w = Variable(2.0)
    with Tape() as t:
        y1, y2 = w * 3, w * w
    assert float(t.gradient([y1, y2], w)) == 7.0


def test_stop_recording_pauses_the_tape():
    w = Variable(2.0)
    with Tape() as t:
        y = w * w
        with t.stop_recording():
            z = y * 10
        u = y + z
    assert float(t.gradient(u, w)) == 4.0


def test_stop_recording_outside_the_block_is_an_error():
    with pytest.raises(RuntimeError, match="with"):
        with Tape().stop_recording():
            pass


def test_reset_forgets_what_was_recorded():
    w = Variable(2.0)
    with Tape() as t:
        y = w * w
        t.reset()
        z = w * 3
    assert t.gradient([y, z], w) is not None
    with Tape(persistent=True) as t:
        y = w * w
        t.reset()
    assert t.gradient(y, w) is None


def test_nested_tapes_both_record_first_order():
    w = Variable(3.0)
    with Tape() as outer:
        with Tape() as inner:
            y = w * w
        assert float(inner.gradient(y, w)) == 6.0
    assert float(outer.gradient(y, w)) == 6.0


def test_tapes_are_thread_local():
    results = {}

    def work(name, value):
        w = Variable(value)
        with Tape() as t:
            barrier.wait()
            y = w * w
            barrier.wait()
        watched = len(t.watched_variables())
        results[name] = (float(t.gradient(y, w)), watched)

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=work, args=(n, v)) for n, v in (("a", 1.0), ("b", 5.0))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == {"a": (2.0, 1), "b": (10.0, 1)}


def test_non_persistent_tape_releases_its_records():
    w = Variable(np.ones(1000))
    with Tape() as t:
        y = tape.sum(w * w)
    t.gradient(y, w)
    assert t._records is None and not t._tracked


def test_unconnected_gradients():
    a, b = Variable(1.0), Variable(np.ones(2, np.float32))
    with Tape(persistent=True) as t:
        y = a * 2
    assert t.gradient(y, b) is None
    zero = t.gradient(y, b, unconnected_gradients="zero")
    assert zero.dtype == np.float32 and np.all(zero.numpy() == 0) and zero.shape == (2,)


def test_gradient_of_a_constant_target_is_none():
    w = Variable(1.0)
    with Tape() as t:
        pass
    assert t.gradient(3.0, w) is None


# ---- errors ----------------------------------------------------------------------------
def test_second_gradient_on_non_persistent_tape():
    w = Variable(1.0)
    with Tape() as t:
        y = w * w
    t.gradient(y, w)
    with pytest.raises(RuntimeError, match="persistent=True"):
        t.gradient(y, w)


@pytest.mark.parametrize("source", [Variable(1), tape.constant(np.array([True])),
                                    tape.constant(np.arange(3))])
def test_integer_and_bool_sources_are_type_errors(source):
    with Tape() as t:
        y = source * 2.0
    with pytest.raises(TypeError, match=str(source.dtype)):
        t.gradient(y, source)


def test_integer_variables_may_exist_and_be_used():
    steps = Variable(0)
    w = Variable(1.0)
    with Tape() as t:
        y = w * steps + w
    assert float(t.gradient(y, w)) == 1.0


def test_watching_an_integer_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="int64"):
        Tape().watch(tape.constant(np.arange(3)))
    with pytest.raises(TypeError, match="tape.constant"):
        Tape().watch(np.ones(3))


def test_unknown_unconnected_gradients_value():
    w = Variable(1.0)
    with Tape() as t:
        y = w * 2
    with pytest.raises(ValueError, match="'none' or 'zero'"):
        t.gradient(y, w, unconnected_gradients="zeros")


def test_output_gradients_shape_mismatch_names_both_shapes():
    w = Variable(np.ones(3))
    with Tape() as t:
        y = w * 2
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        t.gradient(y, w, output_gradients=np.ones(2))


def test_shapes_that_do_not_broadcast_fail_at_the_op_with_both_shapes():
    a, b = tape.constant(np.ones((2, 3))), tape.constant(np.ones(4))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        a + b


def test_matmul_mismatch_names_both_shapes():
    a, b = tape.constant(np.ones((2, 3))), tape.constant(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        a @ b


def test_variable_assigned_before_gradient_on_persistent_tape():
    w = Variable(2.0, name="slope")
    with Tape(persistent=True) as t:
        y = w * w
    t.gradient(y, w)
    w.assign(5.0)
    with pytest.raises(RuntimeError, match="slope"):
        t.gradient(y, w)


def test_assignment_is_harmless_when_the_rule_does_not_need_the_value():
    w = Variable(2.0)
    with Tape(persistent=True) as t:
        y = w + 1
    w.assign(5.0)
    assert float(t.gradient(y, w)) == 1.0


def test_gradient_inside_the_block_of_a_non_persistent_tape():
    w = Variable(3.0)
    with Tape() as t:
        y = w * w
        g = t.gradient(y, w)
        z = y * 2  # no longer recorded: the tape was used up
    assert float(g) == 6.0
    with pytest.raises(RuntimeError, match="persistent"):
        t.gradient(z, w)


def test_persistent_tape_gradient_inside_its_block_keeps_recording():
    w = Variable(3.0)
    with Tape(persistent=True) as t:
        y = w * w
        assert float(t.gradient(y, w)) == 6.0
        z = y * 2
    assert float(t.gradient(z, w)) == 12.0


def test_missing_rule_is_a_clear_error():
    prim = tape.Primitive("no_rule_test", lambda x: x * 1.0, register=False)
    w = Variable(1.0)
    with Tape() as t:
        y = prim(w)
    with pytest.raises(tape.MissingGradientRule, match="no_rule_test"):
        t.gradient(y, w)


def test_duplicate_primitive_name_is_rejected():
    with pytest.raises(ValueError, match="already registered"):
        tape.Primitive("add", np.add)
