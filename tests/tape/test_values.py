"""What tensors and Variables accept, next to what they refuse (the refusals themselves are
swept in tests/reliability/test_bad_inputs.py): a refused write changes nothing, and the
values around each boundary still pass."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tape
from tape import Tape, Variable


@pytest.mark.parametrize("value, dtype, expected", [
    (True, None, np.bool_),
    (3, None, np.int64),
    (1j, None, np.complex128),             # complex state may be held, not differentiated
    (2**40, np.float32, np.float32),
    ([[1, 2], [3, 4]], np.float16, np.float16),
    (np.inf, np.float16, np.float16),      # inf written on purpose is not an overflow
    (-65504.0, np.float16, np.float16),    # float16's extremes themselves fit
    (tape.constant([1.0, 2.0]), None, np.float64),
])
def test_numbers_of_every_kind_are_accepted(value, dtype, expected):
    assert Variable(value, dtype=dtype).dtype == expected
    assert tape.constant(value, dtype=dtype).dtype == expected


def test_a_refused_float16_write_leaves_the_variable_unchanged():
    v = Variable(np.array([1.0, 60000.0], np.float16), name="h")
    for write in (lambda: v.assign([1.0, 1e5]), lambda: v.assign_add([1.0, 10000.0]),
                  lambda: v.assign_sub([0.0, -10000.0])):
        with pytest.raises(OverflowError, match="'h'.*unchanged"):
            write()
        np.testing.assert_array_equal(v.numpy(), np.array([1.0, 60000.0], np.float16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no overflow warning on the way
        v.assign_add([1.0, 5000.0])
    np.testing.assert_array_equal(v.numpy(), np.array([2.0, 65000.0], np.float16))
    v.assign([np.inf, -np.inf])
    assert np.isinf(v.numpy()).all()


def test_float32_and_float64_writes_keep_ieee_overflow():
    v = Variable(np.float32(3e38))
    with np.errstate(over="ignore"):
        v.assign_add(3e38)
    assert np.isinf(v.numpy())


def test_text_and_none_are_refused_before_anything_is_written():
    v = Variable(np.arange(3.0), name="v")
    for bad in (["a", "b", "c"], "abc", None, [[1.0, 2.0], [3.0]]):
        with pytest.raises((TypeError, ValueError), match="Variable 'v'"):
            v.assign(bad)
    np.testing.assert_array_equal(v.numpy(), np.arange(3.0))


def test_lists_of_untracked_tensors_still_convert():
    a, b = Variable(1.0, trainable=False), tape.constant(2.0)
    with Tape():
        np.testing.assert_array_equal(tape.exp([a, b, 3.0]).numpy(), np.exp([1.0, 2.0, 3.0]))
    w = Variable(1.0)
    np.testing.assert_array_equal(tape.exp([w, w]).numpy(), np.exp([1.0, 1.0]))  # no tape


def test_tape_stack_is_the_way_to_differentiate_a_list():
    a, b, W = Variable(1.0), Variable(2.0), Variable(np.array([[3.0], [4.0]]))
    with Tape(persistent=True) as t:
        y = tape.sum(tape.exp(tape.stack([a, b])))
        z = tape.sum(tape.matmul(tape.stack([tape.stack([a, b])]), W))
    np.testing.assert_array_equal([float(g) for g in t.gradient(y, [a, b])], np.exp([1.0, 2.0]))
    assert [float(g) for g in t.gradient(z, [a, b])] == [3.0, 4.0]


def test_numpy_functions_on_a_list_leave_the_tape_as_np_asarray_does():
    # NumPy converts the list itself, exactly as np.asarray would: documented, not refused,
    # and Tape.explain names it.
    a = Variable(1.0, name="a")
    with Tape() as t:
        y = np.exp([a, a])
        total = tape.constant(0.0) + y.sum()
    assert type(y) is np.ndarray
    assert t.explain(total, a).reason == "left_tape"


def test_clip_with_equal_bounds_is_allowed():
    np.testing.assert_array_equal(tape.clip(np.arange(3.0), 1, 1).numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(tape.clip(np.arange(3.0), [0, 1, 2], 2).numpy(), [0, 1, 2])


def test_complex_values_compute_forward_but_have_no_gradient():
    z = Variable(np.array([1 + 2j]), name="z")
    np.testing.assert_array_equal((z * z).numpy(), [(1 + 2j) ** 2])
    with Tape() as t:
        y = tape.sum(z * z)
    with pytest.raises(TypeError, match="complex128.*two floating-point Variables"):
        t.gradient(y, z)


def test_numeric_output_gradients_of_any_real_kind_are_accepted():
    w = Variable(np.ones(3))
    with Tape(persistent=True) as t:
        y = w * 2
    for weights in ([1, 2, 3], np.array([True, False, True]), tape.constant([1.0, 2.0, 3.0])):
        expected = 2 * np.asarray(weights, dtype=float)
        np.testing.assert_array_equal(t.gradient(y, w, output_gradients=weights).numpy(),
                                      expected)
