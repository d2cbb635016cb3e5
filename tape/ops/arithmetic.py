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
# JVP rules (`defjvp`) return a tangent that broadcasts to the output: no unbroadcast.
add: Primitive = Primitive("add", operator.add, uses_inputs=False).defvjp(
    lambda g, ans, x, y: unbroadcast(g, x),
    lambda g, ans, x, y: unbroadcast(g, y),
).defjvp(lambda t, ans, x, y: t, lambda t, ans, x, y: t)
subtract: Primitive = Primitive("subtract", operator.sub, uses_inputs=False).defvjp(
    lambda g, ans, x, y: unbroadcast(g, x),
    lambda g, ans, x, y: unbroadcast(-g, y),
).defjvp(lambda t, ans, x, y: t, lambda t, ans, x, y: -t)
multiply: Primitive = Primitive("multiply", operator.mul).defvjp(
    lambda g, ans, x, y: unbroadcast(g * y, x),
    lambda g, ans, x, y: unbroadcast(g * x, y),
).defjvp(lambda t, ans, x, y: t * y, lambda t, ans, x, y: x * t)
divide: Primitive = Primitive("divide", operator.truediv).defvjp(
    lambda g, ans, x, y: unbroadcast(g / y, x),
    lambda g, ans, x, y: unbroadcast(-g * ans / y, y),
).defjvp(lambda t, ans, x, y: t / y, lambda t, ans, x, y: -t * ans / y)


def _power_scale_base(g: Any, ans: Any, x: Any, y: Any) -> Any:
    """`g * d(x**y)/dx`, elementwise (broadcast): the JVP rule; the VJP unbroadcasts it."""
    if isinstance(y, (int, float)):
        if y == 0:
            return g * 0
        if y == 1:
            return g
        if y == 2:
            return g * 2 * x
        return g * y * x ** (y - 1)
    # d/dx x**y = y * x**(y-1), taken as 0 where y == 0 (so 0**0 does not give nan)
    return np.where(raw(y) == 0, 0, g * y * x ** (y - 1))


def _power_scale_exponent(g: Any, ans: Any, x: Any, y: Any) -> Any:
    """`g * d(x**y)/dy`, elementwise: d/dy x**y = x**y * log(x), defined for x > 0 (0
    elsewhere, as TensorFlow does)."""
    positive = raw(x) > 0
    log_x = np.log(np.where(positive, x, 1))
    return g * ans * log_x


power: Primitive = Primitive("power", operator.pow).defvjp(
    lambda g, ans, x, y: unbroadcast(_power_scale_base(g, ans, x, y), x),
    lambda g, ans, x, y: unbroadcast(_power_scale_exponent(g, ans, x, y), y),
).defjvp(_power_scale_base, _power_scale_exponent)

# ---- unary -------------------------------------------------------------------------------
negative: Primitive = Primitive("negative", operator.neg, uses_inputs=False).defvjp(
    lambda g, ans, x: -g,
).defjvp(lambda t, ans, x: -t)
identity: Primitive = Primitive(
    "identity", lambda x: np.array(x, copy=True), uses_inputs=False
).defvjp(lambda g, ans, x: g).defjvp(lambda t, ans, x: t)


def _cast(x: Any, dtype: Any) -> Any:
    return np.asarray(x).astype(dtype)


cast: Primitive = Primitive("cast", _cast, uses_inputs=False).defvjp(
    lambda g, ans, x, dtype: _cast_grad(g, np.result_type(raw(x))),
).defjvp(
    lambda t, ans, x, dtype: _cast_grad(t, np.dtype(dtype)),
)


def _cast_grad(g: Any, dtype: np.dtype) -> Any:
    if dtype.kind not in "fc":
        return None
    return g.astype(dtype)
