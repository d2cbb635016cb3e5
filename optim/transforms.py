"""Update transforms: the links an optimizer chains to turn gradients into weight updates.

In the spirit of optax (`scale_by_adam`, `trace`, `add_decayed_weights`), each link keeps its own
per-variable state in named slot arrays and maps a direction to a new one; an optimizer is a
chain of links followed by `w -= learning_rate * direction`. Unlike optax the links work in
place on preallocated buffers (no temporaries in the steady state), and a direction is a pair
`(d, s)` meaning `s * d`, where `s` is a float, a (K,) float64 array (one value per stacked
model) or None (1). Deferring the scalar keeps a gradient clipping factor or a bias correction
from costing a pass over the array: a link folds it into a coefficient it multiplies by anyway.

A link never writes into the incoming `d` (it may be the caller's gradient array) nor into the
weights, and it writes a slot's new value into `state.new_slot(name)`: the slot itself when the
optimizer has proved the step finite (`Transform.bound`), else a spare buffer that becomes the
slot only once the whole step is checked finite (so a refused step leaves everything as it was,
without copying anything).

Example (AdamW is Adam followed by one more link):
    >>> from optim.optimizer import Optimizer
    >>> opt = Optimizer(0.01, [ScaleByAdam(), DecoupledWeightDecay()], weight_decay=0.1)
    >>> opt.beta_1, opt.weight_decay
    (0.9, 0.1)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from optim.gradients import largest, limits
from optim.hyperparams import Check, check_beta, check_epsilon, check_rate, magnitude, sqrt

Direction = tuple[np.ndarray, Any]


class SlotBounds:
    """Upper bounds on the magnitudes of slots, carried from step to step by `Transform.bound`:
    `bounds` (slot name -> bound) and this step's proposals in `next_bounds`, for values of a
    dtype with `limits`. A `VariableState` is one, for one variable's slots; an update plan
    keeps one for a group of variables that share one flat array per slot.

    `bounds` is replaced, never changed in place, so that several states may share one dict
    (an update plan's group does) and a plan can tell by identity whether it changed.

    Example:
        >>> sb = SlotBounds(limits(np.dtype(np.float64)), {"m": 0.0})
        >>> sb.next_bounds["m"] = 2.0
        >>> sb.take_bounds()
        >>> 2.0 < sb.bounds["m"] < 2.000001, sb.next_bounds
        (True, {})
    """

    __slots__ = ("limits", "bounds", "next_bounds")

    def __init__(self, limits: Any, bounds: dict[str, float]) -> None:
        self.limits = limits
        self.bounds = bounds
        self.next_bounds: dict[str, float] = {}

    def take_bounds(self, keep: bool = False) -> None:
        """After a step computed in place: the proposed bounds, with room for the rounding of
        the operations that computed the slots, become the bounds; with `keep` (some rows kept
        their old values), only where they are larger."""
        old, next_bounds = self.bounds, self.next_bounds
        bounds = dict(old)
        _, _, grow, tiny = self.limits
        tiny *= 4
        for name, b in next_bounds.items():
            b = b * grow + tiny  # rounded as relative, or absolute below normal numbers
            bounds[name] = max(b, old[name]) if keep else b
        self.bounds = bounds
        next_bounds.clear()


class VariableState(SlotBounds):
    """What an optimizer keeps for one variable: its slot arrays and scratch buffers.

    Slots (`m`, `v`, ...) are the saved state; scratch buffers are reused every step and never
    saved. Links write a slot's new value into `new_slot(name)`: the slot itself, or, while
    `aside` is set (a step that must be checked before it counts), a spare buffer that `commit`
    makes the slot (the old array becomes next step's spare) and `discard` forgets. All have the
    variable's shape and dtype.

    `bounds` holds an upper bound on each slot's largest magnitude, which `Transform.bound`
    carries from step to step (its proposals for this step wait in `next_bounds`), so that
    proving a step finite never reads the slots (see `SlotBounds`). Like `bounds`, `slots` is
    replaced by a new dict whenever one of its arrays is, never changed in place: an update
    plan that keeps the slots as views into flat arrays tells by identity that they moved.

    Example:
        >>> import tape
        >>> st = VariableState(tape.Variable([1.0, 2.0]), ("m",))
        >>> st.slots["m"], st.free_buffer().shape
        (array([0., 0.]), (2,))
        >>> st.aside = True
        >>> st.new_slot("m")[:] = 5.0
        >>> st.slots["m"]
        array([0., 0.])
        >>> st.commit()
        >>> st.slots["m"], st.bounds["m"] >= 5.0
        (array([5., 5.]), True)
    """

    __slots__ = ("var", "slots", "aside", "pending", "_scratch", "_spare")

    def __init__(self, var: Any, slot_names: tuple[str, ...]) -> None:
        super().__init__(limits(var.dtype), dict.fromkeys(slot_names, 0.0))
        self.var = var
        self.slots = {name: np.zeros(var.shape, var.dtype) for name in slot_names}
        self.aside = False
        self.pending: dict[str, np.ndarray] = {}  # slot name -> its new value (while aside)
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
        """The buffer that receives slot `name`'s new value this step: the slot (updated in
        place), or while `aside`, a spare buffer (uncommitted)."""
        if not self.aside:
            return self.slots[name]
        b = self._spare.get(name)
        if b is None:
            b = self._spare[name] = np.empty(self.var.shape, self.var.dtype)
        self.pending[name] = b
        return b

    def commit(self, held: np.ndarray | None = None) -> None:
        """Make this step's new slot values the slots; the rows `held` (stacked members sitting
        this step out, a boolean mask of the leading axis) keep their old values."""
        slots, spare = dict(self.slots), self._spare  # a new dict: see the class
        for name, new in self.pending.items():
            old = slots[name]
            if held is not None:
                new[held] = old[held]
            slots[name], spare[name] = new, old
        self.load(slots)

    def discard(self) -> None:
        """Forget this step's new slot values and bounds (the slots are untouched)."""
        self.pending.clear()
        self.next_bounds.clear()

    def load(self, slots: dict[str, np.ndarray]) -> None:
        """Take `slots` (arrays of the variable's shape and dtype) as the slots, with bounds
        measured from them; forget anything pending."""
        self.slots = dict(slots)
        slack, tiny = self.limits.slack, self.limits.tiny  # `largest` rounds in the dtype
        self.bounds = {name: largest(arr) * slack + tiny for name, arr in self.slots.items()}
        self.discard()

    def adopt(self, slots: dict[str, np.ndarray]) -> None:
        """Move the slots into `slots`' arrays (of the variable's shape and dtype; e.g. views
        into an update plan's flat arrays): their values are copied there and they become the
        slots, in a new dict. Between steps only; the bounds stay, the values being the same.
        A displaced array becomes the spare buffer if the new array was the spare (a spare
        must never be a slot: the slot is read while the spare is written)."""
        old, spare = self.slots, self._spare
        for name, new in slots.items():
            arr = old[name]
            if arr is not new:
                np.copyto(new, arr)
                if spare.get(name) is new:
                    spare[name] = arr
        self.slots = {**old, **slots}


