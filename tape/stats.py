"""Leak guards: how many records a tape holds and how many bytes of arrays they keep alive.

A persistent tape, or a tape re-entered in a loop without `reset()`, keeps every record; the
numbers returned by `Tape.stats()` grow with each iteration, which makes such a leak visible.

Example:
    >>> import numpy as np, tape
    >>> w = tape.Variable(np.ones(1000))
    >>> t = tape.Tape(persistent=True)
    >>> for step in range(3):
    ...     with t:
    ...         y = tape.sum(w * 2.0)
    ...     print(t.stats().records, t.stats().bytes)
    2 16008
    4 24016
    6 32024
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tape import nest
from tape.records import Record
from tape.tensor import Tensor


class TapeStats(NamedTuple):
    """What a tape holds: `records` (operations), `bytes` (arrays they keep alive, residuals
    included, each buffer counted once), `tracked` (values it tracks: watched ones and
    recorded outputs).

    Example:
        >>> TapeStats(records=2, bytes=64, tracked=3).bytes
        64
    """

    records: int
    bytes: int
    tracked: int


def tape_stats(tape: Any) -> TapeStats:
    """`tape.stats()`: see the module docstring.

    Example:
        >>> import tape
        >>> tape_stats(tape.Tape())
        TapeStats(records=0, bytes=0, tracked=0)
    """
    records: list[Record] = tape._records or []
    buffers: dict[int, int] = {}
    for rec in records:
        for item in (*rec.inputs, *rec.values, rec.output,
                     *nest.flatten([list(rec.params.values()), rec.residuals])):
            value = item._value if isinstance(item, Tensor) else item
            if isinstance(value, (np.ndarray, np.generic)):
                root = _root(value)
                buffers[id(root)] = root.nbytes
    return TapeStats(len(records), sum(buffers.values()), len(tape._tracked))


def _root(a: Any) -> Any:
    """The array that owns `a`'s memory (views keep their base alive, not more)."""
    while isinstance(getattr(a, "base", None), np.ndarray):
        a = a.base
    return a
