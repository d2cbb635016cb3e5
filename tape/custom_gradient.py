"""Extending the engine: `custom_gradient`, and defining a new primitive.

**A new primitive** is a NumPy forward plus one vector-Jacobian product (VJP) rule per
positional input; it is exactly how every built-in op is defined (see `tape/ops/`):

    >>> import numpy as np, tape
    >>> softplus = tape.Primitive("softplus_doc", lambda x: np.logaddexp(0, x), register=False)
    >>> softplus = softplus.defvjp(lambda g, ans, x: g * tape.sigmoid(x))
    >>> x = tape.Variable([0.0, 2.0])
    >>> with tape.Tape() as t:
    ...     y = softplus(x)
    >>> t.gradient(y, x).numpy().round(4)
    array([0.5   , 0.8808])

A rule `rule(g, ans, *inputs, **params)` gets the upstream gradient `g`, the forward's output
`ans` and the inputs, and returns the gradient for its input with that input's shape (undo
broadcasting with `tape.unbroadcast`), or None. Arrays go positionally and everything else
(axes, shapes, indices) by keyword. Write rules with NumPy functions, operators and tape ops:
they then run on raw arrays for first-order gradients and on tensors, recorded, when an outer
tape records the backward pass, which is what makes higher-order gradients work. Use
`defvjp_argnum(rule)` for a variadic primitive, `None` for a non-differentiable input, and
`Primitive(..., residuals=True).defvjp_all(rule)` for one rule that gives every input's
gradient from what the forward kept (see `tape.Primitive`).

**`custom_gradient`** (TensorFlow's semantics) decorates a function that returns
`(y, grad_fn)`: `grad_fn(upstream)` returns one gradient per positional argument (a single
value for one argument). If the function reads trainable Variables that are not arguments,
`grad_fn(upstream, variables=...)` is called with them and must return
`(input_gradients, variable_gradients)`. A `grad_fn` written with tape ops gives higher-order
gradients too. With several outputs, `grad_fn` receives one upstream gradient per output.
Each call is recorded as one call of the `custom_gradient` primitive, whose forward returns the
outputs already computed and whose all-inputs rule calls `grad_fn` (once per output that
receives a gradient, per backward pass).

Under `tape.function` (as `tf.custom_gradient` under `tf.function`) the function and its
`grad_fn` are traced like the rest of the step: their tape ops become kernels of the replayed
program, and the tensors `grad_fn` closes over are the replay's values of that call, so each
replay recomputes the forward and the gradient from the current inputs and Variables. What a
trace cannot replay is refused as anywhere in a traced step: converting a traced value inside
`grad_fn` (`float(g)`, `g.numpy()`) raises `TracingError` naming the line (or runs the step
eagerly with `fallback="eager"`), and a Python value `grad_fn` reads is read once, at trace time.

    >>> @tape.custom_gradient
    ... def clip_gradient(x):
    ...     return tape.identity(x), lambda g: tape.clip(g, -1.0, 1.0)
    >>> x = tape.Variable([1.0, 2.0])
    >>> with tape.Tape() as t:
    ...     y = tape.sum(clip_gradient(x) * 10)
    >>> t.gradient(y, x).numpy()
    array([1., 1.])
"""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Callable
from typing import Any

import numpy as np

from tape import nest
from tape._observe import Observer, observing, recording_tapes
from tape._state import STATE
from tape.ops._util import raw
from tape.primitive import Primitive
from tape.tensor import Tensor
from tape.utils import signatures


