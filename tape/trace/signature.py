"""The signature of a call to a traced function: what selects (or forces) a trace.

Arrays and tensors count by shape and dtype, Python values by value, Variables and other
objects by identity; which array arguments are the same object counts too (a replay reads
each argument once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.tensor import Tensor
from tape.utils import signatures

_new_tensor = object.__new__


def as_tensor(v: Any) -> Tensor:
    """`v` wrapped in a Tensor without checks or copies (the replay's `_T`)."""
    t = _new_tensor(Tensor)
    t._value = v
    return t


def leaf_key(x: Any) -> Any:
    """The hashable signature of `x` (nested lists, tuples and dicts included).

    Example:
        >>> import numpy as np
        >>> leaf_key((np.zeros((2, 3)), 1.5))
        (<class 'tuple'>, (((2, 3), dtype('float64')), (<class 'float'>, 1.5)))
    """
    t = type(x)
    if t is np.ndarray or isinstance(x, np.generic):
        return (x.shape, x.dtype)
    if isinstance(x, Tensor):
        return ("var", id(x)) if x._is_variable else (x.shape, x.dtype)
    if t is tuple or t is list:
        return (t, tuple(leaf_key(v) for v in x))
    if t is dict:
        return (dict, tuple((k, leaf_key(v)) for k, v in x.items()))
    if t in (int, float, bool, str, complex) or x is None:
        return (t, x)  # Python values by value, as TensorFlow does
    return ("object", id(x))  # anything else (a model, an optimizer) by identity


def array_leaves(x: Any, out: list[Any]) -> None:
    """Append the arrays of `x` (what a replay gets as arguments), in a fixed order."""
    t = type(x)
    if t is np.ndarray:
        out.append(x)
    elif isinstance(x, np.generic):
        out.append(np.asarray(x))
    elif isinstance(x, Tensor):
        if not x._is_variable:
            out.append(x._value)
    elif t is tuple or t is list:
        for v in x:
            array_leaves(v, out)
    elif t is dict:
        for v in x.values():
            array_leaves(v, out)


def as_traced(x: Any, argument: Callable[[Any], Any] | None) -> Any:
    """`x` with each array replaced by a Tensor; `argument(array)` names each one (tracing)."""
    t = type(x)
    if t is np.ndarray or isinstance(x, np.generic):
        value = np.asarray(x)
        if argument is not None:
            argument(value)
        return as_tensor(value)
    if isinstance(x, Tensor):
        if argument is not None and not x._is_variable:
            argument(x._value)
        return x
    if t is tuple or t is list:
        return t(as_traced(v, argument) for v in x)
    if t is dict:
        return {k: as_traced(v, argument) for k, v in x.items()}
    return x


def alias_pattern(leaves: list[Any]) -> tuple[int, ...]:
    """For each array argument, the first position holding the same array object."""
    first: dict[int, int] = {}
    return tuple(first.setdefault(id(a), i) for i, a in enumerate(leaves))


EMPTY_KEY = (((tuple, ()), None), ())  # the key of a call without arguments
_ndarray = np.ndarray
_BY_VALUE = (int, float, bool, str, complex)


def _flat_key(args: tuple[Any, ...]) -> tuple[Any, list[Any]] | None:
    """`call_key` of positional arguments that are each an ndarray, a Tensor or a Python
    value (the common calls), without the general walk; None for anything else. The key is
    the general one (`leaf_key`, `alias_pattern`), built in one loop."""
    keys = []
    leaves = []
    for x in args:
        t = type(x)
        if t is _ndarray:
            leaves.append(x)
            keys.append((x.shape, x.dtype))
        elif t in _BY_VALUE or x is None:
            keys.append((t, x))
        elif isinstance(x, Tensor):
            if x._is_variable:
                keys.append(("var", id(x)))
            else:
                leaves.append(x._value)
                keys.append((x.shape, x.dtype))
        else:
            return None
    n = len(leaves)
    if n < 2:
        alias: tuple[int, ...] = (0,) if n else ()
    elif n == 2:
        alias = (0, 0) if leaves[0] is leaves[1] else (0, 1)
    else:
        alias = alias_pattern(leaves)
    return (((tuple, tuple(keys)), None), alias), leaves


def call_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, list[Any]]:
    """(the cache key of a call, its array leaves in replay-argument order).

    Example:
        >>> import numpy as np
        >>> a = np.zeros(2)
        >>> call_key((a, a, 1.5), {})
        ((((<class 'tuple'>, (((2,), dtype('float64')), ((2,), dtype('float64')), \
(<class 'float'>, 1.5))), None), (0, 0)), [array([0., 0.]), array([0., 0.])])
    """
    if not kwargs:
        if not args:
            return EMPTY_KEY, []
        flat = _flat_key(args)
        if flat is not None:
            return flat
    return general_key(args, kwargs)


def general_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, list[Any]]:
    """`call_key` by the general walk over nested arguments (what the fast paths equal).

    Example:
        >>> general_key((), {}) == call_key((), {})
        True
    """
    leaves: list[Any] = []
    array_leaves(args, leaves)
    if kwargs:
        array_leaves(kwargs, leaves)
    key = ((leaf_key(args), leaf_key(kwargs) if kwargs else None), alias_pattern(leaves))
    return key, leaves


def retracing_message(name: str, fn: Callable[..., Any], count: int, keys: list[Any]) -> str:
    """The warning after many traces: which arguments differ between the last two."""
    names = [p.name for p in signatures.parameters(fn) or ()]
    last, prev = keys[-1][0], keys[-2][0]
    changed = [names[i] if i < len(names) else f"argument {i}"
               for i, (a, b) in enumerate(zip(last[0][1], prev[0][1])) if a != b]
    if last[1] != prev[1]:
        changed.append("keyword arguments")
    what = ", ".join(changed) or "the Variables it reads"
    return (f"tape.function {name!r} was traced {count} times; the last traces differ in "
            f"{what}. Each new shape, dtype or Python value of an argument traces again: pass "
            f"varying numbers as arrays, keep shapes fixed (pad the last batch), or call the "
            f"function undecorated")
