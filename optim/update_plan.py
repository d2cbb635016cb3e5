"""`Optimizer.update_plan`: `apply_gradients` specialised to one list of variables.

`tape.function` traces a step once and replays it, and eager `apply_gradients` steps the same
variables again and again; an optimizer's step must still read its hyperparameters, schedule
and `iterations` on every call, and keep its all-or-nothing finite check. A plan does exactly
that with the least Python: the checks of the pairs, the variables' states and the layout of
buffers are settled when the plan is made; each call computes the coefficients from the current
hyperparameters, the gradients' bounds and the finiteness proof, then runs the same
per-element operations as `apply_gradients` (so the bits are the same: each element goes
through the same correctly rounded operations with the same coefficients).

Plain Adam (no clipping, decay or AMSGrad) runs multi-tensor: the variables
of one dtype form a group whose slots `m` and `v` are views into one flat array per slot (the
optimizer's `VariableState.slots` are those views), with one flat scratch array and one flat
gradient buffer (`UpdatePlan.gradient_views`). A step copies the gradients into the buffer
(unless they are its views already), bounds them all with one `largest`, proves the group's
step finite from bounds shared by the group, runs Adam's eleven ufunc calls over the flat
arrays and subtracts each variable's part of the result from its weights. If something
replaced a slot array since (`load_state_dict`, a step computed aside, `select_members`), the
next step copies it back into the flat arrays first (`VariableState.adopt`).

Stacked members (K models along every variable's leading axis: `Optimizer._k` set, or
`per_member_nonfinite`) take the same path through `UpdatePlan.fast_members` when every member
steps (no `active` mask, or one that is all True) and every gradient is finite: the flat arrays
are member-major, (K, P), so that a variable's part is one strided view and the (K,)
hyperparameters broadcast as (K, 1) arrays of the dtype, exactly as `fit_to` shapes them for one
variable. The step is proved finite from the largest member's bounds; a member left out, a
gradient that is not finite or a step not proved finite goes to the per-member code.

Plain Adam over one 0-d float64 variable (a scalar model, like the seed example) computes on
Python floats (IEEE doubles: the same bits as NumPy's float64 for + - * / and sqrt) and proves
the step finite from the values themselves.

Anything off these paths (clipping, a member left out, a gradient that is not finite, a step
not proved finite, a variable the optimizer does not know yet) is handed to `apply_gradients`' own
code, which then behaves exactly as eager.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optim.gradients import gradient_array, largest, limits
from optim.hyperparams import population_size
from optim.transforms import ScaleByAdam, SlotBounds, VariableState, adam_coefficients
from tape import Variable, kernel
from tape._state import STATE

_F64 = np.dtype(np.float64)
_INF = math.inf
_ADAM_COEFFICIENTS = ("a1", "b1", "r2", "b2", "eps")  # what `_adam` reads of `c`
_COPY_BELOW = 2**15  # a group of fewer elements copies its gradients into its flat buffer


class _Group:
    """A plan's variables of one dtype for multi-tensor Adam: flat `m`, `v`, scratch `u` and
    gradient `g` arrays, each variable's part a view of its shape (its `offset`s in plan
    order), and `proof`, the bounds on `m` and `v` that the group's states share.

    With `k` (stacked members: every variable's leading axis has length K) the flat arrays are
    member-major, of shape (K, P) with P the group's elements per member: a variable's part is
    the columns `[a, b)` reshaped to its shape (one strided view), and per-member coefficients
    broadcast against every part as (K, 1) arrays."""

    __slots__ = ("positions", "variables", "k", "m", "v", "u", "g", "m_views", "v_views",
                 "u_views", "g_views", "u_columns", "slot_dicts", "proof")

    def __init__(self, dtype: np.dtype, positions: list[int], variables: list[Variable],
                 adam: bool, k: int | None = None) -> None:
        self.positions = positions  # in the plan's variable list
        self.variables = variables
        self.k = k
        rows = 1 if k is None else k
        total = sum(var.size // rows for var in variables)  # per member, if stacked
        shape: tuple[int, ...] = (total,) if k is None else (k, total)
        self.g = np.zeros(shape, dtype)
        if not adam:  # only the gradient buffer
            shape = (0,)
        self.m, self.v, self.u = np.zeros(shape, dtype), np.zeros(shape, dtype), np.empty(shape,
                                                                                           dtype)
        offsets = np.cumsum([0] + [var.size // rows for var in variables]).tolist()
        parts = list(zip(variables, offsets, offsets[1:]))
        self.m_views, self.v_views, self.u_views, self.g_views = (
            [_part(flat, k, a, b).reshape(var.shape) for var, a, b in parts]
            if flat.size == self.g.size else [] for flat in (self.m, self.v, self.u, self.g))
        # What a gradient read where it is pairs with: its part of `u`, in 2-D when stacked
        # (the gradient read as (K, elements per member)) so that (K, 1) coefficients broadcast.
        self.u_columns = (self.u_views if k is None or self.u.size != self.g.size
                          else [self.u[:, a:b] for _, a, b in parts])
        self.slot_dicts: list[Any] = [None] * len(variables)  # the states' slots, when adopted
        self.proof = SlotBounds(limits(dtype), {"m": 0.0, "v": 0.0})

    def fit(self, x: Any) -> Any:
        """`fit_to(var, K)` for the member-major flat arrays: a (K,) array as a (K, 1) array
        of the group's dtype; a float as it is."""
        if isinstance(x, np.ndarray):
            return x.astype(self.g.dtype, copy=False).reshape(-1, 1)
        return x

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
        k = self.k
        if k is not None:
            gs = [g.reshape(k, -1) for g in gs]
        return (max(bounds) if total < _INF else total), list(zip(gs, self.u_columns))

    def adam(self, g: Any, c: dict[str, Any], rate: Any, states: list[VariableState]
             ) -> None:
        """`_adam`'s calls over the flat arrays, then each weight minus its part of `u`."""
        if self.k is not None:  # (K,) coefficients as `fit_to` shapes them, as (K, 1)
            c = {name: self.fit(c[name]) for name in _ADAM_COEFFICIENTS}
            rate = self.fit(rate)
        _adam(g, self.m, self.v, self.u, c, rate)
        for var, u in zip(self.variables, self.u_views, strict=True):
            var.assign_sub(u)
        proof = self.proof
        proof.take_bounds()
        shared = proof.bounds
        for i in self.positions:
            states[i].bounds = shared


def _part(flat: np.ndarray, k: int | None, a: int, b: int) -> np.ndarray:
    """Elements `[a, b)` of a flat array, or of each row of a member-major (K, P) one."""
    return flat[a:b] if k is None else flat[:, a:b]


def _adam(g: Any, m: np.ndarray, v: np.ndarray, u: np.ndarray, c: dict[str, Any],
          rate: Any) -> None:
    """ScaleByAdam's update and the optimizer's `lr * scale * d` into `u`, in place, for steps
    with no clipping factor: `_moments`, `ScaleByAdam.update` and `Optimizer._delta` (the same
    calls), the coefficients in `c` and `rate` shaped for the flat arrays as `fit_to` shapes
    them for one variable (floats as they are, (K,) arrays as (K, 1) arrays of the dtype for a
    member-major group). `g` is the gradient as an array like `u`, or (gradient, part of `u`)
    pairs that cover `u`."""
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
        # The plan's own paths: distinct variables (else apply_gradients refuses), some.
        self._own = floats and n > 0 and len({id(v) for v in self.variables}) == n
        self._flat = adam and self._own and all(v.size for v in self.variables)
        self._scalar = (self._flat and n == 1 and self.variables[0].shape == ()
                        and self.variables[0].dtype == _F64)
        # Stacked members: the variables' common leading length K (for `fast_members`)
        lead = self.variables[0].shape[0] if self._flat and self.variables[0].ndim else None
        self._lead = (lead if all(v.ndim and v.shape[0] == lead for v in self.variables)
                      else None)
        self._adam = adam
        self._groups: list[_Group] = []
        self._g_views: list[np.ndarray] = []
        if floats:  # member-major if the optimizer steps stacked members already
            stacked = optimizer._k is not None or optimizer.per_member_nonfinite
            self._make_groups(self._lead if stacked else None)
        self._seen: Any = None  # the optimizer's list of states that `_cached` was read from
        self._cached: list[VariableState] = []
        self.fast: Callable[[Sequence[Any]], Any] = (self._fast_scalar if self._scalar
                                                     else self._fast_arrays)

    def _make_groups(self, k: int | None) -> None:
        """The dtype groups, flat (`k` None) or member-major (see `_Group`), and the views of
        their gradient buffers in plan order. States adopt the new groups' slot views at their
        next step (`_Group.sync`)."""
        by_dtype: dict[np.dtype, list[int]] = {}
        for i, var in enumerate(self.variables):
            by_dtype.setdefault(var.dtype, []).append(i)
        self._groups = [_Group(dt, idx, [self.variables[i] for i in idx], self._adam, k)
                        for dt, idx in by_dtype.items()]
        views: list[Any] = [None] * self._n
        for group in self._groups:
            for i, view in zip(group.positions, group.g_views, strict=True):
                views[i] = view
        self._g_views = views

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

    def destinations(self, grads: Sequence[Any]) -> list[tuple[Any, np.ndarray]]:
        """(gradient, its view of the plan's gradient buffer) for `grads` (`tape.function`'s
        replay writes such a gradient there, saving the plan's copy); none when the plan has
        no buffer (variables that are not all floating-point) or `grads` are not one per
        variable.

        Example:
            >>> import numpy as np, tape
            >>> from optim import Adam
            >>> w = tape.Variable(np.ones(3))
            >>> plan = Adam(0.1).update_plan([w])
            >>> g = np.ones(3)
            >>> [(a is g, view.shape) for a, view in plan.destinations([g])]
            [(True, (3,))]
        """
        if not self._groups or len(grads) != self._n:
            return []
        return list(zip(grads, self._g_views))

    def __call__(self, grads: Sequence[Any]) -> Any:
        if STATE.tracer is not None:  # called inside a traced function: one kernel
            return kernel(self.optimizer._run_plan)(self, list(grads))
        done = self.fast(grads)
        return self._general(grads) if done is None else done

    def _fast_arrays(self, grads: Sequence[Any]) -> Any:
        """`fast` for every plan but one over a single 0-d float64 variable (see the class)."""
        opt = self.optimizer
        if not opt._simple:
            return self.fast_members(grads, None)
        if not self._own or len(grads) != self._n:
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
        arrays = self._arrays(grads)
        hp = self._hyperparameters()  # after the gradients' checks, as in apply_gradients
        if hp is None:
            return None
        return self._adam_step(self._groups, arrays, states, hp)

    def _arrays(self, grads: Sequence[Any]) -> list[np.ndarray]:
        """The gradients as arrays of their variables' shapes and dtypes (checked as
        `apply_gradients` checks them)."""
        arrays = []
        for g, view, var in zip(grads, self._g_views, self.variables, strict=True):
            if g is not view and (g.__class__ is not np.ndarray or g.shape != view.shape
                                  or g.dtype != view.dtype):
                g = gradient_array(g, var)
            arrays.append(g)
        return arrays

    def _adam_step(self, groups: list[_Group], arrays: list[np.ndarray],
                   states: list[VariableState], hp: dict[str, Any]) -> Any:
        """Adam over `groups` once the gradients are proved finite and the step finite (else
        None, nothing changed)."""
        opt = self.optimizer
        lr = hp["learning_rate"]
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

    def fast_members(self, grads: Sequence[Any], active: Any) -> Any:
        """`apply_gradients(zip(grads, variables), active=active)` for stacked members (the
        optimizer's `_k` set, or `per_member_nonfinite`) when every member steps: multi-tensor
        Adam over member-major flat arrays (see `_Group`), the same bits as the per-variable
        code. Returns its result (True, or the (K,) mask of members updated, all of them), or
        None (nothing changed) when only `apply_gradients`' own code can take the step: not
        plain Adam, clipping, an `active` mask that leaves a member out, a gradient that is not
        finite, a step not proved finite, a variable not known yet, or variables without a
        common leading axis of the hyperparameters' length. Invalid gradients raise as there.

        Example:
            >>> import numpy as np, tape
            >>> from optim import Adam
            >>> w, opt = tape.Variable(np.zeros((2, 3))), Adam([0.1, 0.2])
            >>> opt.build([w])
            >>> opt.update_plan([w]).fast_members([np.ones((2, 3))], np.array([True, True]))
            array([ True,  True])
            >>> w.numpy()[:, 0]
            array([-0.1, -0.2])
        """
        opt = self.optimizer
        k = self._lead
        if k is None or len(grads) != self._n:
            return None
        if not opt._unclipped:
            return None
        if active is not None:
            mask = active if active.__class__ is np.ndarray else np.asarray(active)
            if mask.dtype != bool or mask.shape != (k,) or not mask.all():
                return None  # members left out, or a mask refused: the per-member code
        states = self._cached if opt._states is self._seen else self._look_up()
        if states is None:
            return None
        arrays = self._arrays(grads)
        hp, size = opt._hyper, opt._k
        if callable(hp["learning_rate"]):  # after the gradients' checks, as in apply_gradients
            hp = {**hp, "learning_rate": opt.current_learning_rate}
            size = population_size(hp)
        if size is not None and size != k:
            return None  # refused there, with its message
        if self._groups[0].k != k:  # made flat, before the optimizer stepped members
            self._make_groups(k)
        if self._adam_step(self._groups, arrays, states, hp) is None:
            return None
        return True if active is None and not opt.per_member_nonfinite else np.ones(k, bool)

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
        m_arr, v_arr = slots["m"], slots["v"]
        m = float(m_arr) * b1 + g * a1
        u = g * r2
        v = float(v_arr) * b2 + u * u
        den = math.sqrt(v) + eps
        if not (v < _INF and den > 0.0):  # NaN or inf, or 0 / 0
            return self._check_gradients(grads)
        w = float(var) - m / den * (lr * scale)
        if not w - w == 0.0:  # NaN or inf (and so, too, if m was)
            return self._check_gradients(grads)
        m_arr[()] = m
        v_arr[()] = v
        var.assign(w)
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
