"""What a callable's signature accepts, for APIs that take several forms of callback.

A callable with no signature to read (some builtins) gets the caller's `default`.

Example:
    >>> accepts(lambda x, seed=0: x, "seed"), takes_positional(lambda epoch: 0, 2)
    (True, False)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["accepts", "parameters", "takes_positional"]


def parameters(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """`fn`'s parameters, or None when it has no signature to read.

    Example:
        >>> [p.name for p in parameters(lambda a, *b, c: 0)], parameters(print) is None
        (['a', 'b', 'c'], False)
    """
    try:
        return _cached(fn)
    except TypeError:  # unhashable: read it every time
        return _read(fn)


def _read(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None


_cached = functools.lru_cache(maxsize=256)(_read)


def accepts(fn: Callable[..., Any], name: str, *, var_keyword: bool = False,
            default: bool = False) -> bool:
    """Whether `fn` takes an argument `name` by keyword (with `var_keyword`, a `**kwargs`
    counts too); `default` when there is no signature.

    Example:
        >>> accepts(lambda x, **kw: x, "reduction"), accepts(lambda x, **kw: x, "reduction",
        ...                                                   var_keyword=True)
        (False, True)
    """
    params = parameters(fn)
    if params is None:
        return default
    return any((p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
               or (var_keyword and p.kind is p.VAR_KEYWORD) for p in params)


def takes_positional(fn: Callable[..., Any], n: int, *, default: bool = False) -> bool:
    """Whether `fn` can take `n` positional arguments (it has `n` positional parameters or a
    `*args`); `default` when there is no signature.

    Example:
        >>> takes_positional(lambda epoch, lr: lr, 2), takes_positional(lambda *a: 0, 5)
        (True, True)
    """
    params = parameters(fn)
    if params is None:
        return default
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= n or any(p.kind is p.VAR_POSITIONAL for p in params)
