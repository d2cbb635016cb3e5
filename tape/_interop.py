"""NumPy interop: NumPy ufuncs and functions called on tensors are recorded as primitives.

A NumPy function with no primitive (`np.sort`, `np.median`) raises inside a recording tape
(its result would carry no gradient); outside any recording tape, and when `tape.function` is
not tracing, it runs on the values and returns a plain array, as on arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape import ops
from tape._state import STATE
from tape.ops._util import raw

_UFUNCS = {
    np.add: ops.add, np.subtract: ops.subtract, np.multiply: ops.multiply,
    np.divide: ops.divide, np.power: ops.power, np.negative: ops.negative,
    np.positive: ops.identity, np.exp: ops.exp, np.log: ops.log, np.log1p: ops.log1p,
    np.sqrt: ops.sqrt, np.square: ops.square, np.sin: ops.sin, np.cos: ops.cos,
    np.tanh: ops.tanh, np.absolute: ops.abs, np.fabs: ops.abs, np.maximum: ops.maximum,
    np.minimum: ops.minimum, np.matmul: ops.matmul,
}

# Results that carry no gradient (booleans, signs): computed on the values, not recorded.
_CONSTANT_UFUNCS = {
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
    np.isfinite, np.isnan, np.isinf, np.sign, np.signbit,
}


def _dot(a: Any, b: Any) -> Any:
    if np.ndim(raw(a)) == 0 or np.ndim(raw(b)) == 0:
        return ops.multiply(a, b)
    if np.ndim(raw(a)) > 2 or np.ndim(raw(b)) > 2:
        raise TypeError("np.dot on tensors is supported for 0-D, 1-D and 2-D operands; use "
                        "tape.matmul (or @) for batched products")
    return ops.matmul(a, b)


def _where(condition: Any, *xy: Any) -> Any:
    if not xy:  # np.where(condition) is np.nonzero(condition): indices, not differentiable
        return np.nonzero(raw(condition))
    return ops.where(condition, *xy)


_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: ops.sum, np.mean: ops.mean, np.max: ops.max, np.min: ops.min, np.amax: ops.max,
    np.amin: ops.min, np.var: ops.var, np.std: ops.std, np.reshape: ops.reshape,
    np.ravel: lambda a: ops.reshape(a, (-1,)), np.copy: ops.identity,
    np.transpose: ops.transpose, np.swapaxes: ops.swapaxes, np.moveaxis: ops.moveaxis,
    np.expand_dims: ops.expand_dims, np.squeeze: ops.squeeze,
    np.broadcast_to: ops.broadcast_to, np.concatenate: ops.concatenate, np.stack: ops.stack,
    np.where: _where, np.clip: ops.clip, np.dot: _dot, np.take: ops.take,
    np.linalg.norm: ops.norm,
}
# Names NumPy 2 added for existing functions.
for _name, _op in (("concat", ops.concatenate), ("permute_dims", ops.transpose),
                   ("astype", ops.cast),
                   ("matrix_transpose", lambda x: ops.swapaxes(x, -1, -2))):
    if hasattr(np, _name):
        _FUNCTIONS[getattr(np, _name)] = _op

_CONSTANT_FUNCTIONS = {
    np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like, np.full_like,
    np.allclose, np.isclose, np.array_equal, np.argmax, np.argmin, np.argsort, np.result_type,
    np.may_share_memory, np.shares_memory, np.iscomplexobj, np.isrealobj, np.copyto,
    np.nonzero, np.flatnonzero, np.argwhere, np.count_nonzero, np.any, np.all,
    np.searchsorted,
}


def _unsupported(name: str) -> TypeError:
    return TypeError(
        f"{name} has no tape primitive, so inside a recording tape its result would leave the "
        f"tape and carry no gradient. Use the tape op of the same name if there is one, call "
        f"np.asarray(tensor) to leave the tape on purpose, or define a primitive with "
        f"tape.Primitive. (Outside any recording tape it runs on the values and returns a "
        f"plain array.)"
    )


def _nothing_records() -> bool:
    """No tape records and `tape.function` is not tracing: a NumPy function without a
    primitive may run on the values (there is nothing for its result to leave)."""
    return STATE.tracer is None and not any(not t._observer for t in STATE.tapes)


def _raw_tree(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return type(x)(_raw_tree(i) for i in x)
    return raw(x)


def dispatch_ufunc(ufunc: Any, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> Any:
    if method == "__call__" and not kwargs:
        op = _UFUNCS.get(ufunc)
        if op is not None:  # the common case first: `np.float64(2) * tensor` lands here
            return op(*inputs)
    if ufunc in _CONSTANT_UFUNCS and method == "__call__":
        return getattr(ufunc, method)(*_raw_tree(inputs), **_raw_tree(kwargs))
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    if method != "__call__" or ufunc not in _UFUNCS:
        if _nothing_records() and "out" not in kwargs:
            return getattr(ufunc, method)(*_raw_tree(inputs), **_raw_tree(kwargs))
        raise _unsupported(name)
    raise TypeError(f"{name} on tensors does not support the arguments {sorted(kwargs)} "
                    f"(tensors are immutable, so `out=` cannot be used)")


def dispatch_function(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if func in _CONSTANT_FUNCTIONS:
        return func(*_raw_tree(args), **_raw_tree(kwargs))
    op = _FUNCTIONS.get(func)
    if op is None:
        if _nothing_records():
            return func(*_raw_tree(args), **_raw_tree(kwargs))
        raise _unsupported(f"np.{func.__name__}")
    return op(*args, **kwargs)
