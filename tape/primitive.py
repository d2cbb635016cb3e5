"""Primitives: a NumPy forward plus vector-Jacobian product (VJP) rules.

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
outer tape records, which is how higher-order gradients arise). See `Primitive` for the second
form, a forward that keeps residuals and one rule for all inputs.

Each call that a tape tracks becomes a `tape.records.Record` on every `tape.records.Recorder` on
this thread's tape stack (`STATE.tapes`): see `tape.records`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tape.tensor as _tensor_module
from tape._state import STATE
from tape.records import report_call
from tape.tensor import Tensor

PRIMITIVES: dict[str, Primitive] = {}


class MissingGradientRule(LookupError):
    """Raised when a gradient flows into an input whose primitive declares no rule for it.

    Example:
        >>> import tape
        >>> issubclass(tape.MissingGradientRule, LookupError)
        True
    """


class _ArgnumRules:
    """Rules given as one function of the argument number (for variadic primitives)."""

    __slots__ = ("rule",)

    def __init__(self, rule: Callable[..., Any]) -> None:
        self.rule = rule

    def __getitem__(self, i: int) -> Callable[..., Any]:
        return functools.partial(self.rule, i)


class Primitive:
    """A differentiable operation: `forward(*arrays, **params)` plus VJP rules.

    **Per-input rules** (`defvjp`): one rule per positional input,
    `rule(g, ans, *inputs, **params) -> gradient for that input` (see the module docstring).

    **All-inputs rule** (`defvjp_all`), for operations whose input gradients share work: with
    `residuals=True` the forward returns `(output, residuals)` (anything: a tuple of arrays,
    a dict), kept in the record; one rule `rule(needed, g, ans, residuals, *inputs, **params)`
    returns a sequence with one entry per input, the gradient for each position in `needed`
    (the inputs the sweep wants, increasing) and anything (None) elsewhere. It runs once per
    record and backward pass. `residuals` are computed from raw arrays, so they are constants:
    while an outer tape records the backward pass (higher order) the rule receives tensors and
    `residuals=None`, and recomputes what it needs from the inputs with differentiable
    operations. `call_with_residuals` returns the residuals too.

    Example (the product `x * y`, both gradients from one rule):
        >>> import numpy as np, tape
        >>> def forward(x, y):
        ...     return x * y, (x, y)                  # (output, residuals)
        >>> def rule(needed, g, ans, residuals, x, y):
        ...     if residuals is not None:              # first order: raw arrays
        ...         x, y = residuals
        ...     return g * y, g * x                   # one entry per input
        >>> mul = tape.Primitive("mul_doc", forward, residuals=True, register=False)
        >>> mul = mul.defvjp_all(rule)
        >>> a, b = tape.Variable(3.0), tape.Variable(4.0)
        >>> with tape.Tape() as t:
        ...     y = mul(a, b)
        >>> [float(d) for d in t.gradient(y, [a, b])]
        [4.0, 3.0]

    `uses_inputs=False` declares that no rule reads the inputs' values (only their shapes),
    which lets gradients flow even when a Variable input was assigned after recording.
    Named primitives are listed in `tape.PRIMITIVES` (`register=False` keeps one private, e.g.
    for primitives made per call).
    Calling a primitive returns a `Tensor` and records the call on every tape that tracks one
    of its floating-point inputs. A list or tuple argument that holds tensors (`[a, b]`, also
    nested) is first packed with `tape.stack`, recorded, as TensorFlow packs one: gradients
    flow to `a` and `b`. (NumPy functions given such a list, `np.exp([a, b])`, convert it with
    `np.asarray` before tape sees it: the result is a plain array, as documented.)
    """

    def __init__(self, name: str, forward: Callable[..., Any], *, uses_inputs: bool = True,
                 residuals: bool = False, doc: str | None = None, register: bool = True
                 ) -> None:
        self.name = name
        self.__doc__ = doc or forward.__doc__
        self.forward = forward
        self.vjps: Any = ()
        self.vjp_all: Callable[..., Sequence[Any]] | None = None
        self.jvps: Any = ()
        self.jvp_all: Callable[..., Any] | None = None
        self.uses_inputs = uses_inputs
        self.residuals = residuals
        if register:
            if name in PRIMITIVES:
                raise ValueError(f"a primitive named {name!r} is already registered; choose "
                                 f"another name or pass register=False for a private one")
            PRIMITIVES[name] = self

    def defvjp(self, *rules: Callable[..., Any] | None) -> Primitive:
        """Set one rule per positional input, `None` for a non-differentiable input."""
        self._per_input_form("defvjp")
        self.vjps = rules
        return self

    def defvjp_argnum(self, rule: Callable[..., Any]) -> Primitive:
        """Set one rule `rule(argnum, g, ans, *inputs, **params)` for every input."""
        self._per_input_form("defvjp_argnum")
        self.vjps = _ArgnumRules(rule)
        return self

    def defvjp_all(self, rule: Callable[..., Sequence[Any]]) -> Primitive:
        """Set one rule `rule(needed, g, ans, residuals, *inputs, **params)` for all inputs.

        It returns one entry per input (the gradient at each position in `needed`); see the
        class docstring for `residuals`.

        Example:
            >>> import tape
            >>> add = tape.Primitive("add_doc", lambda x, y: x + y, register=False)
            >>> add = add.defvjp_all(lambda needed, g, ans, residuals, x, y: (g, g))
            >>> x = tape.Variable(1.0)
            >>> with tape.Tape() as t:
            ...     y = add(x, x)
            >>> float(t.gradient(y, x))
            2.0
        """
        self.vjp_all = rule
        self.vjps = ()
        return self

    def defjvp(self, *rules: Callable[..., Any] | None) -> Primitive:
        """Set one forward-mode (JVP) rule per positional input, `None` for a
        non-differentiable input: `rule(t, ans, *inputs, **params)` returns the output's
        tangent due to tangent `t` of that input (anything that broadcasts to the output's
        shape; the contributions of several inputs are added). See `tape.forward`.

        Example:
            >>> import tape
            >>> cube = tape.Primitive("cube_jvp_doc", lambda x: x ** 3, register=False)
            >>> cube = cube.defjvp(lambda t, ans, x: t * 3 * x ** 2)
            >>> x = tape.constant(2.0)
            >>> with tape.ForwardAccumulator(x, 1.0) as acc:
            ...     y = cube(x)
            >>> float(acc.jvp(y))
            12.0
        """
        self.jvps = rules
        self.jvp_all = None
        return self

    def defjvp_all(self, rule: Callable[..., Any]) -> Primitive:
        """Set one JVP rule `rule(tangents, ans, residuals, *inputs, **params)` for all inputs:
        `tangents` has one entry per input (None for an input without a tangent); it returns
        the output's tangent. `residuals` are the forward's (None while an outer tape records,
        as for `defvjp_all`).

        Example:
            >>> import tape
            >>> mul = tape.Primitive("mul_jvp_doc", lambda x, y: x * y, register=False)
            >>> mul = mul.defjvp_all(lambda ts, ans, residuals, x, y:
            ...     (0 if ts[0] is None else ts[0] * y) + (0 if ts[1] is None else x * ts[1]))
            >>> x = tape.constant(3.0)
            >>> with tape.ForwardAccumulator(x, 1.0) as acc:
            ...     y = mul(x, x)
            >>> float(acc.jvp(y))
            6.0
        """
        self.jvp_all = rule
        self.jvps = ()
        return self

    def missing_jvp(self, i: int) -> MissingGradientRule:
        return MissingGradientRule(
            f"primitive {self.name!r} has no forward-mode (JVP) rule for input {i}; define it "
            f"with {self.name}.defjvp(...), or use reverse mode (tape.Tape) instead"
        )

    def _per_input_form(self, method: str) -> None:
        if self.residuals:
            raise TypeError(f"primitive {self.name!r} keeps residuals (residuals=True), which "
                            f"only an all-inputs rule receives: use {self.name}.defvjp_all(rule) "
                            f"instead of {method}")
        self.vjp_all = None

    def missing_rule(self, i: int) -> MissingGradientRule:
        return MissingGradientRule(
            f"primitive {self.name!r} has no gradient rule for input {i}; define it with "
            f"{self.name}.defvjp(...) or wrap the computation in tape.stop_gradient"
        )

    def __repr__(self) -> str:
        return f"<tape.Primitive {self.name!r}>"

    def __call__(self, *args: Any, **params: Any) -> Tensor:
        # A list or tuple argument that holds tensors is packed with `tape.stack` (recorded, so
        # gradients flow), as TensorFlow converts one; tensors and arrays skip the check.
        if len(args) == 1:
            x = args[0]
            if isinstance(x, Tensor):
                vals: tuple[Any, ...] = (x._value,)
            elif type(x) is list or type(x) is tuple:
                args, vals = _pack_sequences(args)
            else:
                vals = (x,)
        elif len(args) == 2:
            x, y = args
            if isinstance(x, Tensor):
                if isinstance(y, Tensor):
                    vals = (x._value, y._value)
                elif type(y) is list or type(y) is tuple:
                    args, vals = _pack_sequences(args)
                else:
                    vals = (x._value, y)
            elif type(x) is list or type(x) is tuple or type(y) is list or type(y) is tuple:
                args, vals = _pack_sequences(args)
            else:
                vals = (x, y._value if isinstance(y, Tensor) else y)
        else:
            args, vals = _pack_sequences(args)
        try:
            ans = raw = self.forward(*vals, **params)
        except (ValueError, TypeError) as e:
            raise type(e)(_describe_failure(self.name, vals, e)) from e
        residuals = None
        if self.residuals:
            ans, residuals = _split(self, ans)
        try:
            kind = ans.dtype.kind
        except AttributeError:  # Python numbers in, Python number out
            ans = np.asarray(ans)
            kind = ans.dtype.kind
        out = _new_tensor(Tensor)
        out._value = ans
        tapes = STATE.tapes
        if tapes:
            report_call(self, args, vals, params, out, residuals, tapes, kind, raw)
        return out

    def call_with_residuals(self, *args: Any, **params: Any) -> tuple[Tensor, Any]:
        """Call the primitive; return its output and the residuals its forward kept (None for
        a primitive without `residuals=True`). Residuals are raw arrays: constants to tapes.

        Example:
            >>> import numpy as np, tape
            >>> p = tape.Primitive("halves", lambda x: (x / 2, x.size), residuals=True,
            ...                    register=False)
            >>> y, size = p.call_with_residuals(np.ones(3))
            >>> y.numpy(), size
            (array([0.5, 0.5, 0.5]), 3)
        """
        if not self.residuals:
            return self(*args, **params), None
        args, vals = _pack_sequences(args)
        try:
            raw = self.forward(*vals, **params)
        except (ValueError, TypeError) as e:
            raise type(e)(_describe_failure(self.name, vals, e)) from e
        ans, residuals = _split(self, raw)
        out = _new_tensor(Tensor)
        out._value = ans = ans if hasattr(ans, "dtype") else np.asarray(ans)
        tapes = STATE.tapes
        if tapes:
            report_call(self, args, vals, params, out, residuals, tapes, ans.dtype.kind, raw)
        return out, residuals


_new_tensor = object.__new__


def _pack_sequences(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(args, values): list/tuple arguments that hold tensors packed with `tape.stack`."""
    if any(type(a) is list or type(a) is tuple for a in args):
        args = tuple([_packed(a) if type(a) is list or type(a) is tuple else a for a in args])
    return args, tuple([a._value if isinstance(a, Tensor) else a for a in args])


def _packed(seq: list[Any] | tuple[Any, ...]) -> Any:
    """`seq` as one stacked tensor if it (or a nested list in it) holds a tensor, else as is.

    Example:
        >>> import tape
        >>> _packed([tape.constant(1.0), 2.0]).numpy()
        array([1., 2.])
    """
    items = [_packed(i) if type(i) is list or type(i) is tuple else i for i in seq]
    for i in items:
        if isinstance(i, Tensor):
            return _tensor_module._ops.stack(items)
    return seq


def _split(prim: Primitive, returned: Any) -> tuple[Any, Any]:
    """(output, residuals) from what a `residuals=True` forward returned."""
    if type(returned) is not tuple or len(returned) != 2:
        raise TypeError(f"primitive {prim.name!r} was made with residuals=True, so its forward "
                        f"must return a tuple (output, residuals); it returned a "
                        f"{type(returned).__name__}")
    return returned


def _describe_failure(name: str, vals: tuple[Any, ...], err: Exception) -> str:
    shapes = ", ".join(f"{getattr(v, 'shape', ())} {getattr(v, 'dtype', type(v).__name__)}"
                       for v in vals)
    return f"{name}: {err} (inputs: {shapes})"
