"""The reverse sweep: walk a tape's records backwards with a cotangent dict local to the call;
and how its results are handed back (`unconnected_mode`, `finish`)."""

from __future__ import annotations

import operator
import reprlib
from typing import Any

import numpy as np

from tape._state import STATE
from tape.primitive import Primitive
from tape.records import Record
from tape.tensor import Tensor, Variable

_UNCONNECTED = ("none", "zero")


def backprop(records: list[Record], seeds: dict[int, Any], sources: set[int],
             differentiable: bool, prune: bool = True) -> dict[int, Any]:
    """Cotangents of `sources` (ids) given `seeds` ({id(target): cotangent}).

    With `differentiable=False` the rules see raw arrays and nothing is recorded (the fast
    first-order path). With `differentiable=True` they see the recorded tensors themselves,
    so an outer tape that is still recording records the backward pass (higher order); an
    all-inputs rule then gets `residuals=None`. With `prune`, inputs that no source reaches
    are skipped (callers pass `prune=False` when every watched leaf is a source, so that every
    tracked value leads to one).

    Example:
        >>> import tape
        >>> x = tape.Variable(3.0)
        >>> with tape.Tape(persistent=True) as t:
        ...     y = x * x
        >>> float(backprop(t._records, {id(y): 1.0}, {id(x)}, False)[id(x)])
        6.0
    """
    reach = reachable(records, sources) if prune else None
    ct = dict(seeds)
    # tape.function: every rule call and sum is a kernel; a differentiable sweep runs its rules
    # as code (their tape ops are the kernels, and the outer tape records them too)
    tracer = None if differentiable else STATE.tracer
    for rec in reversed(records):
        out = rec.output
        k = id(out)
        g = ct.get(k) if k in sources else ct.pop(k, None)
        if g is None:
            continue
        prim = rec.primitive
        versions = rec.versions
        if versions:
            for var, version in versions:
                if var._version != version:
                    raise _stale(prim, var)
        args = rec.inputs
        ans: Any
        if differentiable:
            ins, ans = args, out
        else:
            ins, ans = rec.values, out._value
        params = rec.params
        rule_all = prim.vjp_all
        if rule_all is not None:  # one call for every input that needs a gradient
            needed = rec.live
            if reach is not None:
                needed = [i for i in needed if id(args[i]) in reach]
                if not needed:
                    continue
            residuals = None if differentiable else rec.residuals
            if tracer is None:
                grads = rule_all(needed, g, ans, residuals, *ins, **params)
            else:
                grads = tracer.call(rule_all, (needed, g, ans, residuals, *ins), params)
            if len(grads) != len(args):
                raise _wrong_count(prim, grads, len(args))
            for i in needed:
                gi = grads[i]
                if gi is not None:
                    ka = id(args[i])
                    prev = ct.get(ka)
                    ct[ka] = gi if prev is None else _sum(prev, gi, tracer)
            continue
        rules = prim.vjps
        for i in rec.live:
            ka = id(args[i])
            if reach is not None and ka not in reach:
                continue
            try:
                rule = rules[i]
            except IndexError:
                raise prim.missing_rule(i) from None
            if rule is None:
                continue
            if tracer is None:
                gi = rule(g, ans, *ins, **params)
            else:
                gi = tracer.call(rule, (g, ans, *ins), params)
            if gi is None:
                continue
            prev = ct.get(ka)
            ct[ka] = gi if prev is None else _sum(prev, gi, tracer)
    return {k: ct.get(k) for k in sources}


def _sum(a: Any, b: Any, tracer: Any) -> Any:
    return a + b if tracer is None else tracer.call(operator.add, (a, b), {})


def reachable(records: list[Record], sources: set[int]) -> set[int]:
    """Ids of the values on a path from a source: only they can carry gradient to one.

    Example:
        >>> import tape
        >>> x, c = tape.Variable(1.0), tape.constant(2.0)
        >>> with tape.Tape(persistent=True) as t:
        ...     y = x * 2
        >>> id(y) in reachable(t._records, {id(x)}), id(c) in reachable(t._records, {id(x)})
        (True, False)
    """
    reach = set(sources)
    for rec in records:
        args = rec.inputs
        for i in rec.live:
            if id(args[i]) in reach:
                reach.add(id(rec.output))
                break
    return reach


def unconnected_mode(value: Any) -> str:
    """'none' or 'zero' from a string or an enum with such a value (as TensorFlow's).

    Example:
        >>> unconnected_mode("ZERO")
        'zero'
    """
    mode = value
    if mode not in _UNCONNECTED:
        mode = str(getattr(mode, "value", mode)).lower()
    if mode not in _UNCONNECTED:
        raise ValueError(f"unconnected_gradients must be 'none' or 'zero', got {value!r}")
    return mode


def finish(g: Any, source: Tensor, mode: str) -> Tensor | None:
    """The gradient handed back for `source`: its cotangent `g` as a tensor of the source's
    dtype, or for an unconnected source (`g` None) None or zeros as `mode` says.

    Example:
        >>> import numpy as np, tape
        >>> finish(None, tape.Variable([1.0, 2.0]), "zero").numpy()
        array([0., 0.])
    """
    if g is None:
        return Tensor(np.zeros(source.shape, source.dtype)) if mode == "zero" else None
    tracer = STATE.tracer
    if tracer is not None:  # tape.function: a kernel of the traced program
        return tracer.call(finish, (g, source, mode), {})  # type: ignore[no-any-return]
    if isinstance(g, Tensor):
        return g if g.dtype == source.dtype else g.astype(source.dtype)
    g = np.asarray(g)
    if g.dtype != source.dtype:
        if g.dtype.kind not in "biuf":
            name = (f"Variable '{getattr(source, 'name', '')}'" if source._is_variable
                    else "a tensor")
            raise TypeError(f"gradient: the gradient computed for {name} (shape {source.shape}, "
                            f"dtype {source.dtype}) is {reprlib.repr(g)} of dtype {g.dtype}: a "
                            f"gradient rule returned something other than real numbers. Rules "
                            f"(Primitive.defvjp, custom_gradient's grad_fn) must return numbers "
                            f"of their input's shape")
        g = g.astype(source.dtype)
    elif not g.flags.writeable:  # a broadcast view: give the caller an array of its own
        g = g.copy()
    if g.shape != source.shape:
        raise RuntimeError(f"internal error: gradient of shape {g.shape} for a source of shape "
                           f"{source.shape}")
    out = Tensor.__new__(Tensor)
    out._value = g
    return out


def _wrong_count(prim: Primitive, grads: Any, n_inputs: int) -> TypeError:
    return TypeError(f"the all-inputs rule of primitive {prim.name!r} returned {len(grads)} "
                     f"gradient(s) for {n_inputs} input(s); return one entry per input (None "
                     f"for inputs it does not differentiate)")


def _stale(prim: Primitive, var: Variable) -> RuntimeError:
    return RuntimeError(
        f"Variable '{var.name}' was assigned after the tape recorded {prim.name!r} on it, and "
        f"that gradient rule needs the value it had then. Compute gradients before updating "
        f"variables, or record the computation again on a fresh tape."
    )


def check_versions(rec: Record) -> None:
    """Raise if a Variable input of `rec` was assigned since it was recorded (when the rules
    read input values, `rec.versions` is not None).

    Example:
        >>> import tape
        >>> w = tape.Variable(1.0, name="w")
        >>> with tape.Tape(persistent=True) as t:
        ...     y = w * w
        >>> check_versions(t._records[0])
    """
    for var, version in rec.versions or ():
        if var._version != version:
            raise _stale(rec.primitive, var)
