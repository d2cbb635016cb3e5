"""Flatten and rebuild nested lists, tuples and dicts of leaves (for `sources` structures)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def flatten(structure: Any) -> list[Any]:
    """The leaves of a nested list/tuple/dict, in order (dicts by insertion order).

    Example:
        >>> flatten({"a": [1, 2], "b": (3,)})
        [1, 2, 3]
    """
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for item in structure.values() for leaf in flatten(item)]
    return [structure]


def unflatten(structure: Any, leaves: list[Any]) -> Any:
    """Rebuild `structure`'s shape with `leaves` in place of its leaves.

    Example:
        >>> unflatten({"a": [0, 0], "b": (0,)}, [1, 2, 3])
        {'a': [1, 2], 'b': (3,)}
    """
    it = iter(leaves)
    return map_structure(lambda _: next(it), structure)


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """Apply `fn` to every leaf, keeping the nesting (namedtuples included)."""
    if isinstance(structure, list):
        return [map_structure(fn, s) for s in structure]
    if isinstance(structure, tuple):
        items = [map_structure(fn, s) for s in structure]
        return type(structure)(*items) if hasattr(structure, "_fields") else tuple(items)
    if isinstance(structure, dict):
        return type(structure)((k, map_structure(fn, v)) for k, v in structure.items())
    return fn(structure)


def flatten_with_rebuild(structure: Any) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """The leaves of `structure` and a function that puts as many results back in its shape.

    A single leaf and a flat list or tuple take a short path (the common cases of
    `Tape.gradient(target, sources)`).

    Example:
        >>> leaves, rebuild = flatten_with_rebuild({"a": [1, 2], "b": 3})
        >>> leaves, rebuild([10, 20, 30])
        ([1, 2, 3], {'a': [10, 20], 'b': 30})
    """
    if not isinstance(structure, _NESTS):
        return [structure], _first
    if type(structure) is list or type(structure) is tuple:
        for s in structure:
            if isinstance(s, _NESTS):
                break
        else:
            return list(structure), type(structure)
    return flatten(structure), lambda results: unflatten(structure, results)


_NESTS = (list, tuple, dict)


def _first(results: list[Any]) -> Any:
    return results[0]
