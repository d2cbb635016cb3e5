"""Notes for `Tape.explain`: values that left a recording tape, and operations it did not record.

A note is `(kind, ids of the values it came from, label, weak reference to the result or
None)`. Tensors note their exits here (`Tensor.numpy`, `np.asarray(tensor)`, `stop_gradient`);
a tape paused by `stop_recording()` notes what ran meanwhile. `tape.explain` reads them.
"""

from __future__ import annotations

import weakref
from typing import Any

from tape._state import STATE


def note_exit(kind: str, x: Any, out: Any) -> None:
    """Note, on each recording tape that tracks `x` (or would watch it), that `x` left as `out`.

    Called by `stop_gradient`, `Tensor.numpy` and `Tensor.__array__` while a tape records.

    Example:
        >>> import tape
        >>> w = tape.Variable(1.0)
        >>> with tape.Tape() as t:
        ...     note_exit("np.asarray", w, None)
        >>> t._notes[0][0]
        'np.asarray'
    """
    for t in STATE.tapes:
        if id(x) in t._tracked or (x._is_variable and x.trainable and t._watch_accessed):
            t._notes.append((kind, (id(x),), f"a {x.dtype} tensor of shape {x.shape}",
                             weak_or_none(out)))


def paused_note(record: Any) -> tuple[Any, ...]:
    """The note for a recorded call (a `tape.records.Record`) that ran while its tape was
    paused by `stop_recording()`.

    Example:
        >>> import tape
        >>> w = tape.Variable(1.0)
        >>> with tape.Tape(persistent=True) as t:
        ...     y = w * 2
        >>> paused_note(t._records[0])[:3] == ("stop_recording", (id(w),), "multiply")
        True
    """
    args = record.inputs
    return ("stop_recording", tuple(id(args[i]) for i in record.live), record.primitive.name,
            weak_or_none(record.output))


def weak_or_none(x: Any) -> Any:
    """A weak reference to `x`, or None for values that have none (None, NumPy scalars).

    Example:
        >>> weak_or_none(None) is None
        True
    """
    try:
        return weakref.ref(x)
    except TypeError:
        return None