class _Call:
    """One call of a decorated function: its outputs, its `grad_fn`, the Variables it read."""

    __slots__ = ("name", "values", "grad_fn", "n_inputs", "variables", "jvp_fn")

    def __init__(self, name: str, values: list[Any], grad_fn: Callable[..., Any], n_inputs: int,
                 variables: list[Any], jvp_fn: Callable[..., Any] | None = None) -> None:
        self.name, self.values, self.grad_fn = name, values, grad_fn
        self.n_inputs, self.variables, self.jvp_fn = n_inputs, variables, jvp_fn

    def tangent(self, output: int, tangents: list[Any], inputs: tuple[Any, ...]) -> Any:
        """The tangent of `output` from `jvp_fn(primals, tangents)` (zeros for arguments
        without a tangent); refuses forward mode when no `jvp_fn` was given."""
        if self.jvp_fn is None:
            raise TypeError(
                f"custom_gradient function {self.name!r} has only a reverse-mode rule (grad_fn), "
                f"so forward mode (ForwardAccumulator, jvp, jacobian(mode='forward')) cannot go "
                f"through it; give it a forward-mode rule with @{self.name}.defjvp, a function "
                f"(primals, tangents) -> output tangents")
        for i, var in enumerate(self.variables, start=self.n_inputs):
            if tangents[i] is not None:
                raise TypeError(f"custom_gradient function {self.name!r} reads Variable "
                                f"'{var.name}', which has a tangent; its defjvp rule sees only "
                                f"the arguments: pass the Variable as an argument")
        primals = list(inputs[:self.n_inputs])
        filled = [np.zeros(np.shape(raw(x)), np.result_type(raw(x))) if t is None else t
                  for t, x in zip(tangents, primals)]
        outs = nest.flatten(self.jvp_fn(primals, filled))
        if len(outs) != len(self.values):
            raise ValueError(f"custom_gradient {self.name!r}: its defjvp rule returned "
                             f"{len(outs)} tangent(s) for {len(self.values)} output(s)")
        out = outs[output]
        if np.shape(out) != np.shape(self.values[output]):
            raise ValueError(f"custom_gradient {self.name!r}: its defjvp rule returned a "
                             f"tangent of shape {np.shape(out)} for output {output}, of shape "
                             f"{np.shape(self.values[output])}")
        return out

    def gradients(self, output: int, needed: list[int], g: Any, inputs: tuple[Any, ...]
                  ) -> list[Any]:
        """One gradient per input (arguments, then Variables) for upstream `g` on `output`:
        `grad_fn` runs once; the entries at `needed` are checked against the inputs' shapes."""
        grads = self._run(output, g)
        for i in needed:
            gi = grads[i]
            if gi is not None and np.asarray(raw(gi)).dtype.kind not in "biuf":
                raise TypeError(f"custom_gradient {self.name!r}: grad_fn returned "
                                f"{reprlib.repr(gi)} as gradient {i} (inputs first, then "
                                f"Variables read), which is not real numbers; return numbers of "
                                f"shape {np.shape(raw(inputs[i]))}")
            if gi is not None and np.shape(gi) != np.shape(raw(inputs[i])):
                what = (f"input {i}" if i < self.n_inputs
                        else f"Variable '{self.variables[i - self.n_inputs].name}'")
                raise ValueError(f"custom_gradient {self.name!r}: grad_fn returned a gradient "
                                 f"of shape {np.shape(gi)} for {what}, of shape "
                                 f"{np.shape(raw(inputs[i]))}")
        return grads if recording_tapes() else [raw(gi) for gi in grads]

    def _run(self, output: int, g: Any) -> list[Any]:
        upstream = [Tensor(np.zeros(np.shape(v), np.result_type(v))) for v in self.values]
        upstream[output] = _as_upstream(g)
        if self.variables:
            returned = self.grad_fn(*upstream, variables=self.variables)
            if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
                raise TypeError(f"custom_gradient {self.name!r}: the function reads Variables, "
                                f"so grad_fn must return (input_gradients, variable_gradients)")
            input_grads, variable_grads = nest.flatten(returned[0]), list(returned[1])
            if len(variable_grads) != len(self.variables):
                raise ValueError(f"custom_gradient {self.name!r}: grad_fn returned "
                                 f"{len(variable_grads)} variable gradients for "
                                 f"{len(self.variables)} Variables")
        else:
            input_grads, variable_grads = nest.flatten(self.grad_fn(*upstream)), []
        if len(input_grads) != self.n_inputs:
            raise ValueError(f"custom_gradient {self.name!r} takes {self.n_inputs} input(s) but "
                             f"its grad_fn returned {len(input_grads)} gradient(s)")
        return input_grads + variable_grads


def _as_upstream(g: Any) -> Tensor:
    """The upstream gradient `g` as a Tensor for `grad_fn`. A NumPy scalar (what a ufunc gives
    on 0-d arrays) becomes a 0-d array; under `tape.function` as a kernel, so that the replay
    converts the current gradient rather than the one seen at trace time."""
    if isinstance(g, Tensor):
        return g
    if not isinstance(g, np.ndarray):
        tracer = STATE.tracer
        g = np.asarray(g) if tracer is None else tracer.call(np.asarray, (g,), {})
    return Tensor(g)


def _forward(*inputs: Any, call: _Call, output: int) -> Any:
    return call.values[output]


