"""`Optimizer.update_plan`: `apply_gradients` specialised to one list of variables.

`tape.function` traces a step once and replays it, and eager `apply_gradients` steps the same
variables again and again; an optimizer's step must still read its hyperparameters, schedule
and `iterations` on every call, and keep its all-or-nothing finite check. A plan does exactly
that with the least Python: the checks of the pairs, the variables' states and the layout of
buffers are settled when the plan is made; each call computes the coefficients from the current
hyperparameters, the gradients' bounds and the finiteness proof, then runs the same
per-element operations as `apply_gradients` (so the bits are the same: each element goes
through the same correctly rounded operations with the same coefficients).

Plain Adam (no clipping, decay, AMSGrad or stacked members) runs multi-tensor: the variables
of one dtype form a group whose slots `m` and `v` are views into one flat array per slot (the
optimizer's `VariableState.slots` are those views), with one flat scratch array and one flat
gradient buffer (`UpdatePlan.gradient_views`). A step copies the gradients into the buffer
(unless they are its views already), bounds them all with one `largest`, proves the group's
step finite from bounds shared by the group, runs Adam's eleven ufunc calls over the flat
arrays and subtracts each variable's part of the result from its weights. If something
replaced a slot array since (`load_state_dict`, a step computed aside, `select_members`), the
next step copies it back into the flat arrays first (`VariableState.adopt`).

Plain Adam over one 0-d float64 variable (a scalar model, like the seed example) computes on
Python floats (IEEE doubles: the same bits as NumPy's float64 for + - * / and sqrt) and proves
the step finite from the values themselves.

Anything off these paths (clipping, stacked members, a gradient that is not finite, a step not
proved finite, a variable the optimizer does not know yet) is handed to `apply_gradients`' own
code, which then behaves exactly as eager.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optim.gradients import gradient_array, largest, limits
from optim.transforms import ScaleByAdam, SlotBounds, VariableState, adam_coefficients
from tape import Variable, kernel
from tape._state import STATE

_F64 = np.dtype(np.float64)
_INF = math.inf
_COPY_BELOW = 2**15  # a group of fewer elements copies its gradients into its flat buffer


class _Group:
    """A plan's variables of one dtype for multi-tensor Adam: flat `m`, `v`, scratch `u` and
    gradient `g` arrays, each variable's part a view of its shape (its `offset`s in plan
    order), and `proof`, the bounds on `m` and `v` that the group's states share."""

    __slots__ = ("positions", "variables", "m", "v", "u", "g", "m_views", "v_views",
                 "u_views", "g_views", "slot_dicts", "proof", "direct")

    def __init__(self, dtype: np.dtype, positions: list[int], variables: list[Variable],
                 adam: bool) -> None:
        self.positions = positions  # in the plan's variable list
        self.variables = variables
        total = sum(var.size for var in variables)
        self.g = np.zeros(total, dtype)
        n = total if adam else 0  # only the gradient buffer otherwise
        self.m, self.v, self.u = np.zeros(n, dtype), np.zeros(n, dtype), np.empty(n, dtype)
        offsets = np.cumsum([0] + [var.size for var in variables]).tolist()
        parts = list(zip(variables, offsets, offsets[1:]))
        self.m_views, self.v_views, self.u_views, self.g_views = (
            [flat[a:b].reshape(var.shape) for var, a, b in parts] if flat.size == total else []
            for flat in (self.m, self.v, self.u, self.g))
        self.slot_dicts: list[Any] = [None] * len(variables)  # the states' slots, when adopted
        self.proof = SlotBounds(limits(dtype), {"m": 0.0, "v": 0.0})
        self.direct = dtype.char != "e"  # float16 writes refuse overflow: through assign_sub

    def sync(self, states: list[VariableState]) -> None:
        """Make the states' slots the flat arrays' views again (copying the values) where
        something replaced them, and their bounds the group's (their maximum) where they
        changed: both checked by identity."""
        proof, slot_dicts = self.proof, self.slot_dicts
        shared, fresh = proof.bounds, False
        members = [states[i] for i in self.positions]
        for k, st in enumerate(members):
            if st.slots is not slot_dicts[k]:
                st.adopt({"m": self.m_views[k], "v": self.v_views[k]})
                slot_dicts[k] = st.slots
            if st.bounds is not shared:
                fresh = True
        if fresh:  # the maximum bounds every member: a valid bound for each
            proof.bounds = shared = {name: max(st.bounds[name] for st in members)
                                     for name in ("m", "v")}
            for st in members:
                st.bounds = shared

    def load(self, arrays: list[np.ndarray]) -> tuple[float, Any]:
        """Take the group's gradients from `arrays` (checked, in plan order): a bound on their
        magnitudes (inf or NaN if one is not finite) and what `_adam` reads them as. A small
        group copies them into its flat buffer (one call per variable, then flat calls); a
        large one reads each where it is (two calls per variable, saving a pass), unless they
        are the buffer's views already."""
        gs = [arrays[i] for i in self.positions]
        views, flat = self.g_views, self.g
        if all(g is view for g, view in zip(gs, views)):
            return largest(flat), flat
        # (Copying could overwrite a gradient that is another part of the buffer.)
        if flat.size < _COPY_BELOW and not any(g.base is flat and g is not view
                                               for g, view in zip(gs, views)):
            for g, view in zip(gs, views, strict=True):
                if g is not view:
                    np.copyto(view, g)
            return largest(flat), flat
        bounds = [largest(g) for g in gs]
        total = sum(bounds)  # NaN or inf if a bound is
        return (max(bounds) if total < _INF else total), list(zip(gs, self.u_views))

    def adam(self, g: Any, c: dict[str, Any], rate: float, states: list[VariableState]
             ) -> None:
        """`_adam`'s calls over the flat arrays, then each weight minus its part of `u`."""
        _adam(g, self.m, self.v, self.u, c, rate)
        if self.direct:  # `Variable.assign_sub` without its checks (same dtype and shape)
            for var, u in zip(self.variables, self.u_views, strict=True):
                w = var._value
                np.subtract(w, u, out=w)
                var._version += 1
        else:
            for var, u in zip(self.variables, self.u_views, strict=True):
                var.assign_sub(u)
        proof = self.proof
        proof.take_bounds()
        shared = proof.bounds
        for i in self.positions:
            states[i].bounds = shared


