"""Objects looked up by name in an allow-list (activation functions, initializers, losses).

Example:
    >>> pick({"zeros": 0}, "zeros", "initializer")
    0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["pick"]

T = TypeVar("T")


def pick(table: Mapping[str, T], name: Any, what: str, otherwise: str = "") -> T:
    """`table[name]`, or a `ValueError` naming `what` was asked for, the names known, and
    `otherwise` (what else may be passed, e.g. "a callable").

    Example:
        >>> pick({"relu": abs}, "rleu", "activation", "a callable")
        Traceback (most recent call last):
        ValueError: unknown activation 'rleu'; use one of ['relu'] or a callable
    """
    try:
        return table[name]
    except (KeyError, TypeError):
        also = f" or {otherwise}" if otherwise else ""
        raise ValueError(f"unknown {what} {name!r}; use one of {sorted(table)}{also}") from None
