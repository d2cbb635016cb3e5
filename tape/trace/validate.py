"""`tape.function(validate=N)`: run a call eagerly and replayed from the same state, compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.tensor import Tensor, Variable


def flat(x: Any) -> list[Any]:
    """The arrays of a returned structure, in order."""
    if isinstance(x, Tensor):
        return [x._value]
    if isinstance(x, (list, tuple)):
        return [leaf for v in x for leaf in flat(v)]
    if isinstance(x, dict):
        return [leaf for v in x.values() for leaf in flat(v)]
    return [np.asarray(x)]


class State:
    """The state a replay touches: Variables captured in it, and objects with a state dict
    (optimizers) whose methods it calls; saved so that `validate` can run a call twice."""

    def __init__(self, replay: Callable[..., Any]) -> None:
        ns = replay.__globals__
        self.variables = [v for v in ns.values() if isinstance(v, Variable)]
        owners = [getattr(v, "__self__", v) for v in ns.values()]
        self.stateful = list({id(o): o for o in owners
                              if callable(getattr(o, "state_dict", None))
                              and callable(getattr(o, "load_state_dict", None))}.values())
        self.saved = self.capture()

    def capture(self) -> tuple[list[Any], list[Any]]:
        return ([v.numpy() for v in self.variables],
                [{k: np.array(a, copy=True) for k, a in o.state_dict().items()}
                 for o in self.stateful])

    def restore(self) -> None:
        values, states = self.saved
        for var, value in zip(self.variables, values):
            var.assign(value)
        for o, state in zip(self.stateful, states):
            o.load_state_dict(state)

    def compare(self, other: tuple[list[Any], list[Any]]) -> list[tuple[str, Any, Any]]:
        now = self.capture()
        rows = [(f"Variable '{v.name}'", a, b)
                for v, a, b in zip(self.variables, other[0], now[0])]
        for o, a, b in zip(self.stateful, other[1], now[1]):
            rows += [(f"{type(o).__name__} state {k!r}", a[k], b[k]) for k in a]
        return rows


def differ(a: Any, b: Any) -> bool:
    """Whether the structures `a` and `b` differ in any array (NaN equal to NaN) or shape."""
    for x, y in zip(flat(a), flat(b), strict=True):
        if not np.array_equal(x, y, equal_nan=True) or np.shape(x) != np.shape(y):
            return True
    return False
