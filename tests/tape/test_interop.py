"""NumPy functions called on tensors are recorded; those without a primitive refuse clearly."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tape import Tape, Variable, _interop

# The tables below are drawn once, at import, before any test runs; tests draw from their
# own `rng` fixture.
TABLE_RNG = np.random.default_rng(2)


def vals(*shape, low=-1.5, high=1.5):
    return TABLE_RNG.uniform(low, high, shape)


POSITIVE = vals(2, 3, low=0.3)
COND = np.array([[True, False, True], [False, True, True]])

# NumPy function -> (the function applied as NumPy code, differentiable args)
CASES = {
    np.add: (lambda x, y: np.add(x, y), (vals(2, 3), vals(3))),
    np.subtract: (lambda x, y: np.subtract(y, x), (vals(2, 3), vals(3))),
    np.multiply: (lambda x, y: np.multiply(x, y), (vals(2, 3), vals(3))),
    np.divide: (lambda x, y: np.divide(x, y), (vals(2, 3), POSITIVE)),
    np.power: (lambda x, y: np.power(x, y), (POSITIVE, vals(2, 3))),
    np.negative: (np.negative, (vals(3),)),
    np.positive: (np.positive, (vals(3),)),
    np.exp: (np.exp, (vals(3),)),
    np.log: (np.log, (POSITIVE,)),
    np.log1p: (np.log1p, (POSITIVE,)),
    np.sqrt: (np.sqrt, (POSITIVE,)),
    np.square: (np.square, (vals(3),)),
    np.sin: (np.sin, (vals(3),)),
    np.cos: (np.cos, (vals(3),)),
    np.tanh: (np.tanh, (vals(3),)),
    np.absolute: (np.abs, (POSITIVE - 1.0,)),
    np.fabs: (np.fabs, (POSITIVE - 1.0,)),
    np.maximum: (lambda x, y: np.maximum(x, y), (vals(2, 3), vals(3) + 0.01)),
    np.minimum: (lambda x, y: np.minimum(x, y), (vals(2, 3), vals(3) + 0.01)),
    np.matmul: (lambda a, x: np.matmul(a, x), (vals(2, 3), vals(3, 4))),
    np.sum: (lambda x: np.sum(x, axis=0), (vals(2, 3),)),
    np.mean: (lambda x: np.mean(x, axis=1, keepdims=True), (vals(2, 3),)),
    np.max: (lambda x: np.max(x, axis=0), (vals(2, 3),)),
    np.min: (np.min, (vals(2, 3),)),
    np.amax: (np.amax, (vals(2, 3),)),
    np.amin: (lambda x: np.amin(x, 1), (vals(2, 3),)),
    np.var: (lambda x: np.var(x, axis=0, ddof=1), (vals(3, 2),)),
    np.std: (np.std, (vals(2, 3),)),
    np.reshape: (lambda x: np.reshape(x, (3, 2)), (vals(2, 3),)),
    np.ravel: (np.ravel, (vals(2, 3),)),
    np.copy: (np.copy, (vals(2, 3),)),
    np.transpose: (np.transpose, (vals(2, 3),)),
    np.swapaxes: (lambda x: np.swapaxes(x, 0, 2), (vals(2, 3, 2),)),
    np.moveaxis: (lambda x: np.moveaxis(x, 0, -1), (vals(2, 3, 2),)),
    np.expand_dims: (lambda x: np.expand_dims(x, 1), (vals(2, 3),)),
    np.squeeze: (np.squeeze, (vals(2, 1, 3),)),
    np.broadcast_to: (lambda x: np.broadcast_to(x, (4, 3)), (vals(3),)),
    np.concatenate: (lambda x, y: np.concatenate([x, y[None], np.ones((1, 3))]),
                     (vals(2, 3), vals(3))),
    np.stack: (lambda x, y: np.stack([x, y], axis=1), (vals(2, 3), vals(2, 3))),
    np.where: (lambda x, y: np.where(COND, x, y), (vals(2, 3), vals(3))),
    np.clip: (lambda x: np.clip(x, -0.5, 0.5), (np.array([-0.9, -0.2, 0.3, 0.8]),)),
    np.dot: (lambda x, y: np.dot(x, y), (vals(2, 3), vals(3))),
    np.take: (lambda x: np.take(x, [2, 0, 2], axis=1), (vals(2, 3),)),
    np.linalg.norm: (lambda x: np.linalg.norm(x, axis=1), (vals(2, 3),)),
}
# NumPy 2 names for existing functions
for _name, _case in (
        ("concat", (lambda x, y: np.concat([x, y], axis=1), (vals(2, 3), vals(2, 1)))),
        ("permute_dims", (lambda x: np.permute_dims(x, (1, 2, 0)), (vals(2, 3, 2),))),
        ("matrix_transpose", (lambda x: np.matrix_transpose(x), (vals(2, 3, 2),))),
        ("astype", (lambda x: np.astype(x, np.longdouble), (vals(3),)))):
    if hasattr(np, _name):
        CASES[getattr(np, _name)] = _case


def test_every_mapped_numpy_function_has_a_case():
    mapped = set(_interop._UFUNCS) | set(_interop._FUNCTIONS)
    missing = sorted(f.__name__ for f in mapped - set(CASES))
    assert not missing, f"NumPy functions mapped to primitives without a test case: {missing}"


@pytest.mark.parametrize("func", list(CASES), ids=lambda f: f.__name__)
def test_numpy_function_on_tensors_is_recorded(func):
    fn, args = CASES[func]
    xs = [Variable(a) for a in args]
    with Tape() as t:
        out = fn(*xs)
        y = tape.sum(out * out)
    assert isinstance(out, tape.Tensor)
    assert all(g is not None for g in t.gradient(y, xs))


@pytest.mark.parametrize("func", list(CASES), ids=lambda f: f.__name__)
def test_numpy_function_on_tensors_differentiates_correctly(func):
    fn, args = CASES[func]
    tape.check_gradients(fn, *args)


def test_numpy_values_match_numpy_on_arrays():
    for func, (fn, args) in CASES.items():
        got = fn(*[tape.constant(a) for a in args])
        np.testing.assert_allclose(got.numpy(), fn(*args), err_msg=func.__name__)


def test_mixing_arrays_and_tensors_records_the_tensor():
    a, x = vals(2, 3), Variable(vals(3, 4))
    with Tape() as t:
        y = np.sum(np.exp(np.matmul(a, x)))
    np.testing.assert_allclose(t.gradient(y, x).numpy(), a.T @ np.exp(a @ x.numpy()))


@pytest.mark.parametrize("call, name", [
    (lambda x: np.sinh(x), "np.sinh"),
    (lambda x: np.cumsum(x), "np.cumsum"),
    (lambda x: np.sort(x), "np.sort"),
    (lambda x: np.add.reduce(x), "np.add.reduce"),
    (lambda x: np.floor(x), "np.floor"),
])
def test_numpy_function_without_a_primitive_raises_inside_a_tape(call, name):
    x = Variable([0.5, -0.2])
    with Tape(), pytest.raises(TypeError, match=rf"{name} has no tape primitive.*leave the tape"):
        call(x)


@pytest.mark.parametrize("call", [
    lambda x: np.sinh(x), lambda x: np.cumsum(x), lambda x: np.sort(x),
    lambda x: np.add.reduce(x), lambda x: np.median(x), lambda x: np.percentile(x, 50),
])
def test_numpy_function_without_a_primitive_runs_on_values_outside_any_tape(call):
    x = Variable([0.5, -0.2, 0.1])
    out = call(x)
    assert not isinstance(out, tape.Tensor)
    np.testing.assert_array_equal(out, call(x.numpy()))


def test_numpy_function_without_a_primitive_refuses_while_tape_function_traces():
    with pytest.raises(TypeError, match=r"np.sort has no tape primitive"):
        tape.function(lambda x: np.sort(x * 2))(np.ones(3))


def test_np_linalg_norm_records_through_tape_norm():
    w = Variable([3.0, 4.0])
    with Tape() as t:
        y = np.linalg.norm(w)
    assert isinstance(y, tape.Tensor) and float(y) == 5.0
    np.testing.assert_array_equal(t.gradient(y, w).numpy(), [0.6, 0.8])


def test_ufunc_out_argument_is_refused():
    with pytest.raises(TypeError, match="out="):
        np.exp(tape.constant([1.0]), out=np.empty(1))


def test_constant_functions_return_plain_arrays():
    x = tape.constant([[1.0, -2.0], [3.0, 0.0]])
    assert np.argmax(x) == 2 and np.shape(x) == (2, 2) and np.count_nonzero(x) == 3
    assert np.array_equal(np.where(x > 0, 1, 0), [[1, 0], [1, 0]])
    rows, cols = np.where(tape.constant([[True, False], [False, True]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]
    assert isinstance(np.sign(x), np.ndarray)


def test_asarray_leaves_the_tape_on_purpose():
    x = Variable([1.0, 2.0])
    with Tape() as t:
        a = np.asarray(x * 2)
        y = tape.sum(x * a)
    assert type(a) is np.ndarray
    np.testing.assert_allclose(t.gradient(y, x).numpy(), [2.0, 4.0])
