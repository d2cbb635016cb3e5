"""Argument checks shared by the packages, with errors that name the argument.

Example:
    >>> integer("epochs", 3, 1)
    3
"""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["integer", "is_integer"]


def is_integer(value: Any) -> bool:
    """Whether `value` is an integer (Python or NumPy) and not a bool.

    Example:
        >>> is_integer(3), is_integer(True), is_integer(3.0)
        (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(name: str, value: Any, minimum: int) -> int:
    """`value` as an int if it is an integer (not a bool) `>= minimum`, else a `ValueError`
    naming the argument `name`.

    Example:
        >>> integer("patience", 0, 0)
        0
        >>> integer("epochs", True, 1)
        Traceback (most recent call last):
        ValueError: epochs must be an integer >= 1, got True
    """
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
