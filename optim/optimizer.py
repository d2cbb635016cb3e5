"""`Optimizer`: a chain of update transforms with the TensorFlow-style API on top.

`apply_gradients(zip(grads, vars))` and `minimize(loss_fn, var_list)`; a learning rate that is a
number, K numbers (stacked models) or a schedule; clipping; steps that are all or nothing and
never write a non-finite number; hyperparameters that can be changed between steps
(re-validated); and a state dict of plain arrays and numbers for bit-for-bit resumption.

How a step stays finite without costing a pass over the arrays: the optimizer carries an upper
bound on each slot's magnitude from step to step; from them, the gradients' magnitudes (the
one read-only pass the non-finite gradient check makes anyway) and the coefficients, each link
bounds what it will compute (`Transform.bound`). When the bounds prove every slot and the step
finite (always, in ordinary training), the step runs in place at full speed. Otherwise it is
computed aside into spare buffers, checked, and committed whole or refused whole.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from optim.gradients import (
    clip_factors,
    is_finite,
    largest,
    overflows,
    require_variables,
    split_pairs,
)
from optim.hyperparams import (
    Check,
    check_learning_rate,
    check_norm,
    check_rate,
    fit_to,
    magnitude,
    population_size,
)
from optim.members import (
    leave_out,
    members_to_update,
    nonfinite_step_members,
    select_states,
    zero_rows,
)
from optim.state import read_state_dict, state_dict
from optim.transforms import Transform, VariableState
from optim.update_plan import UpdatePlan
from tape import Tape, Variable, kernel
from tape._state import STATE

Step = tuple[Any, list, list]  # (learning rate, [(link, coefficients)], [decay rates])

_BASE_HYPERPARAMETERS: dict[str, Check] = {
    "learning_rate": check_learning_rate, "clipnorm": check_norm, "global_clipnorm": check_norm,
}


_MAX_PLANS = 16  # update plans an optimizer keeps (see `Optimizer.update_plan`)

class Optimizer:
    """Updates Variables in place: `w -= learning_rate * direction(transforms, gradient)`.

    `transforms` is the chain of `optim.transforms` links (empty: plain gradient descent);
    their hyperparameters are keyword arguments here and attributes afterwards
    (`opt.beta_1 = 0.95` is validated like at construction). Any hyperparameter may be a 1-D
    array of K values, one per model when K same-shaped models are stacked along the leading
    axis of every variable. `clipnorm` clips each gradient to that L2 norm, `global_clipnorm`
    all of them jointly (set at most one).

    No step writes a NaN or an infinity into a weight or a slot. A NaN or infinite gradient, or
    a finite one whose step cannot be represented (a float32 gradient of 1e30 squared into
    Adam's second moment, a learning rate of 1e30), raises `FloatingPointError` naming the
    variables, and nothing is updated; with `skip_nonfinite=True` the step is skipped with a
    warning instead (and `iterations` does not advance). For stacked models,
    `per_member_nonfinite=True` refuses per member instead: a member (a slice along the leading
    axis) with a NaN/inf gradient or a step that would not be finite gets no update and keeps
    its slots, the others step (see `apply_gradients`' `active`; `nn.Population` switches it
    on). Weights change only through `Variable.assign_sub`.

    Example:
        >>> from tape import Variable
        >>> from optim.transforms import Trace
        >>> w = Variable(0.0)
        >>> opt = Optimizer(0.1, [Trace()], momentum=0.5)
        >>> for _ in range(100):
        ...     _ = opt.minimize(lambda: (w - 3.0) ** 2, [w])
        >>> round(float(w), 6), opt.iterations
        (3.0, 100)
    """

    def __init__(self, learning_rate: Any, transforms: Sequence[Transform] = (), *,
                 clipnorm: Any = None, global_clipnorm: Any = None,
                 skip_nonfinite: bool = False, per_member_nonfinite: bool = False,
                 **hyperparameters: Any) -> None:
        checks = dict(_BASE_HYPERPARAMETERS)
        defaults: dict[str, Any] = {}
        for link in transforms:
            for name, (check, default) in link.hyperparameters.items():
                checks[name] = check
                defaults[name] = default
        object.__setattr__(self, "_checks", checks)
        self._transforms = tuple(transforms)
        self._slot_names = tuple(name for link in self._transforms for name in link.slots)
        self._checked_slots = tuple(
            name for link in self._transforms
            for name in (link.slots if link.checked_slots is None else link.checked_slots))
        self._hyper: dict[str, Any] = {}
        self._variables: list[Variable] = []
        self._states: list[VariableState] = []
        self._positions: dict[int, int] = {}  # id(var) -> position; we hold the var alive
        self._iterations = 0
        self._plans: dict[tuple[int, ...], UpdatePlan] = {}  # update_plan's, by variables
        self._last_plan: UpdatePlan | None = None  # the one eager apply_gradients used last
        self.skip_nonfinite = bool(skip_nonfinite)
        self.per_member_nonfinite = bool(per_member_nonfinite)
        self.set_hyperparameters(learning_rate=learning_rate, **{**defaults, **hyperparameters},
                                 clipnorm=clipnorm, global_clipnorm=global_clipnorm)

    # -- hyperparameters --------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        hyper = self.__dict__.get("_hyper")
        if hyper is not None and name in hyper:
            return hyper[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._checks:
            self.set_hyperparameters(**{name: value})
        else:
            object.__setattr__(self, name, value)
            if name == "per_member_nonfinite":
                self._refresh_simple()

    def _refresh_simple(self) -> None:
        """`_simple`: whether steps are what an update plan's own paths take (hyperparameters
        that are floats or a schedule, no clipping, no per-member refusals); `_unclipped`:
        whether there is no clipping (stacked members' steps may take `fast_members`)."""
        hp = self.__dict__.get("_hyper", {})
        unclipped = hp.get("clipnorm") is None and hp.get("global_clipnorm") is None
        object.__setattr__(self, "_unclipped", unclipped)  # what `_members_fast` needs
        object.__setattr__(self, "_simple", (
            unclipped and self.__dict__.get("_k") is None
            and not self.__dict__.get("per_member_nonfinite", False)))

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._checks))

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The current hyperparameters by name (a copy; the learning rate as set).

        Example:
            >>> from optim import SGD
            >>> SGD(0.1, momentum=0.9).hyperparameters["momentum"]
            0.9
        """
        return dict(self._hyper)

    def set_hyperparameters(self, **values: Any) -> None:
        """Change hyperparameters between steps; all are validated before any is changed.

        An unknown name or an invalid value is a `ValueError` (a non-number a `TypeError`),
        and then nothing changes. Array values must all have the same length K.

        Example:
            >>> from optim import Adam
            >>> opt = Adam(0.001)
            >>> opt.set_hyperparameters(learning_rate=0.01, beta_1=0.95)
            >>> opt.learning_rate, opt.beta_1
            (0.01, 0.95)
        """
        unknown = sorted(set(values) - set(self._checks))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no hyperparameters {unknown}; it has "
                             f"{sorted(self._checks)}")
        checked = {name: self._checks[name](name, v) for name, v in values.items()}
        merged = {**self._hyper, **checked}
        k = population_size({n: v for n, v in merged.items() if not callable(v)})
        if merged.get("clipnorm") is not None and merged.get("global_clipnorm") is not None:
            raise ValueError("set only one of clipnorm and global_clipnorm")
        self._hyper = merged
        self._k = k
        self._refresh_simple()

    @property
    def iterations(self) -> int:
        """The number of steps applied so far (the step a schedule sees next)."""
        return self._iterations

    @property
    def current_learning_rate(self) -> Any:
        """The learning rate the next step will use (a schedule evaluated at `iterations`).

        Example:
            >>> from optim import SGD
            >>> SGD(lambda step: 0.1 / (1 + step)).current_learning_rate
            0.1
        """
        lr = self._hyper["learning_rate"]
        if not callable(lr):
            return lr
        return check_rate(f"learning rate from schedule {lr!r} at step {self._iterations}",
                          lr(self._iterations))

    # -- variables and their state ----------------------------------------------------------
    def build(self, var_list: Iterable[Variable]) -> None:
        """Create the state of `var_list`'s variables now, in this order (their positions in
        `state_dict`), instead of when they first receive gradients.

        Example:
            >>> from tape import Variable
            >>> from optim import Adam
            >>> opt = Adam()
            >>> opt.build([Variable([1.0, 2.0])])
            >>> sorted(opt.state_dict())
            ['hyperparameters/beta_1', 'hyperparameters/beta_2', 'hyperparameters/epsilon', \
'hyperparameters/learning_rate', 'iterations', 'slots/0/m', 'slots/0/v']
        """
        self._states_of(require_variables(var_list, "build"))

    def _states_of(self, variables: list[Variable]) -> list[VariableState]:
        positions, states = self._positions, self._states
        out = []
        for var in variables:
            i = positions.get(id(var))
            if i is None:
                i = positions[id(var)] = len(states)
                self._variables.append(var)
                states.append(VariableState(var, self._slot_names))
            out.append(states[i])
        return out

    # -- the step ---------------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]], *,
                        active: Any = None) -> Any:
        """Update each variable in place from its gradient; returns whether the step was applied.

        Accepts any iterable of `(gradient, variable)` pairs, a `zip` included. `None`
        gradients are skipped with one warning; all-`None` is a `ValueError`. Updates are
        in-place writes like the Variables' `assign_sub`, never recorded by an active tape.

        The step is all or nothing: it is refused, with nothing changed, when a gradient is
        not finite or when it would turn a finite weight, or the optimizer's state, non-finite
        (say, a float32 gradient of 1e30 whose square overflows Adam's second moment). A
        refusal is a `FloatingPointError` naming the variables, or a skipped step with a
        warning under `skip_nonfinite`.

        Stacked models (K members along every variable's leading axis): `active`, a (K,)
        boolean mask, updates only those members; with `per_member_nonfinite`, members with a
        NaN/inf gradient, or whose step would not be finite, are left out too (else they
        raise). A member left out keeps its weights and slots exactly; `iterations` advances if
        any member stepped. Then the result is the (K,) mask of members updated.

        Example:
            >>> from tape import Tape, Variable
            >>> from optim import SGD
            >>> w = Variable(1.0)
            >>> with Tape() as t:
            ...     cost = w ** 2
            >>> SGD(0.25).apply_gradients(zip(t.gradient(cost, [w]), [w]))
            True
            >>> float(w)
            0.5
        """
        if STATE.tracer is not None:  # under tape.function: a kernel, re-run on each replay
            return self._traced_step(grads_and_vars, active)
        # Plain pairs take the cached plan for their variables (the same steps with less
        # Python); anything it leaves, and anything not plain, is `_apply`'s, called from here
        # so that its warnings point at the caller.
        pairs = grads_and_vars if grads_and_vars.__class__ is list else list(grads_and_vars)
        if active is not None or not self._simple:
            done = self._members_fast(pairs, active)
            return self._apply(pairs, active) if done is None else done
        plan = self._plan_of(pairs)
        done = None if plan is None else plan.fast([p[0] for p in pairs])
        return self._apply(pairs, None) if done is None else done

    def _plan_of(self, pairs: list[Any]) -> UpdatePlan | None:
        """The update plan for the variables of plain `pairs` (None if they are not plain):
        the previous step's, if these are its variables again."""
        plan = self._last_plan
        if plan is None or not _same_variables(pairs, plan.variables):
            variables = _plain_variables(pairs)
            if variables is None:
                return None
            plan = self._last_plan = self.update_plan(variables)
        return plan

    def _members_fast(self, pairs: list[Any], active: Any) -> Any:
        """The step of stacked members on their update plan's multi-tensor path
        (`UpdatePlan.fast_members`): its result, or None when `_apply` must take it."""
        if not self._unclipped:
            return None
        plan = self._plan_of(pairs)
        return None if plan is None else plan.fast_members([p[0] for p in pairs], active)

    def _apply_members(self, pairs: list[Any], active: Any) -> Any:
        """A traced program's kernel for pairs that are not plain or carry an `active` mask:
        `_members_fast`, else `_apply`."""
        done = self._members_fast(pairs, active)
        return self._apply(pairs, active) if done is None else done

    def _traced_step(self, grads_and_vars: Iterable[tuple[Any, Variable]], active: Any) -> Any:
        """The step of a traced program: this optimizer's `update_plan` for the variables when
        the pairs are plain (no None gradient, no `active` mask), else `apply_gradients` whole;
        either is one kernel that reads the hyperparameters, schedule and state at each call."""
        pairs = list(grads_and_vars)
        variables = None if active is not None else _plain_variables(pairs)
        if variables is not None:
            plan = self.update_plan(variables)  # takes 0-d float64 gradients as Python floats
            return kernel(self._run_plan, floats=True)(plan, [g for g, _ in pairs])
        return kernel(self._apply_members)(pairs, active)

    def _run_plan(self, plan: UpdatePlan, grads: list[Any]) -> Any:
        # A method of the optimizer: `validate` finds its state through it. `plan(grads)`,
        # without its check for a trace (a kernel runs untraced).
        done = plan.fast(grads)
        return plan._general(grads) if done is None else done

    # A replay may write the gradients straight into the plan's buffer (`tape.trace.codegen`).
    _run_plan.destinations = lambda plan, grads: plan.destinations(grads)  # type: ignore

    def update_plan(self, variables: Sequence[Variable]) -> UpdatePlan:
        """`apply_gradients` specialised to `variables` (made once, kept): `plan(grads)` is
        `apply_gradients(zip(grads, variables))` bit for bit, with less Python per call. It is
        what a `tape.function` replay calls, and what `apply_gradients` itself runs for plain
        pairs (each with a gradient, no `active` mask); see `optim.update_plan`. The optimizer
        keeps the plans of its `_MAX_PLANS` most recently used variable lists (a plan holds its
        variables and flat buffers; one dropped and made again takes the state back as is).

        Example:
            >>> from tape import Variable
            >>> from optim import SGD
            >>> w = Variable(1.0)
            >>> opt = SGD(0.5)
            >>> opt.update_plan([w]) is opt.update_plan([w]), opt.update_plan([w])([1.0])
            (True, True)
            >>> float(w)
            0.5
        """
        key = tuple(id(v) for v in variables)
        plans = self._plans
        plan = plans.pop(key, None)
        if plan is None:
            plan = UpdatePlan(self, variables)
            if len(plans) >= _MAX_PLANS:  # the least recently used goes
                del plans[next(iter(plans))]
        plans[key] = plan  # most recently used last
        return plan

    def _apply(self, grads_and_vars: Iterable[tuple[Any, Variable]], active: Any) -> Any:
        """`apply_gradients` itself (outside a trace)."""
        grads, variables = split_pairs(grads_and_vars)
        hp, k = self._hyper, self._k
        if callable(hp["learning_rate"]):
            hp = {**hp, "learning_rate": self.current_learning_rate}
            k = population_size(hp)
        update = held = None
        if active is not None or self.per_member_nonfinite:
            update = members_to_update(grads, variables, k, active,
                                       leave_out_nonfinite=self.per_member_nonfinite)
            k = len(update)  # also when every hyperparameter is a scalar
            if not update.any():
                return update
            if not update.all():
                held = ~update
                grads = [zero_rows(g, held) for g in grads]  # keeps their arithmetic finite
        bounds = [largest(g) for g in grads]  # inf or NaN where a gradient is not finite
        if update is None and not sum(bounds) < math.inf and (
                bad := [i for i, b in enumerate(bounds) if not b < math.inf]):
            return self._refuse(f"non-finite (NaN or inf) gradients for variables "
                                f"{[variables[i].name for i in bad]}", "clip gradients "
                                "(clipnorm=...)")
        fits = [fit_to(var, k) for var in variables]  # shapes are checked before any write
        known = len(self._states)  # variables first seen in a refused step are forgotten again
        states = self._states_of(variables)
        lr = hp["learning_rate"]
        t = self._iterations + 1
        links = [(link, link.coefficients(hp, t)) for link in self._transforms]
        decays = [lam for link, c in links if (lam := link.decay(c)) is not None]
        clipnorm, global_clipnorm = hp["clipnorm"], hp["global_clipnorm"]
        factors = ([None] * len(grads) if clipnorm is None and global_clipnorm is None
                   else clip_factors(grads, clipnorm, global_clipnorm, k))
        step: Step = (lr, links, decays)
        if self._finite_for_sure(bounds, factors, states, step):
            self._step_in_place(grads, factors, fits, states, step, held)
        else:
            stepped, update = self._step_aside(grads, factors, fits, states, step, update, known)
            if not stepped:
                return update
        object.__setattr__(self, "_iterations", t)  # not a hyperparameter: skip __setattr__
        return True if update is None else update

    def _step_in_place(self, grads: list[np.ndarray], factors: list[Any], fits: list[Any],
                       states: list[VariableState], step: Step, held: Any) -> None:
        """The step that `_finite_for_sure` proved finite, its slots updated in place."""
        for g, s, fit, state in zip(grads, factors, fits, states, strict=True):
            kept = None if held is None else [arr[held] for arr in state.slots.values()]
            delta = self._delta(g, s, fit, state, step)
            if kept is not None:  # members sitting this step out keep theirs
                for arr, rows in zip(state.slots.values(), kept, strict=True):
                    arr[held] = rows
                delta[held] = 0
            state.var.assign_sub(delta)
            state.take_bounds(keep=held is not None)

    def _step_aside(self, grads: list[np.ndarray], factors: list[Any], fits: list[Any],
                    states: list[VariableState], step: Step, update: Any,
                    known: int) -> tuple[bool, Any]:
        """A step not proved finite: computed aside, checked, then committed whole, refused
        whole (`_refuse`), or for stacked models without the members whose step is not finite.
        Returns whether anything stepped, and the result for `apply_gradients`. Variables first
        seen (from position `known` on) are forgotten again if nothing stepped."""
        deltas, held, stepped = [], None, False
        try:
            # Overflow is found below and reported once, naming the variables or members.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for g, s, fit, state in zip(grads, factors, fits, states, strict=True):
                    state.aside = True
                    deltas.append(self._delta(g, s, fit, state, step))
                if update is None:
                    bad_steps = [f"'{st.var.name}' {st.var.dtype} ({' and '.join(parts)})"
                                 for st, delta in zip(states, deltas)
                                 if (parts := self._nonfinite_parts(st, delta))]
                else:
                    bad_members = nonfinite_step_members(states, deltas, len(update),
                                                         self._checked_slots)
            if update is None:
                if bad_steps:
                    return False, self._refuse(
                        f"finite gradients would make {', '.join(bad_steps)} non-finite",
                        "raise epsilon, clip gradients (clipnorm=...)")
            else:
                update = leave_out(bad_members & update, update,
                                   leave_out_nonfinite=self.per_member_nonfinite)
                if not update.any():
                    return False, update
                held = None if update.all() else ~update
            for state, delta in zip(states, deltas, strict=True):
                state.commit(held)
                if held is not None:
                    delta[held] = 0
                state.var.assign_sub(delta)
            stepped = True
            return True, update
        finally:
            for state in states:  # after a commit, a refusal or an error alike
                state.discard()
                state.aside = False
            if not stepped:
                for var in self._variables[known:]:
                    del self._positions[id(var)]
                del self._variables[known:], self._states[known:]

    def _delta(self, g: np.ndarray, s: Any, fit: Callable[[Any], Any], state: VariableState,
               step: Step) -> np.ndarray:
        """One variable's step `w - w_new` (in a scratch buffer), its new slot values written
        through `state.new_slot`: in place, or aside (see `VariableState`)."""
        lr, links, decays = step
        d = g
        for link, c in links:
            d, s = link.update(d, s, c, fit, state)
        delta = d if state.owns(d) else state.free_buffer()
        np.multiply(d, fit(lr if s is None else lr * s), out=delta)
        for lam in decays:  # decoupled decay: w -= lr * lam * w, with the step
            shrink = state.free_buffer(delta)
            np.multiply(np.asarray(state.var), fit(lr * lam), out=shrink)
            np.add(delta, shrink, out=delta)
        return delta

    def _finite_for_sure(self, bounds: list[float], factors: list[Any],
                         states: list[VariableState], step: Step) -> bool:
        """Whether this step provably leaves every weight and slot finite, from bounds on the
        magnitudes of the gradients (`bounds`), the slots and the coefficients (`Transform.bound`):
        a few scalar operations instead of a check afterwards, which would need the step
        computed aside."""
        lr, links, decays = step
        for b, s, state in zip(bounds, factors, states, strict=True):
            state.next_bounds.clear()
            limit, limit_step, slack, tiny = state.limits
            for link, c in links:
                b, s = link.bound(b, s, c, state, limit)
                if not b < limit:  # each direction, not only the last, must be finite
                    return False
            # The multipliers are rounded up as the dtype may round them (see `Limits`).
            rate = magnitude(lr if s is None else lr * s) * slack + tiny
            size = b * rate  # of the step; NaN (inf * 0) fails the test below
            for lam in decays:  # with lr * lam <= 1, it only shrinks a finite weight
                shrink = magnitude(lr * lam) * slack + tiny
                if shrink > 1.0:
                    size += (shrink * largest(np.asarray(state.var)) if shrink < limit
                             else math.inf)
            if not (size < limit_step and rate < limit):
                return False
        return True

    def _refuse(self, what: str, remedy: str) -> bool:
        """Raise `FloatingPointError` for a refused step, or warn under `skip_nonfinite`."""
        if not self.skip_nonfinite:
            raise FloatingPointError(
                f"{what}; no variable was updated. Lower the learning rate, {remedy}, or pass "
                f"skip_nonfinite=True to skip such steps with a warning")
        warnings.warn(f"skipped step {self._iterations}: {what}", RuntimeWarning, stacklevel=3)
        return False

    def _nonfinite_parts(self, state: VariableState, delta: np.ndarray) -> list[str]:
        """What of `state`'s variable this step would make non-finite (empty: nothing)."""
        pending = state.pending
        parts = [f"optimizer slot {name!r}" for name in self._checked_slots
                 if name in pending and not is_finite(pending[name])]
        if overflows(state.var, delta):
            parts.append("weights")
        return parts

    def select_members(self, indices: Any,
                       replacements: Iterable[tuple[Variable, Variable]] = ()) -> None:
        """Keep the stacked members `indices` (in that order) of the per-member state: array
        hyperparameters and the rows of every slot; e.g. when a population culls members.

        `replacements` are `(old, new)` variable pairs: the state of `old` now belongs to `new`,
        which must have `len(indices)` members. Everything is checked before anything changes.

        Example:
            >>> from tape import Variable
            >>> from optim import Adam
            >>> w = Variable(np.ones((3, 2)))
            >>> opt = Adam([0.1, 0.2, 0.3])
            >>> _ = opt.minimize(lambda: (w * w).sum(), [w])
            >>> w2 = Variable(w.numpy()[[2, 0]])
            >>> opt.select_members([2, 0], [(w, w2)])
            >>> opt.learning_rate, opt.state_dict()["slots/0/m"].shape
            (array([0.3, 0.1]), (2, 2))
        """
        idx, states = select_states(self._states, indices, replacements)
        self.set_hyperparameters(**{name: v[idx] for name, v in self._hyper.items()
                                    if isinstance(v, np.ndarray)})
        self._variables = [st.var for st in states]
        self._states = states
        self._positions = {id(var): i for i, var in enumerate(self._variables)}

    def minimize(self, loss_fn: Callable[[], Any], var_list: Iterable[Variable]) -> Any:
        """Record `loss_fn()` on a fresh tape, apply its gradients to `var_list`, return the loss.

        Example:
            >>> import numpy as np
            >>> from tape import Variable
            >>> from optim import Adam
            >>> w, x = Variable(0.0), np.array([1.0, -10.0, 25.0])
            >>> opt = Adam(0.1)
            >>> for _ in range(1000):
            ...     loss = opt.minimize(lambda: x[0] * w**2 + x[1] * w + x[2], [w])
            >>> round(float(w), 3)
            5.0
        """
        variables = require_variables(var_list, "minimize")
        with Tape() as t:  # trainable variables are watched when read; others must be told
            frozen = [v for v in variables if not v.trainable]
            if frozen:
                t.watch(frozen)
            loss = loss_fn()
        self.apply_gradients(zip(t.gradient(loss, variables), variables, strict=True))
        return loss

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-for-bit, as a flat dict of numbers and array copies.

        Keys: `iterations`; `hyperparameters/<name>` (a schedule, or clipping that is off, is
        code or absent and is not saved); `slots/<position>/<slot>` where position is the
        variable's place in the order the optimizer first saw it (its `var_list` order, or
        `build`'s). Positions rather than object identities, so the state loads into fresh
        Variables. `np.savez(path, **opt.state_dict())` saves it without pickle.

        Example:
            >>> from tape import Variable
            >>> from optim import SGD
            >>> opt = SGD(0.1, momentum=0.9)
            >>> _ = opt.minimize(lambda: w ** 2, [w := Variable(1.0)])
            >>> opt.state_dict()["slots/0/momentum"], opt.state_dict()["iterations"]
            (array(2.), 1)
        """
        return state_dict(self._iterations, self._hyper, self._states)

    def load_state_dict(self, state: Mapping[str, Any],
                        var_list: Iterable[Variable] | None = None) -> None:
        """Restore a `state_dict`, for `var_list` in the saved order (default: the variables
        this optimizer already knows). A missing, extra, misshapen or non-finite entry is a
        `ValueError`, and then the optimizer is left unchanged.

        Example:
            >>> from tape import Variable
            >>> from optim import Adam
            >>> w = Variable([1.0, 2.0])
            >>> opt = Adam(0.1)
            >>> _ = opt.minimize(lambda: (w * w).sum(), [w])
            >>> fresh = Adam(0.1)
            >>> fresh.load_state_dict(opt.state_dict(), [w])
            >>> fresh.iterations
            1
        """
        variables = (list(self._variables) if var_list is None
                     else require_variables(var_list, "load_state_dict"))
        iterations, hyper, states = read_state_dict(state, variables, self._slot_names,
                                                    type(self).__name__)
        self.set_hyperparameters(**hyper)  # the last check: it changes nothing if it raises
        self._variables = variables
        self._states = states
        self._positions = {id(var): i for i, var in enumerate(variables)}
        self._iterations = iterations

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items() if v is not None)
        return f"{type(self).__name__}({params})"


def _same_variables(pairs: list[Any], variables: list[Variable]) -> bool:
    """Whether `pairs` are `(gradient, variable)` tuples with a gradient, for exactly
    `variables` in this order."""
    if len(pairs) != len(variables):
        return False
    for p, var in zip(pairs, variables):
        if p.__class__ is not tuple or len(p) != 2 or p[1] is not var or p[0] is None:
            return False
    return True


def _plain_variables(pairs: list[Any]) -> list[Variable] | None:
    """The variables of `pairs` if every pair is a `(gradient, Variable)` tuple with a gradient
    and no variable repeats (what an update plan takes), else None."""
    variables = []
    for p in pairs:
        if p.__class__ is not tuple or len(p) != 2 or p[0] is None or not isinstance(p[1],
                                                                                       Variable):
            return None
        variables.append(p[1])
    if not variables or (len(variables) > 1 and len({id(v) for v in variables}) != len(variables)):
        return None
    return variables

