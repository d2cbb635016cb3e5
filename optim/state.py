"""An optimizer's state as a flat dict of numbers and arrays, and reading one back, checked.

Keys: `iterations`; `hyperparameters/<name>`; `slots/<position>/<slot>`, where position is the
variable's place in the order the optimizer first saw it (so the state loads into fresh
Variables). `Optimizer.state_dict` and `Optimizer.load_state_dict` are built on these.

Example:
    >>> import numpy as np
    >>> from tape import Variable
    >>> from optim.transforms import VariableState
    >>> w = Variable([1.0, 2.0])
    >>> flat = state_dict(3, {"learning_rate": 0.1}, [VariableState(w, ("m",))])
    >>> sorted(flat)
    ['hyperparameters/learning_rate', 'iterations', 'slots/0/m']
    >>> iterations, hyper, [st] = read_state_dict(flat, [w], ("m",))
    >>> iterations, hyper, st.slots["m"]
    (3, {'learning_rate': 0.1}, array([0., 0.]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optim.gradients import is_finite
from optim.transforms import VariableState
from tape import Variable

__all__ = ["read_state_dict", "state_dict"]

_HYPER = "hyperparameters/"


def state_dict(iterations: int, hyperparameters: Mapping[str, Any],
               states: Sequence[VariableState]) -> dict[str, Any]:
    """The flat state: the step count, the hyperparameters that are data (a schedule, or
    clipping that is off, is code or absent and is not saved), and copies of every slot.

    Example:
        >>> state_dict(0, {"learning_rate": 0.1, "clipnorm": None}, [])
        {'iterations': 0, 'hyperparameters/learning_rate': 0.1}
    """
    state: dict[str, Any] = {"iterations": iterations}
    for name, v in hyperparameters.items():
        if v is not None and not callable(v):
            state[_HYPER + name] = v.copy() if isinstance(v, np.ndarray) else v
    for i, st in enumerate(states):
        for name, arr in st.slots.items():
            state[f"slots/{i}/{name}"] = arr.copy()
    return state


def read_state_dict(state: Mapping[str, Any], variables: Sequence[Variable],
                    slot_names: Sequence[str], owner: str = "optimizer"
                    ) -> tuple[int, dict[str, Any], list[VariableState]]:
    """`(iterations, hyperparameters, states)` read from a flat state for `variables` in the
    saved order, each with the slots `slot_names`. A missing, extra, misshapen or non-finite
    entry is a `ValueError` naming it (the hyperparameters are checked by the optimizer).

    Example:
        >>> read_state_dict({"iterations": 1, "slots/0/m": np.zeros(2)}, [], ())
        Traceback (most recent call last):
        ValueError: load_state_dict: this optimizer has no variables yet, so the saved slots of ...
    """
    state = dict(state)
    try:
        iterations = int(state.pop("iterations"))
    except (KeyError, TypeError, ValueError):
        raise ValueError("load_state_dict: 'iterations' is missing or not an integer") from None
    if iterations < 0:
        raise ValueError(f"load_state_dict: iterations must be >= 0, got {iterations}")
    hyper = {k[len(_HYPER):]: state.pop(k) for k in list(state) if k.startswith(_HYPER)}
    states = [_read_slots(var, i, state, slot_names) for i, var in enumerate(variables)]
    if state and not variables:
        slots = {k.split("/")[1] for k in state if k.startswith("slots/")}
        raise ValueError(f"load_state_dict: this {owner} has no variables yet, so the saved "
                         f"slots of {len(slots)} variable(s) {sorted(state)[:4]}"
                         f"{' ...' if len(state) > 4 else ''} have nothing to load into: pass "
                         f"var_list, the variables in the order they were saved "
                         f"(opt.load_state_dict(state, model.trainable_variables)), or load model "
                         f"and optimizer together with nn.load_checkpoint(path, model, opt)")
    if state:
        raise ValueError(f"load_state_dict: unexpected entries {sorted(state)}")
    return iterations, hyper, states


def _read_slots(var: Variable, i: int, state: dict[str, Any],
                slot_names: Sequence[str]) -> VariableState:
    """The state of variable `i`, its slots popped from `state` and checked."""
    st = VariableState(var, ())
    slots = {}
    for name in slot_names:
        key = f"slots/{i}/{name}"
        if key not in state:
            raise ValueError(f"load_state_dict: missing slot {key!r} for Variable "
                             f"'{var.name}' (shape {var.shape})")
        arr = np.asarray(state.pop(key))
        if arr.shape != var.shape:
            raise ValueError(f"load_state_dict: slot {key!r} has shape {arr.shape}, but "
                             f"Variable '{var.name}' has shape {var.shape}")
        if not np.can_cast(arr.dtype, var.dtype, "same_kind"):
            raise ValueError(f"load_state_dict: slot {key!r} has dtype {arr.dtype}, which "
                             f"cannot be cast to Variable '{var.name}''s {var.dtype}")
        with np.errstate(over="ignore"):  # reported below
            slot = arr.astype(var.dtype, copy=True)
        if not is_finite(slot):
            raise ValueError(f"load_state_dict: slot {key!r} for Variable '{var.name}' holds "
                             f"NaN or inf (as {var.dtype}); an optimizer's state is always "
                             f"finite, so this state is corrupt")
        slots[name] = slot
    st.load(slots)
    return st
