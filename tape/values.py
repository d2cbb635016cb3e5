"""Value checks: what a `Tensor` or `Variable` may hold, and the messages for what it may not.

Booleans and numbers (integer, floating, complex). Text, None, Python objects, dates and ragged
nested lists are refused when a value is created or written, with a message that says what was
passed and what to pass instead; a cast to float16 that would overflow to inf is refused too.

    >>> as_numeric_array([1, 2], "float32", "x", copy=None)
    array([1., 2.], dtype=float32)
"""

from __future__ import annotations

import abc
import reprlib
from typing import Any

import numpy as np

NUMERIC_KINDS = "biufc"
"""The dtype kinds a tensor may hold: bool, signed and unsigned integer, floating, complex."""

FLOAT16_MAX = float(np.finfo(np.float16).max)
"""The largest finite float16 value (65504.0)."""


class ArrayHolder(abc.ABC):  # noqa: B024 (a registry for isinstance, no abstract methods)
    """What holds a checked array in `_value`: `tape.Tensor` (and so `tape.Variable`)
    registers itself. This module sits below `tape.tensor`, so it recognises tensors by this
    class instead of importing them.

    Example:
        >>> import tape
        >>> isinstance(tape.Variable(1.0), ArrayHolder), isinstance(1.0, ArrayHolder)
        (True, False)
    """

    _value: np.ndarray


def value_of(x: Any) -> Any:
    """The array a tensor holds; anything else as it is.

    Example:
        >>> import tape
        >>> value_of(tape.constant(2.0)), value_of([1])
        (array(2.), [1])
    """
    return x._value if isinstance(x, ArrayHolder) else x




def as_numeric_array(value: Any, dtype: Any, who: str, copy: bool | None) -> np.ndarray:
    """`value` as an array of booleans or numbers (of `dtype` if given), else a clear error.

    `who` starts the messages ("Variable 'w': initial_value"). A cast to float16 that overflows
    to inf raises `OverflowError`.

    Example:
        >>> as_numeric_array(None, None, "x", copy=None)
        Traceback (most recent call last):
        TypeError: x is None; pass a number or an array of numbers, e.g. 0.0 or np.zeros(3)
    """
    value = value_of(value)
    try:
        arr = np.array(value, copy=copy)
    except (ValueError, TypeError) as e:
        raise type(e)(unusable(who, value, e)) from None
    if arr.dtype.kind not in NUMERIC_KINDS:
        raise TypeError(not_numeric(who, value, arr.dtype))
    if dtype is None or arr.dtype == dtype:
        return arr
    target = np.dtype(dtype)
    if target.kind not in NUMERIC_KINDS:
        raise TypeError(f"{who}: dtype {target} is not numeric; tensors and Variables hold "
                        f"booleans or numbers (bool, integer, floating or complex dtypes)")
    if target.char != "e":
        return arr.astype(target)
    with np.errstate(over="raise"):
        try:
            return arr.astype(target)
        except FloatingPointError:
            raise overflow(who, reprlib.repr(value)) from None


def not_numeric(who: str, value: Any, dtype: np.dtype) -> str:
    """Why `value` (which NumPy makes an array of `dtype`) cannot be held, and what to pass.

    Example:
        >>> not_numeric("x", "abc", np.dtype("<U3"))[:35]
        "x is text ('abc', dtype <U3), not n"
    """
    if value is None:
        return f"{who} is None; pass a number or an array of numbers, e.g. 0.0 or np.zeros(3)"
    shown = reprlib.repr(value)
    if dtype.kind in "US" or dtype.char == "T":
        return (f"{who} is text ({shown}, dtype {dtype}), not numbers; tensors and Variables "
                f"hold booleans or numbers (convert text that holds numbers with float(...) or "
                f"np.asarray(..., dtype=float))")
    if dtype.kind == "O":
        return (f"{who} ({shown}) has dtype object (Python objects: None, mixed types, "
                f"integers beyond 64 bits, or an array made with dtype=object); tensors and "
                f"Variables hold booleans or numbers (convert first, e.g. "
                f"np.asarray(values, dtype=float))")
    return (f"{who} ({shown}) has dtype {dtype}, which is not numeric; tensors and Variables "
            f"hold booleans or numbers")


def unusable(who: str, value: Any, err: Exception) -> str:
    """The message for a value NumPy could not make into an array (ragged lists first).

    Example:
        >>> unusable("x", [[1], [2, 3]], ValueError("inhomogeneous"))[:60]
        'x is a ragged nested list: item [0] has length 1 but item [1'
    """
    where = ragged(value, "")
    if where is not None:
        return (f"{who} is a ragged nested list: {where}. Every row must have the same "
                f"length: pad the rows (e.g. with 0), or keep one tensor per row")
    return f"{who} ({reprlib.repr(value)}) cannot be made into an array of numbers: {err}"


def ragged(value: Any, where: str) -> str | None:
    """Where a nested list first holds items of different shapes, in words (None if nowhere).

    Example:
        >>> ragged([[1, 2], [3]], "")
        'item [0] has length 2 but item [1] has length 1'
    """
    if not isinstance(value, (list, tuple)) or not value:
        return None
    try:
        outer = [(len(v),) if isinstance(v, (list, tuple)) else np.shape(value_of(v))
                 for v in value]
    except ValueError:  # an item NumPy cannot shape: look inside the items
        outer = [()] * len(value)
    for i, shape in enumerate(outer):
        if shape != outer[0]:
            return (f"item {where}[0] {_shape_words(value[0], outer[0])} but item "
                    f"{where}[{i}] {_shape_words(value[i], shape)}")
    for i, v in enumerate(value):
        inner = ragged(v, f"{where}[{i}]")
        if inner is not None:
            return inner
    return None


def _shape_words(item: Any, shape: tuple[int, ...]) -> str:
    if isinstance(item, (list, tuple)):
        return f"has length {shape[0]}"
    return "is a scalar" if shape == () else f"has shape {shape}"


def overflow(who: str, what: str, note: str = "") -> OverflowError:
    """The error for a value that would overflow float16 to inf (`note` ends the first part).

    Example:
        >>> str(overflow("x:", "1e5"))[:40]
        'x: 1e5 overflows float16 (largest finite'
    """
    return OverflowError(f"{who} {what} overflows float16 (largest finite value {FLOAT16_MAX}) "
                         f"and would give inf{note}. Scale the values into range, or use a "
                         f"float32 Variable")
