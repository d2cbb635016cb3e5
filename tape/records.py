"""Records of primitive calls, and the protocol of what receives them.

Each call of a `tape.Primitive` that a tape tracks becomes a `Record` on every `Recorder` on
this thread's tape stack (`STATE.tapes`): tapes keep them for the backward sweep, observers
(`tape._observe`, `tape.forward`) only look at them. `report_call` is what a primitive call runs
while recorders are active.

    >>> import tape
    >>> x = tape.Variable(2.0)
    >>> with tape.Tape() as t:
    ...     y = x * x
    >>> isinstance(t, Recorder), type(t._records[0]).__name__
    (True, 'Record')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from tape._state import STATE
from tape.tensor import Tensor, Variable


class Record:
    """One recorded call of a primitive, as a tape keeps it for the backward sweep.

    - `primitive`: the `tape.Primitive` called (typed `Any`: `tape.primitive` imports this
      module, so this one cannot import it back);
    - `inputs`: its positional arguments as passed (tensors, Variables, arrays, numbers);
    - `values`: the same with every tensor replaced by its array (what the forward received);
    - `params`: its keyword parameters;
    - `output`: the `Tensor` it returned;
    - `live`: positions of the inputs that the recording tape tracks (the ones that need a
      gradient), in increasing order;
    - `versions`: `[(variable, version), ...]` of the Variable inputs when the rules read input
      values (`uses_inputs`), else None: the sweep refuses a Variable assigned since;
    - `residuals`: what a `residuals=True` forward kept for its rule, else None.

    Example:
        >>> import tape
        >>> x = tape.Variable([1.0, 2.0])
        >>> with tape.Tape(persistent=True) as t:
        ...     y = x * 3
        >>> rec = t._records[0]
        >>> rec.primitive.name, rec.live, rec.output is y
        ('multiply', [0], True)
    """

    __slots__ = ("primitive", "inputs", "values", "params", "output", "live", "versions",
                 "residuals")

    def __init__(self, primitive: Any, inputs: tuple[Any, ...], values: tuple[Any, ...],
                 params: dict[str, Any], output: Tensor, live: list[int],
                 versions: list[tuple[Variable, int]] | None, residuals: Any) -> None:
        self.primitive = primitive
        self.inputs = inputs
        self.values = values
        self.params = params
        self.output = output
        self.live = live
        self.versions = versions
        self.residuals = residuals

    def __repr__(self) -> str:
        return f"<tape.Record {self.primitive.name!r} live={self.live}>"


@runtime_checkable
class Recorder(Protocol):
    """Something on this thread's tape stack (`STATE.tapes`) that primitive calls report to.

    A `Tape` records; an `Observer` (`tape._observe`) watches without recording. The members
    are underscored because they are the engine's side of a tape, not part of `Tape`'s API.

    - `_observer`: True if it never makes a backward pass differentiable (it only watches);
    - `_tracked`: ids of the values whose operations it wants (`id(value) in _tracked`);
    - `_watch_accessed`: whether it wants to be asked about trainable Variables it sees read;
    - `_auto_watch(var)`: a trainable Variable was read; True if it now tracks it;
    - `_notes`: notes for `Tape.explain` (see `tape.notes`);
    - `_add(record)`: a call with a tracked input (`record.live` is not empty); a tape keeps
      it and from then on tracks `record.output`.

    Example:
        >>> import tape
        >>> isinstance(tape.Tape(), Recorder)
        True
    """

    _observer: bool
    _tracked: Mapping[int, Any]
    _watch_accessed: bool
    _notes: list[tuple[Any, ...]]

    def _auto_watch(self, var: Variable) -> bool: ...

    def _add(self, record: Record) -> None: ...


def report_call(prim: Any, args: tuple[Any, ...], vals: tuple[Any, ...],
                params: dict[str, Any], out: Tensor, residuals: Any, tapes: list[Recorder],
                kind: str, raw: Any) -> None:
    """A call while recorders are active: recorded if floating, and captured by the
    `tape.function` tracer if one is tracing (`raw`: what the forward returned).

    `Primitive.__call__` runs it; `kind` is the output's dtype kind (`"f"`, `"c"`, `"i"`...).

    Example (an integer result is not recorded):
        >>> import numpy as np, tape
        >>> from tape._state import STATE
        >>> x = tape.Variable(1.0)
        >>> with tape.Tape() as t:
        ...     report_call(tape.PRIMITIVES["cast"], (x,), (x._value,), {}, tape.constant(1),
        ...                 None, STATE.tapes, "i", np.int64(1))
        >>> len(t._records)
        0
    """
    if kind in "fc":
        record_call(prim, args, vals, params, out, residuals, tapes)
    if STATE.tracer is not None:
        STATE.tracer.op(prim, args, vals, params, raw, out._value)


def record_call(prim: Any, args: tuple[Any, ...], vals: tuple[Any, ...],
                params: dict[str, Any], out: Tensor, residuals: Any,
                tapes: list[Recorder]) -> None:
    """Hand the call to each recorder that tracks one of its inputs.

    Everything a tape tracks is floating-point (watching checks it, and only floating results
    are recorded), so tracked inputs are exactly the inputs that need gradients.

    Example:
        >>> import tape
        >>> from tape._state import STATE
        >>> x = tape.Variable(2.0)
        >>> with tape.Tape() as t:
        ...     y = tape.constant(4.0)
        ...     record_call(tape.PRIMITIVES["square"], (x,), (x._value,), {}, y, None,
        ...                 STATE.tapes)
        >>> float(t.gradient(y, x))
        4.0
    """
    versions = None
    for tape in tapes:
        tracked = tape._tracked
        live = []
        i = 0
        for a in args:
            if id(a) in tracked:
                live.append(i)
            elif (isinstance(a, Variable) and a.trainable and tape._watch_accessed
                  and tape._auto_watch(a)):
                live.append(i)
            i += 1
        if live:
            if versions is None and prim.uses_inputs:
                versions = []  # a loop: cheaper than a comprehension for two or three inputs
                for a in args:
                    if isinstance(a, Variable):
                        versions.append((a, a._version))
            tape._add(Record(prim, args, vals, params, out, live, versions, residuals))
