"""Typed JSON for hyperparameter values: a study file gives back the types it was given.

Plain JSON turns a tuple into a list and has no NumPy scalars, so a value is written as

- itself when JSON keeps its type: ``None``, ``bool``, ``int``, ``float``, ``str``, and
  lists of encodable values;
- ``{"$tuple": [...]}`` for a tuple (nested values encoded the same way);
- ``{"$numpy": "int64", "value": 32}`` for a NumPy scalar whose dtype is on the allow-list
  (bool, signed and unsigned integers, float16/32/64, str).

Types are matched exactly, so ``np.float64`` (a ``float`` subclass) keeps its type, and
anything else (functions, enums, dicts, arrays, ``longdouble``, ...) is refused with a
``TypeError`` before anything is written. Reading back accepts only these forms: the file
decides data, never which code runs (no pickle, no import by name, no eval).

>>> encode_value((64, np.int64(32)))
{'$tuple': [64, {'$numpy': 'int64', 'value': 32}]}
>>> decode_value({'$tuple': [64, {'$numpy': 'int64', 'value': 32}]})
(64, np.int64(32))
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["encode_value", "decode_value", "STORABLE"]

STORABLE = ("None, bool, int, float, str, lists and tuples of these, and NumPy bool, int, uint, "
            "float16/32/64 and str scalars")

_NUMPY: dict[str, type] = {np.dtype(name).name: np.dtype(name).type for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "str")}
_PLAIN = (type(None), bool, int, float, str)


def encode_value(value: Any, where: str = "value") -> Any:
    """The JSON-ready form of ``value``; ``TypeError`` naming ``where`` if it has no such form.

    >>> encode_value([1.5, None, ("a", True)])
    [1.5, None, {'$tuple': ['a', True]}]
    >>> encode_value(print, "parameter 'act'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: parameter 'act': <built-in function print> of type builtin_function_or_method ...
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [encode_value(v, where) for v in value]
    if kind is tuple:
        return {"$tuple": [encode_value(v, where) for v in value]}
    if isinstance(value, np.generic):
        name = "str" if value.dtype.kind == "U" else value.dtype.name  # 'str32' -> 'str'
        if name in _NUMPY:
            return {"$numpy": name, "value": value.item()}
    raise TypeError(f"{where}: {value!r:.60} of type {kind.__qualname__} cannot be stored in a "
                    f"study file, which keeps only {STORABLE}. Use such values (e.g. a name "
                    "that the objective maps to the object), or run without storage=")


def decode_value(data: Any) -> Any:
    """Inverse of ``encode_value`` on data read back from JSON; ``ValueError`` for anything
    that ``encode_value`` does not write.

    >>> decode_value({"$numpy": "float32", "value": 0.5})
    np.float32(0.5)
    >>> decode_value({"$pickle": "gASV..."})
    Traceback (most recent call last):
    ValueError: not a stored value: {'$pickle': 'gASV...'}
    """
    kind = type(data)
    if kind in _PLAIN:
        return data
    if kind is list:
        return [decode_value(v) for v in data]
    if kind is dict:
        if data.keys() == {"$tuple"} and type(data["$tuple"]) is list:
            return tuple(decode_value(v) for v in data["$tuple"])
        if data.keys() == {"$numpy", "value"} and data["$numpy"] in _NUMPY:
            return _numpy_scalar(data["$numpy"], data["value"])
    raise ValueError(f"not a stored value: {data!r:.80}")


def _numpy_scalar(name: str, value: Any) -> Any:
    scalar_type = _NUMPY[name]
    expected = type(scalar_type(0).item())  # the Python type .item() gave when it was written
    if not (type(value) is expected or (expected is float and type(value) is int)):
        raise ValueError(f"not a stored value: NumPy {name} holding {value!r:.40}")
    try:
        result = scalar_type(value)
    except (OverflowError, ValueError):
        raise ValueError(f"not a stored value: {value!r:.40} does not fit NumPy {name}") from None
    if expected is not float and result.item() != value:  # e.g. a too-large int on NumPy 1.x
        raise ValueError(f"not a stored value: {value!r:.40} does not fit NumPy {name}")
    return result
