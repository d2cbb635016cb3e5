"""Observers: recorders on the tape stack that see operations without recording them.

An `Observer` implements the `tape.records.Recorder` protocol to watch instead of record:
`custom_gradient` uses one to learn which Variables a function reads, and `Tape.stop_recording`
leaves one in the paused tape's place so that `Tape.explain` can tell what ran while paused.
Observers never make a backward pass differentiable (`recording_tapes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tape._state import STATE
from tape.records import Record
from tape.tensor import Variable


class Observer:
    """Sees each operation on a value in `tracked` (and each Variable read) without recording.

    `on_op(record)` receives the `Record` a tape would have kept; `on_variable(var)` each read
    of a floating-point Variable (when `watch_accessed`); `notes` collects `explain` notes.
    An observer tracks nothing new: what it sees depends only on `tracked`.

    Example:
        >>> import tape
        >>> seen = []
        >>> with observing(Observer(on_variable=seen.append)):
        ...     _ = tape.Variable(2.0, name="w") * 3
        >>> [v.name for v in seen]
        ['w']
    """

    _observer = True

    def __init__(self, tracked: Mapping[int, Any] | None = None, watch_accessed: bool = True,
                 on_op: Callable[[Record], None] | None = None,
                 on_variable: Callable[[Variable], None] | None = None,
                 notes: list[Any] | None = None) -> None:
        self._tracked: Mapping[int, Any] = tracked if tracked is not None else {}
        self._watch_accessed = watch_accessed
        self._notes: list[tuple[Any, ...]] = notes if notes is not None else []
        self._on_op = on_op
        self._on_variable = on_variable

    def _add(self, record: Record) -> None:
        if self._on_op is not None:
            self._on_op(record)

    def _auto_watch(self, var: Variable) -> bool:
        if var._value.dtype.kind not in "fc":
            return False
        if self._on_variable is not None:
            self._on_variable(var)
        return True


@contextmanager
def observing(observer: Observer) -> Iterator[Observer]:
    """Put `observer` on this thread's tape stack for the duration of the block.

    Example:
        >>> with observing(Observer()) as o:
        ...     o in STATE.tapes
        True
    """
    tapes = STATE.tapes
    tapes.append(observer)
    try:
        yield observer
    finally:
        for i in range(len(tapes) - 1, -1, -1):
            if tapes[i] is observer:
                del tapes[i]
                break


def recording_tapes() -> bool:
    """Whether a real tape (not only observers) is recording in this thread.

    Example:
        >>> recording_tapes()
        False
    """
    tapes = STATE.tapes
    return bool(tapes) and any(not t._observer for t in tapes)
