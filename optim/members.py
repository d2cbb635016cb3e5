"""Stacked models in one optimizer: which members a step updates, which it leaves out, and
keeping some members' state (when a population culls or copies members).

K models stacked along every variable's leading axis share one optimizer; a member left out of
a step keeps its weights and slots exactly. `Optimizer.apply_gradients(..., active=mask)` and
`Optimizer.select_members` are built on these functions.

Example:
    >>> import numpy as np
    >>> from tape import Variable
    >>> w = Variable(np.zeros((3, 2)))
    >>> g = np.array([[1.0, 2.0], [np.nan, 0.0], [0.0, 0.0]])
    >>> members_to_update([g], [w], None, None, leave_out_nonfinite=True)
    array([ True, False,  True])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from optim.gradients import is_finite, nonfinite_members, overflowing_members, overflows
from optim.transforms import VariableState
from tape import Variable

__all__ = ["leave_out", "members_to_update", "nonfinite_step_members", "select_states",
           "zero_rows"]

_LEAVE_OUT = "Pass per_member_nonfinite=True to leave such members out of the step"


def members_to_update(grads: list[np.ndarray], variables: list[Variable], k: int | None,
                      active: Any, *, leave_out_nonfinite: bool) -> np.ndarray:
    """The (K,) mask of stacked members a step updates: those `active` (a (K,) boolean mask,
    or None for all) with finite gradients. A member with a NaN or inf gradient is left out
    when `leave_out_nonfinite`, else a `FloatingPointError` naming the members. Variables
    without a common leading (member) axis are a `ValueError`.

    Example:
        >>> w = Variable(np.zeros((2, 3)))
        >>> members_to_update([np.ones((2, 3))], [w], None, np.array([True, False]),
        ...                   leave_out_nonfinite=False)
        array([ True, False])
    """
    if k is None and variables[0].ndim:
        k = variables[0].shape[0]
    odd = [f"'{v.name}' {v.shape}" for v in variables if not v.ndim or v.shape[0] != k]
    if k is None or odd:
        raise ValueError(f"a per-member update needs stacked variables with the same leading "
                         f"(member) axis; got {odd}")
    update = np.ones(k, bool)
    if active is not None:
        mask = np.asarray(active)
        if mask.shape != (k,) or mask.dtype != bool:
            raise ValueError(f"active must be a boolean mask of shape ({k},) (one flag per "
                             f"member), got {mask.dtype} of shape {mask.shape}")
        update &= mask
    bad = nonfinite_members(grads, k) & update
    if bad.any():
        if not leave_out_nonfinite:
            raise FloatingPointError(
                f"non-finite (NaN or inf) gradients for members {np.flatnonzero(bad)}; no "
                f"variable was updated. {_LEAVE_OUT}")
        update &= ~bad
    return update


def leave_out(bad: np.ndarray, update: np.ndarray, *, leave_out_nonfinite: bool) -> np.ndarray:
    """`update` without the members `bad`, whose step would not be finite; a
    `FloatingPointError` naming them unless `leave_out_nonfinite`.

    Example:
        >>> leave_out(np.array([False, True]), np.array([True, True]), leave_out_nonfinite=True)
        array([ True, False])
    """
    if not bad.any():
        return update
    if not leave_out_nonfinite:
        raise FloatingPointError(
            f"finite gradients would make members {np.flatnonzero(bad)} non-finite (weights "
            f"or optimizer state); no variable was updated. {_LEAVE_OUT}")
    return update & ~bad


def nonfinite_step_members(states: list[VariableState], deltas: list[np.ndarray], k: int,
                           checked_slots: Sequence[str]) -> np.ndarray:
    """The (K,) mask of stacked members whose step (`deltas`, and the slots pending in
    `states` among `checked_slots`) would not be finite.

    Example:
        >>> w = Variable(np.ones((2, 1)))
        >>> nonfinite_step_members([VariableState(w, ())], [np.array([[0.5], [np.inf]])], 2, ())
        array([False,  True])
    """
    bad = np.zeros(k, bool)
    for state, delta in zip(states, deltas, strict=True):
        if overflows(state.var, delta):
            bad |= overflowing_members(np.asarray(state.var), delta, k)
        slots = [state.pending[n] for n in checked_slots if n in state.pending]
        if slots and not all(is_finite(x) for x in slots):
            bad |= nonfinite_members(slots, k)
    return bad


def zero_rows(g: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A copy of `g` with the members `rows` (a (K,) mask) zeroed, so that the arithmetic of
    members sitting a step out stays finite.

    Example:
        >>> zero_rows(np.ones((2, 2)), np.array([False, True]))
        array([[1., 1.],
               [0., 0.]])
    """
    g = g.copy()
    g[rows] = 0
    return g


def select_states(states: list[VariableState], indices: Any,
                  replacements: Iterable[tuple[Variable, Variable]] = ()
                  ) -> tuple[np.ndarray, list[VariableState]]:
    """The member indices, checked, and new states keeping the rows `indices` of every slot;
    `replacements` are `(old, new)` variable pairs whose state moves to `new` (which must have
    `len(indices)` members). Nothing is changed; a bad index or shape is a `ValueError`.

    Example:
        >>> w, kept = Variable(np.zeros((3, 2))), Variable(np.zeros((2, 2)))
        >>> idx, [st] = select_states([VariableState(w, ("m",))], [2, 0], [(w, kept)])
        >>> idx, st.var is kept, st.slots["m"].shape
        (array([2, 0]), True, (2, 2))
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise ValueError(f"select_members needs a non-empty 1-D array of member indices, got "
                         f"{indices!r}")
    new_of = {id(old): new for old, new in replacements}
    selected = []
    for st in states:
        var = new_of.get(id(st.var), st.var)
        shape = (idx.size, *st.var.shape[1:])
        if not st.var.ndim or var.shape != shape or idx.max() >= st.var.shape[0]:
            raise ValueError(f"select_members: Variable '{st.var.name}' of shape "
                             f"{st.var.shape} cannot keep members {idx.tolist()} as a "
                             f"variable of shape {var.shape}")
        new = VariableState(var, ())
        new.load({name: arr[idx] for name, arr in st.slots.items()})
        selected.append(new)
    return idx, selected
