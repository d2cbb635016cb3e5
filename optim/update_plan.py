"""`Optimizer.update_plan`: `apply_gradients` specialised to one list of variables.

`tape.function` traces a step once and replays it; an optimizer's step must still read its
hyperparameters, schedule and `iterations` on every call, and keep its all-or-nothing finite
check. A plan does exactly that with the least Python: the checks of the pairs, the variables'
states and the shaping of coefficients are done when the plan is made; each call computes the
coefficients from the current hyperparameters, the gradients' bounds and the finiteness proof,
then runs the same in-place ufunc calls as `apply_gradients`, in the same order on the same
operands (so the bits are the same). Anything off that path (clipping, stacked members, a
gradient that is not finite, a step not proved finite, a variable the optimizer does not know
yet) is handed to `apply_gradients`' own code, which then behaves exactly as eager.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from optim.gradients import gradient_array, largest
from optim.transforms import ScaleByAdam, VariableState
from tape import Variable


class UpdatePlan:
    """`plan(grads)` is `optimizer.apply_gradients(zip(grads, variables))`, bit for bit.

    Example:
        >>> import numpy as np, tape
        >>> from optim import Adam
        >>> w, opt = tape.Variable([1.0, 2.0]), Adam(0.1)
        >>> plan = opt.update_plan([w])
        >>> plan([np.array([0.5, -0.5])]), opt.iterations
        (True, 1)
    """

    def __init__(self, optimizer: Any, variables: Sequence[Variable]) -> None:
        # `optimizer` is an `optim.Optimizer` (not imported: that module imports this one)
        self.optimizer = optimizer
        self.variables = list(variables)
        self.no_clip: list[Any] = [None] * len(self.variables)
        self.same = [lambda x: x] * len(self.variables)  # `fit_to(var, None)`: unshaped
        links = optimizer._transforms
        # Plain Adam gets its moment updates written out (the same calls as ScaleByAdam's).
        self.adam = (len(links) == 1 and type(links[0]) is ScaleByAdam
                     and not links[0].amsgrad)

    def __call__(self, grads: Sequence[Any]) -> Any:
        opt = self.optimizer
        hp = opt._hyper
        states = self._states()
        if (states is None or opt.per_member_nonfinite or opt._k is not None
                or hp["clipnorm"] is not None or hp["global_clipnorm"] is not None):
            return self._general(grads)
        lr = hp["learning_rate"]
        if callable(lr):
            lr = opt.current_learning_rate
            if isinstance(lr, np.ndarray):
                return self._general(grads)
            hp = {**hp, "learning_rate": lr}
        arrays = [gradient_array(g, v) for g, v in zip(grads, self.variables, strict=True)]
        bounds = [largest(g) for g in arrays]
        if not sum(bounds) < math.inf:
            return self._general(grads)  # refused there, with its message
        t = opt._iterations + 1
        links = [(link, link.coefficients(hp, t)) for link in opt._transforms]
        decays = [lam for link, c in links if (lam := link.decay(c)) is not None]
        step = (lr, links, decays)
        if not opt._finite_for_sure(bounds, self.no_clip, states, step):
            return self._general(grads)  # computed aside and checked there
        if self.adam and not decays:
            _adam_in_place(arrays, states, lr, links[0][1])
        else:
            opt._step_in_place(arrays, self.no_clip, self.same, states, step, None)
        opt._iterations = t
        return True

    def _states(self) -> list[VariableState] | None:
        """The optimizer's states of the variables, or None if one is not known yet."""
        opt = self.optimizer
        out = []
        for var in self.variables:
            i = opt._positions.get(id(var))
            if i is None:
                return None
            out.append(opt._states[i])
        return out

    def _general(self, grads: Sequence[Any]) -> Any:
        return self.optimizer._apply(zip(grads, self.variables, strict=True), None)


def _adam_in_place(grads: list[np.ndarray], states: list[VariableState], lr: Any,
                   c: dict[str, Any]) -> None:
    """ScaleByAdam's update and the optimizer's `w -= lr * scale * d`, in place, for steps
    with no clipping factor and no stacked members: `_moments`, `ScaleByAdam.update`,
    `Optimizer._delta` and `_step_in_place` with their identity shapings left out."""
    a1, b1, r2, b2, eps = c["a1"], c["b1"], c["r2"], c["b2"], c["eps"]
    rate = lr * c["scale"]
    for g, state in zip(grads, states, strict=True):
        slots = state.slots
        m, v = slots["m"], slots["v"]
        u = state.free_buffer(g)
        np.multiply(g, a1, out=u)
        np.multiply(m, b1, out=m)
        np.add(m, u, out=m)
        np.multiply(g, r2, out=u)
        np.square(u, out=u)
        np.multiply(v, b2, out=v)
        np.add(v, u, out=v)
        np.sqrt(v, out=u)
        np.add(u, eps, out=u)
        np.divide(m, u, out=u)
        np.multiply(u, rate, out=u)
        state.var.assign_sub(u)
        state.take_bounds()
