"""Arithmetic primitives: the operators of `Tensor` and their gradient rules."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from tape.ops._util import raw
from tape.ops.shapes import unbroadcast
from tape.primitive import Primitive

# ---- binary operators ----------------------------------------------------------------------
# Python operators, not ufunc calls, as forwards: same NumPy semantics, far less overhead on
# NumPy scalars (the results of 0-d computations).
add: Primitive = Primitive("add", operator.add, uses_inputs=False).defvjp(
    lambda g, ans, x, y: unbroadcast(g, x),
    lambda g, ans, x, y: unbroadcast(g, y),
)
subtract: Primitive = Primitive("subtract", operator.sub, uses_inputs=False).defvjp(
    lambda g, ans, x, y: unbroadcast(g, x),
    lambda g, ans, x, y: unbroadcast(-g, y),
)
multiply: Primitive = Primitive("multiply", operator.mul).defvjp(
    lambda g, ans, x, y: unbroadcast(g * y, x),
    lambda g, ans, x, y: unbroadcast(g * x, y),
)
divide: Primitive = Primitive("divide", operator.truediv).defvjp(
    lambda g, ans, x, y: unbroadcast(g / y, x),
    lambda g, ans, x, y: unbroadcast(-g * ans / y, y),
)


def _power_grad_base(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if isinstance(y, (int, float)):
        if y == 0:
            return unbroadcast(g * 0, x)
        if y == 1:
            return unbroadcast(g, x)
        if y == 2:
            return unbroadcast(g * 2 * x, x)
        return unbroadcast(g * y * x ** (y - 1), x)
    # d/dx x**y = y * x**(y-1), taken as 0 where y == 0 (so 0**0 does not give nan)
    return unbroadcast(np.where(raw(y) == 0, 0, g * y * x ** (y - 1)), x)


def _power_grad_exponent(g: Any, ans: Any, x: Any, y: Any) -> Any:
    # d/dy x**y = x**y * log(x), defined for x > 0 (0 elsewhere, as TensorFlow does)
    positive = raw(x) > 0
    log_x = np.log(np.where(positive, x, 1))
    return unbroadcast(g * ans * log_x, y)


power: Primitive = Primitive("power", operator.pow).defvjp(_power_grad_base, _power_grad_exponent)

# ---- unary -------------------------------------------------------------------------------
negative: Primitive = Primitive("negative", operator.neg, uses_inputs=False).defvjp(
    lambda g, ans, x: -g,
)
identity: Primitive = Primitive(
    "identity", lambda x: np.array(x, copy=True), uses_inputs=False
).defvjp(lambda g, ans, x: g)


def _cast(x: Any, dtype: Any) -> Any:
    return np.asarray(x).astype(dtype)


cast: Primitive = Primitive("cast", _cast, uses_inputs=False).defvjp(
    lambda g, ans, x, dtype: _cast_grad(g, np.result_type(raw(x))),
)


def _cast_grad(g: Any, dtype: np.dtype) -> Any:
    if dtype.kind not in "fc":
        return None
    return g.astype(dtype)
