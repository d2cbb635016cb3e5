"""Update transforms: the links an optimizer chains to turn gradients into weight updates.

In the spirit of optax (`scale_by_adam`, `trace`, `add_decayed_weights`), each link keeps its own
per-variable state in named slot arrays and maps a direction to a new one; an optimizer is a
chain of links followed by `w -= learning_rate * direction`. Unlike optax the links work in
place on preallocated buffers (no temporaries in the steady state), and a direction is a pair
`(d, s)` meaning `s * d`, where `s` is a float, a (K,) float64 array (one value per stacked
model) or None (1). Deferring the scalar keeps a gradient clipping factor or a bias correction
from costing a pass over the array: a link folds it into a coefficient it multiplies by anyway.

A link never writes into the incoming `d` (it may be the caller's gradient array).

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
    saved. Both have the variable's shape and dtype.

    Example:
        >>> import tape
        >>> st = VariableState(tape.Variable([1.0, 2.0]), ("m",))
        >>> st.slots["m"], st.free_buffer().shape
        (array([0., 0.]), (2,))
    """

    __slots__ = ("var", "slots", "_scratch")

    def __init__(self, var: Any, slot_names: tuple[str, ...]) -> None:
        self.var = var
        self.slots = {name: np.zeros(var.shape, var.dtype) for name in slot_names}
        self._scratch = [np.empty(var.shape, var.dtype)]  # every step needs one

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


