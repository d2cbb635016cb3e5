"""`Tape.jacobian` and `Tape.batch_jacobian`: TensorFlow's shapes, finite-difference values."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tape import Tape, Variable

A = np.random.default_rng(1).standard_normal((2, 3, 4))


def f(x):
    """Target of shape (2, 3) from a source of shape (4, 2)."""
    return tape.tanh(tape.matmul(A, x))[..., 0] * tape.sum(x ** 2)


def finite_difference_columns(fn, x, eps=1e-6):
    """The Jacobian built one source element (column) at a time."""
    columns = []
    for e in np.eye(x.size):
        step = eps * e.reshape(x.shape)
        columns.append((fn(x + step) - fn(x - step)) / (2 * eps))
    return np.stack(columns, axis=-1).reshape(np.shape(columns[0]) + x.shape)


def values_of(fn):
    return lambda x: fn(tape.constant(x)).numpy()


def test_jacobian_matches_a_column_by_column_loop(rng):
    x = Variable(rng.standard_normal((4, 2)))
    with Tape(persistent=True) as t:
        y = f(x)
    jac = t.jacobian(y, x)
    assert jac.shape == (2, 3, 4, 2)
    np.testing.assert_allclose(jac.numpy(), finite_difference_columns(values_of(f), x.numpy()),
                               rtol=1e-6, atol=1e-8)


def test_jacobian_of_a_linear_map_is_the_matrix(rng):
    m = rng.standard_normal((3, 4))
    x = Variable(rng.standard_normal(4))
    with Tape(persistent=True) as t:
        y = tape.matmul(m, x)
    np.testing.assert_allclose(t.jacobian(y, x).numpy(), m)


def test_jacobian_shapes_for_scalars_and_structures(rng):
    x, s = Variable(rng.standard_normal(3)), Variable(2.0)
    with Tape(persistent=True) as t:
        y = tape.sum(x) * s
        v = x * s
    assert t.jacobian(y, x).shape == (3,)
    assert t.jacobian(y, s).shape == ()
    result = t.jacobian(v, {"x": x, "pair": [s, x]})
    assert result["x"].shape == (3, 3) and result["pair"][0].shape == (3,)
    np.testing.assert_allclose(result["pair"][1].numpy(), 2.0 * np.eye(3))
    np.testing.assert_allclose(result["pair"][0].numpy(), x.numpy())


def test_jacobian_dtype_follows_the_source():
    x = Variable(np.ones(3, np.float32))
    with Tape(persistent=True) as t:
        y = x * 2
    assert t.jacobian(y, x).dtype == np.float32


def test_unconnected_gradients_in_jacobians():
    x, u = Variable(np.ones(3)), Variable(np.ones((2, 2)))
    with Tape(persistent=True) as t:
        y = x * 2
    assert t.jacobian(y, u) is None
    zeros = t.jacobian(y, u, unconnected_gradients="zero")
    assert zeros.shape == (3, 2, 2) and not zeros.numpy().any()
    rows, other = tape.reshape(y, (3, 1)), Variable(np.ones((3, 2)))
    assert t.batch_jacobian(rows, other) is None
    assert t.batch_jacobian(rows, other, unconnected_gradients="zero").shape == (3, 1, 2)
    with pytest.raises(ValueError, match="unconnected_gradients"):
        t.jacobian(y, x, unconnected_gradients="nan")


def test_partially_connected_rows_are_zeros():
    x = Variable(np.array([1.0, 2.0]))
    with Tape(persistent=True) as t:
        y = tape.concatenate([x * x, tape.constant([7.0])])
    np.testing.assert_allclose(t.jacobian(y, x).numpy(), [[2.0, 0.0], [0.0, 4.0], [0.0, 0.0]])


def test_jacobian_needs_a_persistent_tape():
    x = Variable(np.ones(2))
    with Tape() as t:
        y = x * x
    with pytest.raises(RuntimeError, match="persistent=True"):
        t.jacobian(y, x)
    with pytest.raises(RuntimeError, match="persistent=True"):
        t.batch_jacobian(tape.reshape(y, (2, 1)), tape.reshape(x, (2, 1)))


def test_jacobian_inside_the_tape_block_records_nothing_on_it():
    x = Variable(np.ones(2))
    with Tape(persistent=True) as t:
        y = x * x
        jac = t.jacobian(y, x)
        records = t.stats().records
        z = y * 2
    assert records == 1 and np.allclose(jac.numpy(), 2 * np.eye(2))
    assert t.stats().records == 2 and np.allclose(t.jacobian(z, x).numpy(), 4 * np.eye(2))


def test_jacobian_is_differentiable_by_an_outer_tape():
    x = Variable(np.array([0.5, -0.3]))
    with Tape() as outer:
        with Tape(persistent=True) as inner:
            y = tape.sin(x) * x[::-1]
        jac = inner.jacobian(y, x)
        total = tape.sum(jac)
    # sum of the Jacobian of [sin(x0) x1, sin(x1) x0] = cos(x0) x1 + sin(x0) + sin(x1) + cos(x1) x0
    expected = [-np.sin(0.5) * -0.3 + np.cos(0.5) + np.cos(-0.3),
                np.cos(0.5) + np.cos(-0.3) - np.sin(-0.3) * 0.5]
    np.testing.assert_allclose(outer.gradient(total, x).numpy(), expected)


# ---- batch_jacobian -------------------------------------------------------------------------

W = np.random.default_rng(2).standard_normal((3, 2, 4))


def per_example(x):
    """(batch, 3, 2) from (batch, 4): each row uses only its own example."""
    return tape.tanh(tape.matmul(W, tape.expand_dims(x, (1, 3)))[..., 0]) * tape.sum(
        x ** 2, axis=1, keepdims=True)[:, :, None]


def test_batch_jacobian_is_the_diagonal_blocks_of_the_jacobian(rng):
    x = Variable(rng.standard_normal((5, 4)))
    with Tape(persistent=True) as t:
        y = per_example(x)
    batch = t.batch_jacobian(y, x)
    full = t.jacobian(y, x).numpy()
    assert y.shape == (5, 3, 2) and batch.shape == (5, 3, 2, 4) and full.shape == (5, 3, 2, 5, 4)
    blocks = np.stack([full[b, :, :, b, :] for b in range(5)])
    np.testing.assert_allclose(batch.numpy(), blocks, rtol=1e-12, atol=1e-14)


def test_batch_jacobian_of_a_two_dimensional_source(rng):
    x = Variable(rng.standard_normal((3, 2, 2)))
    with Tape(persistent=True) as t:
        y = tape.reshape(x * x, (3, 4))
    jac = t.batch_jacobian(y, x)
    assert jac.shape == (3, 4, 2, 2)
    np.testing.assert_allclose(jac.numpy()[1].reshape(4, 4), np.diag(2 * x.numpy()[1].ravel()))


def test_batch_jacobian_rejects_mismatched_or_low_rank_shapes():
    x = Variable(np.ones((3, 2)))
    with Tape(persistent=True) as t:
        y = x * 2
        flat = tape.sum(x, axis=1)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        t.batch_jacobian(flat, x)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        t.batch_jacobian(tape.transpose(y), x)


def test_accepted_arguments_that_change_nothing(rng):
    x = Variable(rng.standard_normal((3, 2)))
    with Tape(persistent=True) as t:
        y = tape.sin(x) * 2
    plain = t.jacobian(y, x).numpy()
    np.testing.assert_array_equal(
        t.jacobian(y, x, parallel_iterations=4, experimental_use_pfor=False).numpy(), plain)
    np.testing.assert_array_equal(
        t.batch_jacobian(y, x, parallel_iterations=4, experimental_use_pfor=False).numpy(),
        t.batch_jacobian(y, x).numpy())