class Transform(ABC):
    """Base link: names its slots and hyperparameters; subclasses define the maths.

    `hyperparameters` maps each name to `(check, default)`. `coefficients(hp, t)` turns the
    current hyperparameter values (`hp`, the learning rate already evaluated) and the 1-based
    step `t` into per-step constants, once per step for all variables. `update(d, s, c, fit,
    state)` transforms one variable's direction; `fit` shapes a constant against the variable.
    `decay(c)` is the rate of a decoupled weight decay the link adds to the step (None: none).

    A step is all or nothing: none may leave a non-finite value in the weights or the slots.
    `bound(b, s, c, state, limit)` proves it cheaply, before anything is computed and without
    reading an array: given `b`, an upper bound on the magnitude of the incoming direction `d`,
    and its scale `s`, it returns `(b, s)` for the outgoing direction, where `s` is what
    `update` will return and `b` is inf unless every value `update` computes is finite and its
    slots stay below `limit` in magnitude; and it proposes the slots' new bounds in
    `state.next_bounds`, from `state.bounds`. The default returns inf. Without a proof the
    optimizer computes the step aside and checks the weights and the slots named by
    `checked_slots` (None: every slot); a link may leave out a slot whose non-finite values
    always show in its direction (Adam's `m`, over a finite denominator), but not `v`, which
    only divides.

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

    def bound(self, b: float, s: Any, c: dict[str, Any], state: VariableState,
              limit: float) -> tuple[float, Any]:
        """A bound on the outgoing direction's magnitude, or inf, and its scale (see the class)."""
        return math.inf, s

    @abstractmethod
    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        """The new direction (and scale) from the incoming direction `d` and scale `s`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _times(s: Any, x: Any) -> Any:
    """`s * x`, where None stands for 1 (so nothing is computed in the common case)."""
    return x if s is None else s * x


def _lowest(eps: Any, state: VariableState) -> float:
    """A lower bound on `eps` as the variable's dtype rounds it (its smallest member, which may
    underflow to 0); 0.0 when that may be 0, or when the cast may overflow."""
    e = float(np.min(eps)) if isinstance(eps, np.ndarray) else eps
    limit, _, slack, tiny = state.limits
    low = e / slack - tiny
    return low if low > 0.0 and e < limit else 0.0


def _moments(d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
             state: VariableState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adam's moment updates `m = b1 m + a1 s d` and `v = b2 v + (r2 s d)^2` into this step's
    slot buffers; returns `(m, v, u)`, `u` a scratch buffer free for the caller."""
    m, v = state.new_slot("m"), state.new_slot("v")
    u = state.free_buffer(d)
    np.multiply(d, fit(_times(s, c["a1"])), out=u)
    np.multiply(state.slots["m"], fit(c["b1"]), out=m)
    np.add(m, u, out=m)
    np.multiply(d, fit(_times(s, c["r2"])), out=u)
    np.square(u, out=u)
    np.multiply(state.slots["v"], fit(c["b2"]), out=v)
    np.add(v, u, out=v)
    return m, v, u