class Transform(ABC):
    """Base link: names its slots and hyperparameters; subclasses define the maths.

    `hyperparameters` maps each name to `(check, default)`. `coefficients(hp, t)` turns the
    current hyperparameter values (`hp`, the learning rate already evaluated) and the 1-based
    step `t` into per-step constants, once per step for all variables. `update(d, s, c, fit,
    state)` transforms one variable's direction; `fit` shapes a constant against the variable.

    Example (a link that flips the direction's sign, stateless):
        >>> class Negate(Transform):
        ...     def update(self, d, s, c, fit, state):
        ...         return d, -1.0 if s is None else -s
        >>> Negate().slots, Negate()
        ((), Negate())
    """

    slots: tuple[str, ...] = ()
    hyperparameters: dict[str, tuple[Check, Any]] = {}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        return {}

    @abstractmethod
    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        """The new direction (and scale) from the incoming direction `d` and scale `s`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _times(s: Any, x: Any) -> Any:
    """`s * x`, where None stands for 1 (so nothing is computed in the common case)."""
    return x if s is None else s * x


def _squared(s: Any) -> Any:
    return None if s is None else s * s


class ScaleByAdam(Transform):
    """Adam's direction: bias-corrected first moment over the root of the second moment.

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        d = m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)

    computed as `(sqrt(1-b2^t) / (1-b1^t)) * m / (sqrt(v) + eps*sqrt(1-b2^t))`, which is the
    same number with two fewer passes. With `amsgrad`, `v` in the denominator is the running
    maximum of `v` (PyTorch's variant: the maximum is bias-corrected like `v`).

    Example:
        >>> ScaleByAdam(amsgrad=True).slots
        ('m', 'v', 'v_max')
    """

    hyperparameters = {"beta_1": (check_beta, 0.9), "beta_2": (check_beta, 0.999),
                       "epsilon": (check_epsilon, 1e-8)}

    def __init__(self, amsgrad: bool = False) -> None:
        self.amsgrad = bool(amsgrad)
        self.slots = ("m", "v", "v_max") if amsgrad else ("m", "v")

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        b1, b2 = hp["beta_1"], hp["beta_2"]
        bc1, root_bc2 = 1 - b1**t, sqrt(1 - b2**t)
        return {"b1": b1, "a1": 1 - b1, "b2": b2, "a2": 1 - b2,
                "eps": hp["epsilon"] * root_bc2, "scale": root_bc2 / bc1}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        m, v = state.slots["m"], state.slots["v"]
        u = state.free_buffer(d)
        np.multiply(d, fit(_times(s, c["a1"])), out=u)
        np.multiply(m, fit(c["b1"]), out=m)
        np.add(m, u, out=m)
        np.multiply(d, d, out=u)
        np.multiply(u, fit(_times(_squared(s), c["a2"])), out=u)
        np.multiply(v, fit(c["b2"]), out=v)
        np.add(v, u, out=v)
        if self.amsgrad:
            v = np.maximum(state.slots["v_max"], v, out=state.slots["v_max"])
        np.sqrt(v, out=u)
        np.add(u, fit(c["eps"]), out=u)
        np.divide(m, u, out=u)
        return u, c["scale"]

    def __repr__(self) -> str:
        return f"ScaleByAdam(amsgrad={self.amsgrad})"


class ScaleByRms(Transform):
    """RMSprop's direction: the gradient over the root of its running mean square.

        v = rho v + (1 - rho) g^2;   d = g / (sqrt(v) + eps)

    Example:
        >>> ScaleByRms().slots
        ('v',)
    """

    slots = ("v",)
    hyperparameters = {"rho": (check_beta, 0.9), "epsilon": (check_epsilon, 1e-8)}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        return {"rho": hp["rho"], "a": 1 - hp["rho"], "eps": hp["epsilon"]}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        v = state.slots["v"]
        u = state.free_buffer(d)
        np.multiply(d, d, out=u)
        np.multiply(u, fit(_times(_squared(s), c["a"])), out=u)
        np.multiply(v, fit(c["rho"]), out=v)
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
        b = state.slots["momentum"]
        mu = fit(c["mu"])
        np.multiply(b, mu, out=b)
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
    """Decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW): `w *= 1 - lr * wd`.

    Shrinks the weights directly, independent of the direction (which passes through); put it
    last in a chain, after every link that reads the weights' gradient.

    Example:
        >>> DecoupledWeightDecay().hyperparameters["weight_decay"][1]
        0.01
    """

    hyperparameters = {"weight_decay": (check_rate, 0.01)}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        return {"keep": 1 - hp["learning_rate"] * hp["weight_decay"]}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        w = np.asarray(state.var)  # the live array: the caller's assign_sub follows
        np.multiply(w, fit(c["keep"]), out=w)
        return d, s


class ScaleByAdagrad(Transform):
    """Adagrad's direction: the gradient over the root of the sum of all its squares so far.

        s = s + g^2;   d = g / (sqrt(s) + eps)

    (PyTorch's form: the sum starts at 0 and epsilon is added outside the root.)

    Example:
        >>> ScaleByAdagrad().slots
        ('sum',)
    """

    slots = ("sum",)
    hyperparameters = {"epsilon": (check_epsilon, 1e-10)}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        return {"eps": hp["epsilon"]}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        total = state.slots["sum"]
        u = state.free_buffer(d)
        np.multiply(d, d, out=u)
        if s is not None:
            np.multiply(u, fit(_squared(s)), out=u)
        np.add(total, u, out=total)
        np.sqrt(total, out=u)
        np.add(u, fit(c["eps"]), out=u)
        np.divide(d, u, out=u)
        return u, s


class ScaleByNadam(Transform):
    """Nadam's direction (Dozat, 2016; optax's `nadam`): Adam with a Nesterov look-ahead on
    the first moment,

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        d = (b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    computed with the bias correction of `v` folded into the scale, as in `ScaleByAdam`.
    (Keras' and PyTorch's Nadam add a momentum-decay schedule on `b1`; this is the paper's
    form without it.)

    Example:
        >>> ScaleByNadam().slots
        ('m', 'v')
    """

    slots = ("m", "v")
    hyperparameters = {"beta_1": (check_beta, 0.9), "beta_2": (check_beta, 0.999),
                       "epsilon": (check_epsilon, 1e-8)}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        b1, b2 = hp["beta_1"], hp["beta_2"]
        root_bc2 = sqrt(1 - b2**t)
        return {"b1": b1, "a1": 1 - b1, "b2": b2, "a2": 1 - b2,
                "cm": b1 / (1 - b1 ** (t + 1)), "cg": (1 - b1) / (1 - b1**t),
                "eps": hp["epsilon"] * root_bc2, "scale": root_bc2}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        m, v = state.slots["m"], state.slots["v"]
        u = state.free_buffer(d)
        np.multiply(d, fit(_times(s, c["a1"])), out=u)
        np.multiply(m, fit(c["b1"]), out=m)
        np.add(m, u, out=m)
        np.multiply(d, d, out=u)
        np.multiply(u, fit(_times(_squared(s), c["a2"])), out=u)
        np.multiply(v, fit(c["b2"]), out=v)
        np.add(v, u, out=v)
        w = state.free_buffer(d, u)
        np.multiply(d, fit(_times(s, c["cg"])), out=u)
        np.multiply(m, fit(c["cm"]), out=w)
        np.add(u, w, out=u)
        np.sqrt(v, out=w)
        np.add(w, fit(c["eps"]), out=w)
        np.divide(u, w, out=u)
        return u, c["scale"]
