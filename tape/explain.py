"""`Tape.explain(target, source)`: why is this gradient None?

The answer is read from the tape's records and from a few notes the tape keeps while it
records: values that left it through `np.asarray`/`.numpy()` or `stop_gradient`
(`tape.notes`), and operations that ran during `stop_recording()`. The result is a `str` (for
people) with a `reason` code (for programs):

- ``never_entered``: the tape was created but never entered with `with`, so it recorded
  nothing.
- ``connected``: nothing is wrong; the gradient flows through recorded operations.
- ``integer_dtype``: the source is not floating-point.
- ``target_not_tensor`` / ``integer_target``: the target has no recorded history at all.
- ``not_watched``: a non-trainable Variable, a Variable on a tape created with
  `watch_accessed_variables=False`, or a plain tensor, that was never watched.
- ``stop_recording``, ``stop_gradient``, ``left_tape``: the source, or a value computed from
  it, was used while the tape was paused, went through `stop_gradient`, or left the tape as a
  NumPy array.
- ``read_before_tape``: the target depends on tensors the tape did not see being computed,
  such as a value computed from the source before the tape started.
- ``never_read`` / ``unrelated``: the target simply does not depend on the source.

Example:
    >>> import tape
    >>> w = tape.Variable(3.0, name="w")
    >>> y0 = w * 2                      # computed before the tape starts
    >>> with tape.Tape() as t:
    ...     y = y0 ** 2
    >>> t.explain(y, w).reason
    'read_before_tape'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.backprop import reachable
from tape.records import Record
from tape.tensor import Tensor


class Explanation(str):
    """The text of an explanation, with its short `reason` code.

    Example:
        >>> e = Explanation("connected", "All good.")
        >>> e, e.reason
        ('All good.', 'connected')
    """

    reason: str

    def __new__(cls, reason: str, text: str) -> Explanation:
        self = super().__new__(cls, text)
        self.reason = reason
        return self


def explain(tape: Any, target: Any, source: Any) -> Explanation:
    """`tape.explain(target, source)`: see the module docstring.

    Example:
        >>> import tape
        >>> w = tape.Variable(2.0, name="w")
        >>> with tape.Tape() as t:
        ...     y = w * w
        >>> explain(t, y, w).reason
        'connected'
    """
    if tape._records is None:
        raise RuntimeError("explain() needs the tape's records, which this non-persistent Tape "
                           "released in gradient(); call explain() before gradient(), or use "
                           "Tape(persistent=True)")
    if not isinstance(source, Tensor):
        raise TypeError(f"explain() source must be a tensor or Variable, got "
                        f"{type(source).__name__}")
    if not tape._entered:
        return Explanation("never_entered", (
            "The tape was never entered: it records only inside a `with` block, so it recorded "
            "nothing and no gradient can flow. Write `with tape.Tape() as t:` and compute the "
            "target inside the block (creating a Tape does not start recording)."))
    name = _name(source)
    subject = name[:1].upper() + name[1:]  # the name at the start of a sentence
    if source.dtype.kind not in "fc":
        return Explanation("integer_dtype", (
            f"{subject} has dtype {source.dtype}, which is not differentiable: only floating-point "
            f"tensors have gradients. Create it as floating point (e.g. tape.Variable(3.0), or "
            f".astype('float64')) before the tape reads it."))
    if not isinstance(target, Tensor):
        return Explanation("target_not_tensor", (
            f"The target is a {type(target).__name__}, not a tensor, so it has no recorded "
            f"history: it was computed outside the tape's operations (for example after "
            f"np.asarray(), .numpy() or float()). Compute it with tape ops on tensors; NumPy "
            f"functions applied to tensors are recorded."))
    if target.dtype.kind not in "fc":
        return Explanation("integer_target", (
            f"The target has dtype {target.dtype}; integer and boolean results are never "
            f"recorded, so no gradient flows from it. Compute it in floating point."))
    records = tape._records
    reach = reachable(records, {id(source)})
    if id(target) in reach:
        ops = _ops_between(records, reach, target)
        how = (f"through {len(ops)} recorded operation(s) ({_listing(ops)})" if ops
               else "directly (the target is the source)")
        return Explanation("connected", (
            f"The gradient with respect to {name} is connected: it flows back {how}. If its "
            f"values look wrong rather than missing, check them with tape.check_gradients."))
    tracked = id(source) in tape._tracked
    if not tracked:
        unwatched = _unwatched(tape, source, subject)
        if unwatched:
            return Explanation("not_watched", unwatched)
    # Values the target depends on that the tape did not see being computed: the only way a
    # value that left the tape (an "exit") can come back into the target.
    outside = _outside(records, target, tape._tracked)
    exits = [note for note in tape._notes if not reach.isdisjoint(note[1])]
    if exits and outside:
        seen = {id(v) for t in outside for v in (t, getattr(t, "_value", None))}
        direct = [note for note in exits if note[3] is not None and id(note[3]()) in seen]
        return _exit_explanation(direct or exits, name, subject, certain=bool(direct))
    outside = [t for t in outside if isinstance(t, Tensor)]
    if outside:
        described = _listing([f"{t.shape} {t.dtype}" for t in outside])
        read = ("is watched, but no recorded operation connects it to the target" if tracked
                else "was not read while the tape was recording")
        return Explanation("read_before_tape", (
            f"{subject} {read}, and the target depends on tensor(s) the tape did not see being "
            f"computed ({described}). If they were computed from {name} before the tape started "
            f"(or before it was watched), move that computation inside the `with` block."))
    if tracked:
        return Explanation("unrelated", (
            f"The target does not depend on {name}: the tape tracks it, but none of the "
            f"operations that read it leads to the target."))
    return Explanation("never_read", (
        f"{subject} was never read while the tape was recording, and the target does not depend "
        f"on it. Use it inside the `with` block to compute the target."))


def _name(x: Any) -> str:
    if x._is_variable:
        return f"Variable '{x.name}'"
    return f"the source tensor (shape {x.shape}, {x.dtype})"


def _listing(items: list[str], limit: int = 5) -> str:
    unique = list(dict.fromkeys(items))
    more = f", ... ({len(unique) - limit} more)" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more


def _unwatched(tape: Any, source: Any, name: str) -> str | None:
    """Why a source the tape does not track was not watched, if watching was the problem."""
    if source._is_variable and not source.trainable:
        why = "a non-trainable Variable, and tapes watch only trainable Variables by themselves"
    elif source._is_variable and not tape._watch_accessed:
        why = "a Variable, and this tape was created with watch_accessed_variables=False"
    elif not source._is_variable:
        why = "a tensor, and tapes track tensors (unlike trainable Variables) only when watched"
    else:
        return None
    return (f"{name} is {why}; it was never watched. Call tape.watch(...) on it inside the "
            f"`with` block, before computing with it.")


_EXITS = {  # reason code, and how to describe it
    "stop_recording": ("stop_recording", "was used inside tape.stop_recording(), where nothing "
                       "is recorded"),
    "stop_gradient": ("stop_gradient", "went through tape.stop_gradient, which blocks the "
                      "gradient on purpose"),
    "np.asarray": ("left_tape", "left the tape through np.asarray(), becoming a plain NumPy "
                   "array with no history"),
    "numpy()": ("left_tape", "left the tape through .numpy(), becoming a plain NumPy array with "
                "no history"),
}


def _exit_explanation(exits: list[tuple[Any, ...]], name: str, subject: str,
                      certain: bool) -> Explanation:
    kinds = list(dict.fromkeys(note[0] for note in exits))
    kinds.sort(key=list(_EXITS).index)
    parts = []
    for kind in kinds:
        labels = [note[2] for note in exits if note[0] == kind]
        parts.append(f"{_EXITS[kind][1]} ({len(labels)} time(s): {_listing(labels, 3)})")
    advice = {
        "stop_recording": "Compute the target outside the stop_recording() block.",
        "stop_gradient": "Remove the stop_gradient if the gradient should flow there.",
        "left_tape": "Keep computing with tensors (NumPy functions on tensors are recorded); "
                     "use tape.stop_gradient to stop a gradient on purpose.",
    }[_EXITS[kinds[0]][0]]
    link = ("The target was computed from that value" if certain else "The target depends on "
            "values the tape did not see being computed, which may have come from there")
    return Explanation(_EXITS[kinds[0]][0], (
        f"No recorded operation connects the target to {name}. {subject} (or a value computed "
        f"from it) {'; and it '.join(parts)}. {link}. {advice}"))


def _ops_between(records: list[Record], reach: set[int], target: Tensor) -> list[str]:
    """Names of the recorded operations on paths from the source to the target, in order."""
    wanted, names = {id(target)}, []
    for rec in reversed(records):
        out = id(rec.output)
        if out in wanted and out in reach:
            names.append(rec.primitive.name)
            wanted.update(id(rec.inputs[i]) for i in rec.live)
    return names[::-1]


def _outside(records: list[Record], target: Tensor, tracked: Any) -> list[Any]:
    """Tensors (not Variables) and NumPy values the target depends on, whose computation the
    tape did not see."""
    found: dict[int, Any] = {}
    if id(target) not in tracked and not target._is_variable:
        found[id(target)] = target
    wanted = {id(target)}
    for rec in reversed(records):
        if id(rec.output) not in wanted:
            continue
        for i, a in enumerate(rec.inputs):
            if i in rec.live:
                wanted.add(id(a))
            elif isinstance(a, (np.ndarray, np.generic)) or (
                    isinstance(a, Tensor) and not a._is_variable):
                found[id(a)] = a
    return list(found.values())
