"""Update transforms: the links an optimizer chains to turn gradients into weight updates.

In the spirit of optax (`scale_by_adam`, `trace`, `add_decayed_weights`), each link keeps its own
per-variable state in named slot arrays and maps a direction to a new one; an optimizer is a
chain of links followed by `w -= learning_rate * direction`. Unlike optax the links work in
place on preallocated buffers (no temporaries in the steady state), and a direction is a pair
`(d, s)` meaning `s * d`, where `s` is a float, a (K,) float64 array (one value per stacked
model) or None (1). Deferring the scalar keeps a gradient clipping factor or a bias correction
from costing a pass over the array: a link folds it into a coefficient it multiplies by anyway.

A link never writes into the incoming `d` (it may be the caller's gradient array), nor into its
slots or the weights: it writes a slot's new value into `state.new_slot(name)`, and the optimizer
commits the new slots and weights only after checking that the whole step is finite (so a
refused step leaves everything as it was, without copying anything).

Example (AdamW is Adam followed by one more link):
    >>> from optim.optimizer import Optimizer
    >>> opt = Optimizer(0.01, [ScaleByAdam(), DecoupledWeightDecay()], weight_decay=0.1)
    >>> opt.beta_1, opt.weight_decay
    (0.9, 0.1)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from optim.hyperparams import Check, check_beta, check_epsilon, check_rate, sqrt

Direction = tuple[np.ndarray, Any]


class VariableState:
    """What an optimizer keeps for one variable: its slot arrays and scratch buffers.

    Slots (`m`, `v`, ...) are the saved state; scratch buffers are reused every step and never
    saved. During a step, links write new slot values into `new_slot(name)` buffers; `commit`
    makes them the slots (the old arrays become next step's buffers), `discard` forgets them.
    All have the variable's shape and dtype.

    Example:
        >>> import tape
        >>> st = VariableState(tape.Variable([1.0, 2.0]), ("m",))
        >>> st.slots["m"], st.free_buffer().shape
        (array([0., 0.]), (2,))
        >>> st.new_slot("m")[:] = 5.0
        >>> st.commit()
        >>> st.slots["m"]
        array([5., 5.])
    """

    __slots__ = ("var", "slots", "pending", "_scratch", "_spare")

    def __init__(self, var: Any, slot_names: tuple[str, ...]) -> None:
        self.var = var
        self.slots = {name: np.zeros(var.shape, var.dtype) for name in slot_names}
        self.pending: dict[str, np.ndarray] = {}  # slot name -> its new value this step
        self._scratch = [np.empty(var.shape, var.dtype)]  # every step needs one
        self._spare: dict[str, np.ndarray] = {}

    def free_buffer(self, *busy: np.ndarray) -> np.ndarray:
        """A scratch buffer that is none of `busy` (arrays still to be read); allocated on first
        need, then reused every step."""
        for b in self._scratch:
            for x in busy:
                if b is x:
                    break
            else:
                return b
        b = np.empty(self.var.shape, self.var.dtype)
        self._scratch.append(b)
        return b

    def owns(self, x: np.ndarray) -> bool:
        """Whether `x` is one of the scratch buffers (so it may be overwritten)."""
        for b in self._scratch:
            if x is b:
                return True
        return False

    def new_slot(self, name: str) -> np.ndarray:
        """The buffer that receives slot `name`'s new value this step (uncommitted)."""
        b = self._spare.get(name)
        if b is None:
            b = self._spare[name] = np.empty(self.var.shape, self.var.dtype)
        self.pending[name] = b
        return b

    def commit(self, held: np.ndarray | None = None) -> None:
        """Make this step's new slot values the slots; the rows `held` (stacked members sitting
        this step out, a boolean mask of the leading axis) keep their old values."""
        slots, spare = self.slots, self._spare
        for name, new in self.pending.items():
            old = slots[name]
            if held is not None:
                new[held] = old[held]
            slots[name], spare[name] = new, old
        self.pending.clear()

    def discard(self) -> None:
        """Forget this step's new slot values (the slots are untouched)."""
        self.pending.clear()


class Transform(ABC):
    """Base link: names its slots and hyperparameters; subclasses define the maths.

    `hyperparameters` maps each name to `(check, default)`. `coefficients(hp, t)` turns the
    current hyperparameter values (`hp`, the learning rate already evaluated) and the 1-based
    step `t` into per-step constants, once per step for all variables. `update(d, s, c, fit,
    state)` transforms one variable's direction; `fit` shapes a constant against the variable.
    `decay(c)` is the rate of a decoupled weight decay the link adds to the step (None: none).

    The optimizer refuses a step that would leave a non-finite value in the weights or in a
    slot named by `checked_slots` (None: every slot). A link may leave out a slot whose
    non-finite values always show in its direction (Adam's `m`, over a finite denominator);
    `v`, which only divides, must be checked.

    Example (a link that flips the direction's sign, stateless):
        >>> class Negate(Transform):
        ...     def update(self, d, s, c, fit, state):
        ...         return d, -1.0 if s is None else -s
        >>> Negate().slots, Negate()
        ((), Negate())
    """

    slots: tuple[str, ...] = ()
    checked_slots: tuple[str, ...] | None = None
    hyperparameters: dict[str, tuple[Check, Any]] = {}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        return {}

    def decay(self, c: dict[str, Any]) -> Any:
        """The rate `lam` of a decoupled weight decay, `w -= learning_rate * lam * w`, applied
        with the step (None: this link adds none)."""
        return None

    @abstractmethod
    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        """The new direction (and scale) from the incoming direction `d` and scale `s`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _times(s: Any, x: Any) -> Any:
    """`s * x`, where None stands for 1 (so nothing is computed in the common case)."""
    return x if s is None else s * x


class ScaleByAdam(Transform):
    """Adam's direction: bias-corrected first moment over the root of the second moment.

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        d = m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)

    computed as `(sqrt(1-b2^t) / (1-b1^t)) * m / (sqrt(v) + eps*sqrt(1-b2^t))`, which is the
    same number with two fewer passes. With `amsgrad`, `v` in the denominator is the running
    maximum of `v` (PyTorch's variant: the maximum is bias-corrected like `v`).

    The new term of `v` is computed as `(sqrt(1-b2) g)^2`, not `(1-b2) g^2`: the same cost, and
    it overflows only where the term itself does. A float32 gradient of 1e20 gives
    `v = 1e37` (PyTorch: inf, and the weight never moves again); a gradient whose term cannot
    be represented (1e30 in float32) makes the optimizer refuse the step.

    Example:
        >>> ScaleByAdam(amsgrad=True).slots
        ('m', 'v', 'v_max')
    """

    hyperparameters = {"beta_1": (check_beta, 0.9), "beta_2": (check_beta, 0.999),
                       "epsilon": (check_epsilon, 1e-8)}
    checked_slots = ("v",)  # m shows in the direction; v_max = max(old v_max, v)

    def __init__(self, amsgrad: bool = False) -> None:
        self.amsgrad = bool(amsgrad)
        self.slots = ("m", "v", "v_max") if amsgrad else ("m", "v")

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        b1, b2 = hp["beta_1"], hp["beta_2"]
        bc1, root_bc2 = 1 - b1**t, sqrt(1 - b2**t)
        return {"b1": b1, "a1": 1 - b1, "b2": b2, "r2": sqrt(1 - b2),
                "eps": hp["epsilon"] * root_bc2, "scale": root_bc2 / bc1}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        m, v = state.new_slot("m"), state.new_slot("v")
        u = state.free_buffer(d)
        np.multiply(d, fit(_times(s, c["a1"])), out=u)
        np.multiply(state.slots["m"], fit(c["b1"]), out=m)
        np.add(m, u, out=m)
        np.multiply(d, fit(_times(s, c["r2"])), out=u)
        np.square(u, out=u)
        np.multiply(state.slots["v"], fit(c["b2"]), out=v)
        np.add(v, u, out=v)
        if self.amsgrad:
            v = np.maximum(state.slots["v_max"], v, out=state.new_slot("v_max"))
        np.sqrt(v, out=u)
        np.add(u, fit(c["eps"]), out=u)
        np.divide(m, u, out=u)
        return u, c["scale"]

    def __repr__(self) -> str:
        return f"ScaleByAdam(amsgrad={self.amsgrad})"


class ScaleByRms(Transform):
    """RMSprop's direction: the gradient over the root of its running mean square.

        v = rho v + (1 - rho) g^2;   d = g / (sqrt(v) + eps)

    with the new term computed as `(sqrt(1-rho) g)^2` (see `ScaleByAdam`).

    Example:
        >>> ScaleByRms().slots
        ('v',)
    """

    slots = ("v",)
    checked_slots = ("v",)
    hyperparameters = {"rho": (check_beta, 0.9), "epsilon": (check_epsilon, 1e-8)}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        return {"rho": hp["rho"], "r": sqrt(1 - hp["rho"]), "eps": hp["epsilon"]}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        v = state.new_slot("v")
        u = state.free_buffer(d)
        np.multiply(d, fit(_times(s, c["r"])), out=u)
        np.square(u, out=u)
        np.multiply(state.slots["v"], fit(c["rho"]), out=v)
        np.add(v, u, out=v)
        np.sqrt(v, out=u)
        np.add(u, fit(c["eps"]), out=u)
        np.divide(d, u, out=u)
        return u, s


class Trace(Transform):
    """Momentum (heavy ball), PyTorch's form: `b = mu b + g`, direction `b`.

    With `nesterov`, the direction is `g + mu b` (the gradient looked up ahead). With
    `momentum == 0` the gradient passes through untouched (and the buffer is left as is).

    Example:
        >>> Trace(nesterov=True).slots
        ('momentum',)
    """

    slots = ("momentum",)
    checked_slots = ()  # b shows in the direction: b itself, or g + mu b
    hyperparameters = {"momentum": (check_beta, 0.0)}

    def __init__(self, nesterov: bool = False) -> None:
        self.nesterov = bool(nesterov)

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        mu = hp["momentum"]
        return {"mu": mu, "off": not isinstance(mu, np.ndarray) and mu == 0.0}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        if c["off"]:
            return d, s
        b = state.new_slot("momentum")
        mu = fit(c["mu"])
        np.multiply(state.slots["momentum"], mu, out=b)
        if s is not None:  # fold the pending factor into the gradient first: b = mu b + s g
            d = np.multiply(d, fit(s), out=state.free_buffer(d))
        np.add(b, d, out=b)
        if not self.nesterov:
            return b, None
        out = state.free_buffer(d)
        np.multiply(b, mu, out=out)
        np.add(out, d, out=out)
        return out, None

    def __repr__(self) -> str:
        return f"Trace(nesterov={self.nesterov})"


class DecoupledWeightDecay(Transform):
    """Decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW): `w -= lr * wd * w`.

    Shrinks the weights directly, independent of the direction (which passes through): the
    optimizer subtracts `lr * wd * w` together with the step, after its checks.

    Example:
        >>> DecoupledWeightDecay().hyperparameters["weight_decay"][1]
        0.01
    """

    hyperparameters = {"weight_decay": (check_rate, 0.01)}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        return {"wd": hp["weight_decay"]}

    def decay(self, c: dict[str, Any]) -> Any:
        wd = c["wd"]
        return None if not isinstance(wd, np.ndarray) and wd == 0.0 else wd

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        return d, s