def _adam(g: Any, m: np.ndarray, v: np.ndarray, u: np.ndarray, c: dict[str, Any],
          rate: Any) -> None:
    """ScaleByAdam's update and the optimizer's `lr * scale * d` into `u`, in place, for steps
    with no clipping factor and no stacked members: `_moments`, `ScaleByAdam.update` and
    `Optimizer._delta` with their identity shapings left out (the same calls). `g` is the
    gradient as an array like `u`, or (gradient, part of `u`) pairs that cover `u`."""
    _scale_into(g, c["a1"], u)
    np.multiply(m, c["b1"], out=m)
    np.add(m, u, out=m)
    _scale_into(g, c["r2"], u)
    np.square(u, out=u)
    np.multiply(v, c["b2"], out=v)
    np.add(v, u, out=v)
    np.sqrt(v, out=u)
    np.add(u, c["eps"], out=u)
    np.divide(m, u, out=u)
    np.multiply(u, rate, out=u)


def _scale_into(g: Any, a: Any, u: np.ndarray) -> None:
    """`u = g * a`, `g` as `_adam` takes it."""
    if g.__class__ is np.ndarray:
        np.multiply(g, a, out=u)
    else:
        for part, out in g:
            np.multiply(part, a, out=out)


class UpdatePlan:
    """`plan(grads)` is `optimizer.apply_gradients(zip(grads, variables))`, bit for bit.

    `plan.fast(grads)` is the step on the plan's own paths: its result, or None (nothing
    changed) when only `apply_gradients`' own code can take it (`apply_gradients` then runs
    that itself, so that its warnings point at its caller). Invalid gradients raise as there.

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
        self._n = n = len(self.variables)
        self.no_clip: list[Any] = [None] * n
        self.same = [lambda x: x] * n  # `fit_to(var, None)`: unshaped
        links = optimizer._transforms
        adam = (len(links) == 1 and type(links[0]) is ScaleByAdam and not links[0].amsgrad)
        floats = all(isinstance(v, Variable) and v.dtype.kind == "f" for v in self.variables)
        self._groups: list[_Group] = []
        self._g_views: list[np.ndarray] = []
        if floats:
            by_dtype: dict[np.dtype, list[int]] = {}
            for i, var in enumerate(self.variables):
                by_dtype.setdefault(var.dtype, []).append(i)
            self._groups = [_Group(dt, idx, [self.variables[i] for i in idx], adam)
                            for dt, idx in by_dtype.items()]
            views: list[Any] = [None] * n
            for group in self._groups:
                for i, view in zip(group.positions, group.g_views, strict=True):
                    views[i] = view
            self._g_views = views
        # The plan's own paths: distinct variables (else apply_gradients refuses), some.
        self._own = floats and n > 0 and len({id(v) for v in self.variables}) == n
        self._flat = adam and self._own and all(v.size for v in self.variables)
        self._scalar = (self._flat and n == 1 and self.variables[0].shape == ()
                        and self.variables[0].dtype == _F64)
        self._seen: Any = None  # the optimizer's list of states that `_cached` was read from
        self._cached: list[VariableState] = []
        self.fast: Callable[[Sequence[Any]], Any] = (self._fast_scalar if self._scalar
                                                     else self._fast_arrays)

    def gradient_views(self) -> list[np.ndarray]:
        """Per-variable views (in the plan's order, of the variables' shapes and dtypes) of the
        plan's flat gradient buffer: a caller that writes the gradients there and passes these
        views to the plan saves the plan copying them in. The buffer is the plan's; its
        contents matter only for the call they are passed to.

        Example:
            >>> import numpy as np, tape
            >>> from optim import Adam
            >>> w = tape.Variable(np.ones((2, 2), np.float32))
            >>> plan = Adam(0.1).update_plan([w])
            >>> (g,) = plan.gradient_views()
            >>> g[...] = 0.5
            >>> plan([g]), w.numpy()[0]
            (True, array([0.9, 0.9], dtype=float32))
        """
        if not self._groups:
            raise TypeError(f"gradient_views: the plan's variables must all be floating-point "
                            f"tape.Variables; got {[type(v).__name__ for v in self.variables]}")
        return list(self._g_views)

    def __call__(self, grads: Sequence[Any]) -> Any:
        if STATE.tracer is not None:  # called inside a traced function: one kernel
            return kernel(self.optimizer._run_plan)(self, list(grads))
        done = self.fast(grads)
        return self._general(grads) if done is None else done

    def _fast_arrays(self, grads: Sequence[Any]) -> Any:
        """`fast` for every plan but one over a single 0-d float64 variable (see the class)."""
        opt = self.optimizer
        if not opt._simple or not self._own or len(grads) != self._n:
            return None
        states = self._cached if opt._states is self._seen else self._look_up()
        if states is None:
            return None
        if self._flat:
            return self._flat_step(grads, states)
        arrays = [gradient_array(g, v) for g, v in zip(grads, self.variables, strict=True)]
        hp = self._hyperparameters()  # after the gradients' checks, as in apply_gradients
        if hp is None:
            return None
        lr = hp["learning_rate"]
        bounds = [largest(g) for g in arrays]
        if not sum(bounds) < math.inf:
            return None  # refused there, with its message
        t = opt._iterations + 1
        links = [(link, link.coefficients(hp, t)) for link in opt._transforms]
        decays = [lam for link, c in links if (lam := link.decay(c)) is not None]
        step = (lr, links, decays)
        if not opt._finite_for_sure(bounds, self.no_clip, states, step):
            return None  # computed aside and checked there
        opt._step_in_place(arrays, self.no_clip, self.same, states, step, None)
        object.__setattr__(opt, "_iterations", t)
        return True

    def _hyperparameters(self) -> dict[str, Any] | None:
        """The hyperparameters with a schedule's learning rate evaluated; None if it gave K
        rates (stacked members: `apply_gradients`' own code)."""
        hp = self.optimizer._hyper
        if callable(hp["learning_rate"]):
            lr = self.optimizer.current_learning_rate
            if isinstance(lr, np.ndarray):
                return None
            hp = {**hp, "learning_rate": lr}
        return hp

    def _flat_step(self, grads: Sequence[Any], states: list[VariableState]) -> Any:
        """Multi-tensor Adam over each dtype group's flat arrays (see the module)."""
        opt = self.optimizer
        arrays = []
        for g, view, var in zip(grads, self._g_views, self.variables, strict=True):
            if g is not view and (g.__class__ is not np.ndarray or g.shape != view.shape
                                  or g.dtype != view.dtype):
                g = gradient_array(g, var)
            arrays.append(g)
        hp = self._hyperparameters()  # after the gradients' checks, as in apply_gradients
        if hp is None:
            return None
        lr = hp["learning_rate"]
        groups = self._groups
        loaded = [group.load(arrays) for group in groups]
        bounds = [b for b, _ in loaded]
        if not sum(bounds) < _INF:
            return None  # refused there, with its message
        for group in groups:
            group.sync(states)
        link = opt._transforms[0]
        t = opt._iterations + 1
        c = link.coefficients(hp, t)
        proofs = [group.proof for group in groups]
        if not opt._finite_for_sure(bounds, [None] * len(groups), proofs, (lr, [(link, c)], [])):
            return None  # computed aside and checked there
        rate = lr * c["scale"]
        for group, (_, reads) in zip(groups, loaded, strict=True):
            group.adam(reads, c, rate, states)
        object.__setattr__(opt, "_iterations", t)
        return True

    def _fast_scalar(self, grads: Sequence[Any]) -> Any:
        """`fast` for plain Adam over one 0-d float64 variable, on Python floats: each value
        through the same correctly rounded operations as `_adam` and `assign_sub`; the step is
        taken only if the new slots and weight are finite (else None: `apply_gradients`
        refuses it)."""
        opt = self.optimizer
        try:
            (g,) = grads
        except ValueError:
            return None  # apply_gradients raises
        if not opt._simple:  # as in `_fast_arrays`
            return None
        states = self._cached if opt._states is self._seen else self._look_up()
        if states is None:
            return None
        hp = opt._hyper
        lr = hp["learning_rate"]
        if lr.__class__ is not float:  # a schedule (`_simple`: not K rates)
            try:
                lr = opt.current_learning_rate
            except (TypeError, ValueError):
                self._check_gradients(grads)  # apply_gradients checks those first
                raise
            if lr.__class__ is not float:  # K rates
                return None
        st = states[0]
        if g.__class__ is not float:
            cls = g.__class__
            if cls is not np.float64 and not (cls is np.ndarray and g.dtype is _F64
                                              and not g.shape):
                g = gradient_array(g, st.var)
            g = float(g)
        t = opt._iterations + 1
        b1, b2 = hp["beta_1"], hp["beta_2"]
        a1, r2, eps, scale = adam_coefficients(b1, b2, hp["epsilon"], t)
        slots, var = st.slots, st.var
        m_arr, v_arr, w_arr = slots["m"], slots["v"], var._value
        m = float(m_arr) * b1 + g * a1
        u = g * r2
        v = float(v_arr) * b2 + u * u
        den = math.sqrt(v) + eps
        if not (v < _INF and den > 0.0):  # NaN or inf, or 0 / 0
            return self._check_gradients(grads)
        w = float(w_arr) - m / den * (lr * scale)
        if not w - w == 0.0:  # NaN or inf (and so, too, if m was)
            return self._check_gradients(grads)
        m_arr[()] = m
        v_arr[()] = v
        w_arr[()] = w
        var._version += 1  # `Variable.assign_sub`'s count of writes
        st.bounds = {"m": abs(m), "v": v}  # the slots' magnitudes themselves
        opt.__dict__["_iterations"] = t  # not a hyperparameter: no `__setattr__`
        return True

    def _check_gradients(self, grads: Sequence[Any]) -> None:
        """Raise `apply_gradients`' error for the first gradient that is invalid, if any."""
        for g, var in zip(grads, self.variables, strict=True):
            gradient_array(g, var)

    def _look_up(self) -> list[VariableState] | None:
        """The optimizer's states of the variables, or None if one is not known yet; kept
        until the optimizer's list of states is replaced (`load_state_dict`,
        `select_members`): states are only ever appended to it, or the ones just appended
        removed again."""
        opt = self.optimizer
        positions, all_states = opt._positions, opt._states
        out = []
        for var in self.variables:
            i = positions.get(id(var))
            if i is None:
                return None
            out.append(all_states[i])
        self._seen, self._cached = all_states, out
        return out

    def _general(self, grads: Sequence[Any]) -> Any:
        return self.optimizer._apply(zip(grads, self.variables, strict=True), None)