def adam_coefficients(b1: float, b2: float, eps: float, t: int
                      ) -> tuple[float, float, float, float]:
    """`ScaleByAdam`'s coefficients of step `t` for float hyperparameters, as Python floats
    (IEEE doubles, so the same numbers as NumPy's float64): `(a1, r2, eps_t, scale)` for
    `m = b1 m + a1 g`, `v = b2 v + (r2 g)^2`, `d = scale * m / (sqrt(v) + eps_t)`.

    Example:
        >>> a1, r2, eps_t, scale = adam_coefficients(0.9, 0.999, 1e-8, 1)
        >>> round(a1, 12), round(scale, 6)
        (0.1, 0.316228)
    """
    root_bc2 = math.sqrt(1 - b2**t)
    return 1 - b1, math.sqrt(1 - b2), eps * root_bc2, root_bc2 / (1 - b1**t)


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
        root_bc2: Any
        r2: Any
        eps = hp["epsilon"]
        if b1.__class__ is float and b2.__class__ is float and eps.__class__ is float:
            a1, r2, eps, scale = adam_coefficients(b1, b2, eps, t)
            tops = (b1, a1, b2, r2)  # for `bound`: one magnitude per coefficient
        else:
            bc1, root_bc2 = 1 - b1**t, sqrt(1 - b2**t)
            a1, r2, eps, scale = 1 - b1, sqrt(1 - b2), eps * root_bc2, root_bc2 / bc1
            tops = (magnitude(b1), magnitude(a1), magnitude(b2), magnitude(r2))
        return {"b1": b1, "a1": a1, "b2": b2, "r2": r2, "eps": eps, "scale": scale,
                "tops": tops}

    def bound(self, b: float, s: Any, c: dict[str, Any], state: VariableState,
              limit: float) -> tuple[float, Any]:
        # Every coefficient is rounded up as the dtype may round it (relative, or absolute
        # below its smallest normal number); see `Limits`.
        _, _, slack, tiny = state.limits
        b1, a1, b2, r2 = c["tops"]
        sm = 1.0 if s is None else magnitude(s)
        old, new = state.bounds, state.next_bounds
        rb = (sm * r2 * slack + tiny) * b
        v = new["v"] = (b2 * slack + tiny) * old["v"] + rb * rb
        if self.amsgrad:
            new["v_max"] = max(old["v_max"], v)
        m = new["m"] = (b1 * slack + tiny) * old["m"] + (sm * a1 * slack + tiny) * b
        eps = _lowest(c["eps"], state)
        if v < limit and m < limit and eps > 0.0:
            return m / eps, c["scale"]  # |m| / (sqrt(v) + eps)
        return math.inf, c["scale"]

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        m, v, u = _moments(d, s, c, fit, state)
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

    def bound(self, b: float, s: Any, c: dict[str, Any], state: VariableState,
              limit: float) -> tuple[float, Any]:
        slack, tiny = state.limits.slack, state.limits.tiny  # coefficients rounded up
        sm = 1.0 if s is None else magnitude(s)
        rb = (sm * magnitude(c["r"]) * slack + tiny) * b
        v = state.next_bounds["v"] = ((magnitude(c["rho"]) * slack + tiny) * state.bounds["v"]
                                      + rb * rb)
        eps = _lowest(c["eps"], state)
        return (b / eps if v < limit and eps > 0.0 else math.inf), s

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

    def bound(self, b: float, s: Any, c: dict[str, Any], state: VariableState,
              limit: float) -> tuple[float, Any]:
        if c["off"]:
            return b, s
        slack, tiny = state.limits.slack, state.limits.tiny  # coefficients rounded up
        mu = magnitude(c["mu"]) * slack + tiny
        sb = b if s is None else (magnitude(s) * slack + tiny) * b
        momentum = state.next_bounds["momentum"] = mu * state.bounds["momentum"] + sb
        if not momentum < limit:
            return math.inf, None
        return (sb + mu * momentum if self.nesterov else momentum), None

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

    def bound(self, b: float, s: Any, c: dict[str, Any], state: VariableState,
              limit: float) -> tuple[float, Any]:
        return b, s  # the decay's own term is the optimizer's to bound

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
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
        total = state.new_slot("sum")
        u = state.free_buffer(d)
        np.multiply(d, fit(_times(s, 1.0)), out=u)
        np.square(u, out=u)
        np.add(state.slots["sum"], u, out=total)
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
    checked_slots = ("v",)  # m shows in the direction, as in ScaleByAdam
    hyperparameters = {"beta_1": (check_beta, 0.9), "beta_2": (check_beta, 0.999),
                       "epsilon": (check_epsilon, 1e-8)}

    def coefficients(self, hp: dict[str, Any], t: int) -> dict[str, Any]:
        b1, b2 = hp["beta_1"], hp["beta_2"]
        root_bc2 = sqrt(1 - b2**t)
        return {"b1": b1, "a1": 1 - b1, "b2": b2, "r2": sqrt(1 - b2),
                "cm": b1 / (1 - b1 ** (t + 1)), "cg": (1 - b1) / (1 - b1**t),
                "eps": hp["epsilon"] * root_bc2, "scale": root_bc2}

    def update(self, d: np.ndarray, s: Any, c: dict[str, Any], fit: Callable[[Any], Any],
               state: VariableState) -> Direction:
        m, v, u = _moments(d, s, c, fit, state)
        w = state.free_buffer(d, u)
        np.multiply(d, fit(_times(s, c["cg"])), out=u)
        np.multiply(m, fit(c["cm"]), out=w)
        np.add(u, w, out=u)
        np.sqrt(v, out=w)
        np.add(w, fit(c["eps"]), out=w)
        np.divide(u, w, out=u)
        return u, c["scale"]
