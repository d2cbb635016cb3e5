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
`defvjp_argnum(rule)` for a variadic primitive, `None` for a non-differentiable input.

**`custom_gradient`** (TensorFlow's semantics) decorates a function that returns
`(y, grad_fn)`: `grad_fn(upstream)` returns one gradient per positional argument (a single
value for one argument). If the function reads trainable Variables that are not arguments,
`grad_fn(upstream, variables=...)` is called with them and must return
`(input_gradients, variable_gradients)`. A `grad_fn` written with tape ops gives higher-order
gradients too. With several outputs, `grad_fn` receives one upstream gradient per output.
Each call is recorded as one call of the `custom_gradient` primitive, whose forward returns the
outputs already computed and whose VJP calls `grad_fn` (once per backward pass).

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
import inspect
import reprlib
from collections.abc import Callable
from typing import Any

import numpy as np

from tape import nest
from tape._observe import Observer, observing, recording_tapes
from tape.ops._util import raw
from tape.primitive import Primitive
from tape.tensor import Tensor


class _Call:
    """One call of a decorated function: its outputs, its `grad_fn`, the Variables it read."""

    __slots__ = ("name", "values", "grad_fn", "n_inputs", "variables", "_cache")

    def __init__(self, name: str, values: list[Any], grad_fn: Callable[..., Any], n_inputs: int,
                 variables: list[Any]) -> None:
        self.name, self.values, self.grad_fn = name, values, grad_fn
        self.n_inputs, self.variables = n_inputs, variables
        self._cache: tuple[Any, ...] | None = None

    def vjp(self, output: int, i: int, g: Any, x: Any) -> Any:
        # The backward sweep asks for the live inputs in increasing order with the same `g`:
        # grad_fn runs on the first request and its result serves the rest of that record.
        c = self._cache
        if c is None or c[0] != output or c[1] is not g or i <= c[2]:
            grads = self._run(output, g)
        else:
            grads = c[3]
        last = i == self.n_inputs + len(self.variables) - 1
        self._cache = None if last else (output, g, i, grads)
        gi = grads[i]
        if gi is not None and np.asarray(raw(gi)).dtype.kind not in "biuf":
            raise TypeError(f"custom_gradient {self.name!r}: grad_fn returned {reprlib.repr(gi)} "
                            f"as gradient {i} (inputs first, then Variables read), which is not "
                            f"real numbers; return numbers of shape {np.shape(raw(x))}")
        if gi is not None and np.shape(gi) != np.shape(raw(x)):
            what = (f"input {i}" if i < self.n_inputs
                    else f"Variable '{self.variables[i - self.n_inputs].name}'")
            raise ValueError(f"custom_gradient {self.name!r}: grad_fn returned a gradient of "
                             f"shape {np.shape(gi)} for {what}, of shape {np.shape(raw(x))}")
        return gi if recording_tapes() else raw(gi)

    def _run(self, output: int, g: Any) -> list[Any]:
        upstream = [Tensor(np.zeros(np.shape(v), np.result_type(v))) for v in self.values]
        upstream[output] = g if isinstance(g, Tensor) else Tensor(g)
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


def _forward(*inputs: Any, call: _Call, output: int) -> Any:
    return call.values[output]


def _vjp(i: int, g: Any, ans: Any, *inputs: Any, call: _Call, output: int) -> Any:
    return call.vjp(output, i, g, inputs[i])


custom_gradient_p = Primitive("custom_gradient", _forward).defvjp_argnum(_vjp)


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
    """
    name = getattr(f, "__name__", "custom_gradient")

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
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
        call = _Call(name, [raw(y) for y in outputs], grad_fn, len(inputs), variables)
        recorded = [custom_gradient_p(*inputs, *variables, call=call, output=j)
                    for j in range(len(outputs))]
        return nest.unflatten(result, recorded)

    return wrapper


def _unique(variables: Any) -> list[Any]:
    return list({id(v): v for v in variables}.values())


def _accepts_variables(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return True
    return any(p.kind is p.VAR_KEYWORD or (p.name == "variables" and p.kind in (
        p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) for p in params)