def _vjp(needed: list[int], g: Any, ans: Any, residuals: None, *inputs: Any, call: _Call,
         output: int) -> list[Any]:
    return call.gradients(output, needed, g, inputs)


def _jvp(tangents: list[Any], ans: Any, residuals: None, *inputs: Any, call: _Call,
         output: int) -> Any:
    return call.tangent(output, tangents, inputs)


# The outputs are computed before the call is recorded, so the forward keeps no residuals; the
# all-inputs rule runs `grad_fn` once for every input that needs a gradient. Forward mode
# needs a rule given with `defjvp` (as JAX's custom_jvp beside custom_vjp).
custom_gradient_p = Primitive("custom_gradient", _forward).defvjp_all(_vjp).defjvp_all(_jvp)


def custom_gradient(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate `f(*args) -> (y, grad_fn)` to use `grad_fn` as its gradient (see the module).

    Example:
        >>> import tape
        >>> @tape.custom_gradient
        ... def log1pexp(x):
        ...     e = tape.exp(x)
        ...     return tape.log1p(e), lambda g: g * (1 - 1 / (1 + e))
        >>> x = tape.Variable(100.0)
        >>> with tape.Tape() as t:
        ...     y = log1pexp(x)
        >>> float(t.gradient(y, x))
        1.0

    Inside `tape.function`, `grad_fn` is traced and replayed with the current values:
        >>> import numpy as np
        >>> w = tape.Variable(0.0)
        >>> @tape.function
        ... def gradient_at(x):
        ...     with tape.Tape() as t:
        ...         y = log1pexp(w + x)
        ...     return t.gradient(y, w)
        >>> [float(gradient_at(np.array(v))) for v in (0.0, 100.0)], gradient_at.trace_count
        ([0.5, 1.0], 1)
    """
    return _CustomGradient(f)


class _CustomGradient:
    """A `custom_gradient` function; `defjvp(rule)` gives it a forward-mode rule.

    `rule(primals, tangents)` receives the positional arguments and one tangent per argument
    (zeros for arguments without one) and returns the outputs' tangents (one per output, in
    the output's structure). Without it, forward mode through the function is an error.

    Example:
        >>> import tape
        >>> @tape.custom_gradient
        ... def square(x):
        ...     return x * x, lambda g: g * 2 * x
        >>> @square.defjvp
        ... def _(primals, tangents):
        ...     return 2 * primals[0] * tangents[0]
        >>> x = tape.constant(3.0)
        >>> with tape.ForwardAccumulator(x, 1.0) as acc:
        ...     y = square(x)
        >>> float(acc.jvp(y))
        6.0
    """

    def __init__(self, f: Callable[..., Any]) -> None:
        functools.update_wrapper(self, f)
        self._f = f
        self._jvp_fn: Callable[..., Any] | None = None

    def defjvp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Set the forward-mode rule `rule(primals, tangents) -> output tangents`; returns it."""
        self._jvp_fn = rule
        return rule

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        f = self._f
        name = getattr(f, "__name__", "custom_gradient")
        read: list[Any] = []
        with observing(Observer(on_variable=read.append)):
            returned = f(*args, **kwargs)
        if not (isinstance(returned, tuple) and len(returned) == 2 and callable(returned[1])):
            raise TypeError(f"@custom_gradient function {name!r} must return (y, grad_fn), got "
                            f"{type(returned).__name__}")
        result, grad_fn = returned
        inputs = nest.flatten(list(args))
        passed = inputs + nest.flatten(list(kwargs.values()))
        variables = _unique(v for v in read if not any(v is a for a in passed))
        if variables and not _accepts_variables(grad_fn):
            raise TypeError(
                f"@custom_gradient function {name!r} reads the Variables "
                f"{[v.name for v in variables]}, so its grad_fn must accept a keyword argument "
                f"`variables` and return (input_gradients, variable_gradients), as in TensorFlow")
        outputs = nest.flatten(result)
        call = _Call(name, [raw(y) for y in outputs], grad_fn, len(inputs), variables,
                     self._jvp_fn)
        recorded = [custom_gradient_p(*inputs, *variables, call=call, output=j)
                    for j in range(len(outputs))]
        return nest.unflatten(result, recorded)


def _unique(variables: Any) -> list[Any]:
    return list({id(v): v for v in variables}.values())


def _accepts_variables(fn: Callable[..., Any]) -> bool:
    # no signature to read: let the call decide
    return signatures.accepts(fn, "variables", var_keyword=True, default=True)
