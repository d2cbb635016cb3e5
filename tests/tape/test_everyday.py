"""Everyday habits from PyTorch, TensorFlow and NumPy: in-place operators on Variables,
Python conversions of tensors, tapes used without `with`, NumPy functions without a primitive."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tape import Tape, Variable


# -- in-place operators on a Variable: refused with the fix, as TensorFlow does -------------
@pytest.mark.parametrize("update, fix", [
    (lambda w: w.__isub__(0.1), r"w\.assign_sub\(value\)"),
    (lambda w: w.__iadd__(0.1), r"w\.assign_add\(value\)"),
    (lambda w: w.__imul__(2.0), r"w\.assign\(w \* value\)"),
    (lambda w: w.__itruediv__(2.0), r"w\.assign\(w / value\)"),
])
def test_in_place_operators_on_a_variable_raise_with_the_fix(update, fix):
    w = Variable([1.0, 2.0], name="w")
    with pytest.raises(RuntimeError, match=r"on Variable 'w' is not supported.*" + fix):
        update(w)
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])


def test_the_pytorch_update_line_raises_at_once():
    w = Variable(1.0, name="w")
    with Tape() as t:
        y = w * w
    dw = t.gradient(y, w)
    with pytest.raises(RuntimeError, match=r"`w -= value` on Variable 'w'.*assign_sub"):
        w -= 0.1 * dw
    assert isinstance(w, Variable) and float(w) == 1.0


def test_in_place_operators_on_a_tensor_rebind_as_numbers_do():
    x = tape.constant(1.0)
    y = x
    x += 1
    assert float(x) == 2.0 and float(y) == 1.0


# -- Python conversions: item, tolist, format -------------------------------------------------
def test_item_tolist_and_format_give_python_values():
    loss = tape.constant(np.float32(0.123456))
    assert isinstance(loss.item(), float) and loss.item() == pytest.approx(0.123456)
    assert f"{loss:.3f}" == "0.123"
    assert f"{tape.constant(3):>4d}" == "   3"
    assert tape.constant([[1.0, 2.0]]).tolist() == [[1.0, 2.0]]
    assert tape.constant([[5]]).item() == 5
    assert f"{tape.constant([1.0])}" == str(tape.constant([1.0]))
    with pytest.raises(ValueError, match="size 1"):
        tape.constant([1.0, 2.0]).item()


def test_item_and_format_inside_a_tape_work():
    w = Variable(2.0)
    with Tape() as t:
        y = w * 3
        assert y.item() == 6.0 and f"{y:.1f}" == "6.0"
    assert float(t.gradient(y, w)) == 3.0


# -- the matmul shape error, in words ----------------------------------------------------------
@pytest.mark.parametrize("a, b, words", [
    ((32, 64), (32, 10), r"\(32, 64\) by \(32, 10\): inner sizes 64 and 32 differ"),
    ((5, 3), (4,), r"\(5, 3\) by \(4,\): inner sizes 3 and 4 differ"),
    ((2, 3, 4), (3, 4, 1), r"batch shapes \(2,\) and \(3,\) .* do not broadcast"),
    ((), (3,), r"the first operand is a scalar.*use \*"),
])
def test_matmul_mismatch_is_said_once_in_words(a, b, words):
    with pytest.raises(ValueError, match="^matmul: cannot multiply .*" + words) as info:
        tape.constant(np.ones(a)) @ np.ones(b)
    assert "gufunc" not in str(info.value) and "matmul: matmul" not in str(info.value)


# -- a Tape used without `with` ---------------------------------------------------------------
def test_gradient_on_a_tape_never_entered_raises_with_the_fix():
    w = Variable(1.0, name="w")
    t = Tape()
    y = w * w
    with pytest.raises(RuntimeError, match=r"gradient\(\) on a Tape that was never entered.*"
                                           r"with tape\.Tape\(\) as t:"):
        t.gradient(y, w)


def test_explain_says_the_tape_was_never_entered():
    w = Variable(1.0, name="w")
    t = Tape(persistent=True)
    y = w * w
    e = t.explain(y, w)
    assert e.reason == "never_entered"
    assert "never entered" in e and "was not read while" not in e


def test_an_entered_tape_is_unchanged():
    w = Variable(1.0, name="w")
    with Tape(persistent=True) as t:
        y = w * w
    assert float(t.gradient(y, w)) == 2.0 and t.explain(y, w).reason == "connected"


# -- ops with NumPy names follow NumPy -------------------------------------------------------
A = np.arange(24.0).reshape(2, 3, 4)


@pytest.mark.parametrize("indices, kw", [
    ([5, 0, 5], {}), (np.array([[1, 2], [0, 0]]), {}), (7, {}),
    ([2, 0, 2], {"axis": 1}), ([3, 3], {"axis": -1}), (1, {"axis": 0}),
    ([30, -1], {"mode": "wrap"}), ([30, -1], {"mode": "clip", "axis": 2}),
])
def test_take_is_numpy_take_with_its_gradient_on_every_axis(indices, kw):
    np.testing.assert_array_equal(tape.take(A, indices, **kw).numpy(), np.take(A, indices, **kw))
    np.testing.assert_array_equal(np.take(tape.constant(A), indices, **kw).numpy(),
                                  np.take(A, indices, **kw))
    tape.check_gradients(lambda a: tape.take(a, indices, **kw), A)


def test_take_refuses_bad_arguments_in_words():
    with pytest.raises(IndexError, match=r"^take: index 5 is out of bounds for axis 0 with size "
                                         r"3, in x\[5\]"):
        tape.take(np.arange(3.0), 5)
    with pytest.raises(ValueError, match=r"take: axis 3 is out of range for an array of shape"):
        tape.take(A, 0, axis=3)
    with pytest.raises(ValueError, match=r"take: mode must be one of"):
        tape.take(A, 0, mode="bogus")


def test_concatenate_with_axis_none_flattens_as_numpy_does():
    parts = [np.ones((2, 2)), np.arange(3.0)]
    np.testing.assert_array_equal(tape.concatenate(parts, axis=None).numpy(),
                                  np.concatenate(parts, axis=None))
    tape.check_gradients(lambda a, b: tape.concatenate([a, b], axis=None) * np.arange(7.0), *parts)


def test_moveaxis_takes_sequences_and_clip_takes_numpy_2_keywords():
    x = np.zeros((2, 3, 4, 5))
    for src, dst in (([0, 1], [-1, -2]), ([3, 0], [0, 2]), (1, 3)):
        assert tape.moveaxis(x, src, dst).shape == np.moveaxis(x, src, dst).shape
    np.testing.assert_array_equal(tape.clip(np.arange(4.0), min=1, max=2).numpy(), [1, 1, 2, 2])
    np.testing.assert_array_equal(np.clip(tape.constant(np.arange(4.0)), min=1).numpy(),
                                  [1, 1, 2, 3])


# -- tape.norm ----------------------------------------------------------------------------------
X = np.array([[1.0, -2.0, 0.5], [3.0, 4.0, -1.0]])


@pytest.mark.parametrize("ord, axis", [
    (None, None), (None, 1), (2, 0), (1, -1), (np.inf, 1), ("fro", None), (1, None),
    (np.inf, None), (None, (0, 1)), (1, (1, 0)),
])
def test_norm_is_numpy_norm(ord, axis):
    for keepdims in (False, True):
        np.testing.assert_allclose(tape.norm(X, ord, axis, keepdims).numpy(),
                                   np.linalg.norm(X, ord, axis, keepdims), rtol=1e-15)


def test_norm_of_zero_has_a_zero_gradient_and_unsupported_orders_say_so():
    w = Variable(np.zeros(3))
    with Tape() as t:
        y = tape.norm(w)
    np.testing.assert_array_equal(t.gradient(y, w).numpy(), np.zeros(3))
    with pytest.raises(ValueError, match=r"norm: ord=2 over axis \(0, 1\) is not supported.*"
                                         r"matrix norms with ord in"):
        tape.norm(X, ord=2, axis=(0, 1))
    with pytest.raises(ValueError, match=r"needs a 1-D or 2-D input"):
        tape.norm(np.ones((2, 2, 2)), ord=1)
