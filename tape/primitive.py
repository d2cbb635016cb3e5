"""Primitives: a NumPy forward plus one vector-Jacobian product (VJP) rule per input.

This is the one mechanism every built-in op uses, and the public way to add a new one:

    >>> import numpy as np, tape
    >>> cube = tape.Primitive("cube", lambda x: x ** 3, register=False)  # a private example
    >>> cube.defvjp(lambda g, ans, x: g * 3 * x ** 2)   # doctest: +ELLIPSIS
    <tape.Primitive 'cube'>
    >>> x = tape.Variable(2.0)
    >>> with tape.Tape() as t:
    ...     y = cube(x)
    >>> float(t.gradient(y, x))
    12.0

A rule receives the upstream gradient `g`, the forward output `ans` and the forward inputs
(positionally) plus the keyword parameters, and returns the gradient for its input, already
reduced to that input's shape (use `tape.unbroadcast`). Rules written with NumPy functions and
operators work unchanged on raw arrays (first-order, nothing recorded) and on tensors (while an
outer tape records, which is how higher-order gradients arise).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from tape._state import STATE
from tape.tensor import Tensor, Variable

PRIMITIVES: dict[str, Primitive] = {}


class MissingGradientRule(LookupError):
    """Raised when a gradient flows into an input whose primitive declares no rule for it."""


class _ArgnumRules:
    """Rules given as one function of the argument number (for variadic primitives)."""

    __slots__ = ("rule",)

    def __init__(self, rule: Callable[..., Any]) -> None:
        self.rule = rule

    def __getitem__(self, i: int) -> Callable[..., Any]:
        return functools.partial(self.rule, i)


class Primitive:
    """A differentiable operation: `forward(*arrays, **params)` plus VJP rules.

    `uses_inputs=False` declares that no rule reads the inputs' values (only their shapes),
    which lets gradients flow even when a Variable input was assigned after recording.
    Named primitives are listed in `tape.PRIMITIVES` (`register=False` keeps one private, e.g.
    for primitives made per call).
    Calling a primitive returns a `Tensor` and records the call on every tape that tracks one
    of its floating-point inputs.
    """

    def __init__(self, name: str, forward: Callable[..., Any], *, uses_inputs: bool = True,
                 doc: str | None = None, register: bool = True) -> None:
        self.name = name
        self.__doc__ = doc or forward.__doc__
        self.forward = forward
        self.vjps: Any = ()
        self.uses_inputs = uses_inputs
        self.module = sys._getframe(1).f_globals.get("__name__", "")
        if register:
            if name in PRIMITIVES:
                raise ValueError(f"a primitive named {name!r} is already registered (in "
                                 f"{PRIMITIVES[name].module}); choose another name or pass "
                                 f"register=False for a private one")
            PRIMITIVES[name] = self

    def defvjp(self, *rules: Callable[..., Any] | None) -> Primitive:
        """Set one rule per positional input, `None` for a non-differentiable input."""
        self.vjps = rules
        return self

    def defvjp_argnum(self, rule: Callable[..., Any]) -> Primitive:
        """Set one rule `rule(argnum, g, ans, *inputs, **params)` for every input."""
        self.vjps = _ArgnumRules(rule)
        return self

    def missing_rule(self, i: int) -> MissingGradientRule:
        return MissingGradientRule(
            f"primitive {self.name!r} has no gradient rule for input {i}; define it with "
            f"{self.name}.defvjp(...) or wrap the computation in tape.stop_gradient"
        )

    def __repr__(self) -> str:
        return f"<tape.Primitive {self.name!r}>"

    def __call__(self, *args: Any, **params: Any) -> Tensor:
        if len(args) == 1:
            x = args[0]
            vals: tuple[Any, ...] = (x._value if isinstance(x, Tensor) else x,)
        elif len(args) == 2:
            x, y = args
            vals = (x._value if isinstance(x, Tensor) else x,
                    y._value if isinstance(y, Tensor) else y)
        else:
            vals = tuple([a._value if isinstance(a, Tensor) else a for a in args])
        try:
            ans = self.forward(*vals, **params)
        except (ValueError, TypeError) as e:
            raise type(e)(_describe_failure(self.name, vals, e)) from e
        try:
            kind = ans.dtype.kind
        except AttributeError:  # Python numbers in, Python number out
            ans = np.asarray(ans)
            kind = ans.dtype.kind
        out = _new_tensor(Tensor)
        out._value = ans
        tapes = STATE.tapes
        if tapes and kind in "fc":
            _record(self, args, vals, params, out, tapes)
        return out


_new_tensor = object.__new__


def _describe_failure(name: str, vals: tuple[Any, ...], err: Exception) -> str:
    shapes = ", ".join(f"{getattr(v, 'shape', ())} {getattr(v, 'dtype', type(v).__name__)}"
                       for v in vals)
    return f"{name}: {err} (inputs: {shapes})"


def _record(prim: Primitive, args: tuple[Any, ...], vals: tuple[Any, ...], params: dict[str, Any],
            out: Tensor, tapes: list[Any]) -> None:
    """Append the call to each recording tape that tracks one of its inputs.

    Everything a tape tracks is floating-point (watching checks it, and only floating results
    are recorded), so tracked inputs are exactly the inputs that need gradients.
    """
    versions = None
    for tape in tapes:
        tracked = tape._tracked
        live = []
        i = 0
        for a in args:
            if id(a) in tracked:
                live.append(i)
            elif (isinstance(a, Variable) and a.trainable and tape._watch_accessed
                  and tape._auto_watch(a)):
                live.append(i)
            i += 1
        if live:
            if versions is None and prim.uses_inputs:
                versions = [(a, a._version) for a in args if isinstance(a, Variable)]
            tape._records.append((prim, args, vals, params, out, live, versions))
            tracked[id(out)] = out
