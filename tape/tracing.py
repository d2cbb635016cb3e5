"""`tape.function`: trace a step once, replay it as straight-line NumPy code.

The first call with a new input signature runs the function eagerly while a tracer (a
`tape.primitive.Recorder` that only watches, plus `STATE.tracer`) captures every kernel the
step runs: primitive forwards, the gradient rules and cotangent sums of the backward sweep,
the conversion of cotangents to gradients, Variable writes, and functions marked `kernel`
(an optimizer's `apply_gradients`, batch norm's running statistics). From that list it writes
one Python function, calling the same NumPy code on the same values in the same order, so a
replay is bit-identical to an eager call. Later calls with the same signature run it.

Inputs of a kernel are found by object identity: an argument, an earlier kernel's output, or a
constant captured by reference (a Variable's array is one: Variables are written in place, so
the replay reads their current value at that point of the program).
"""

from __future__ import annotations

import functools
import linecache
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tape._state import STATE
from tape.tensor import Tensor, Variable
from tape.utils import signatures

_TAPE_DIR = os.path.dirname(os.path.abspath(__file__))
_NOT_REGISTERED = (bool, int, str, type(None))
_RETRACE = object()  # what a replay returns when a guard fails
_MANY_TRACES = 5  # as TensorFlow: warn once after this many traces of one function
_new_tensor = object.__new__


class TracingError(RuntimeError):
    """A traced value was converted to a Python or NumPy value while `tape.function` traced.

    Such a value would be frozen into the replayed program (a data-dependent branch taken once
    and for all). Move the conversion out of the function, use `tape.where` for a choice that
    depends on data, or pass `fallback="eager"`.

    Example:
        >>> import tape
        >>> issubclass(tape.TracingError, RuntimeError)
        True
    """


def _as_tensor(v: Any) -> Tensor:
    t = _new_tensor(Tensor)
    t._value = v
    return t


def _user_line() -> str:
    """`file:line (code)` of the innermost caller outside the tape package."""
    frame = sys._getframe(1)
    while frame is not None and os.path.dirname(
            os.path.abspath(frame.f_code.co_filename)) == _TAPE_DIR:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "an unknown line"
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno} ({code})"


class _Tracer:
    """Captures the kernels of one eager run and writes the replay function from them.

    On `STATE.tapes` it is an observer that tracks nothing (so it never changes what tapes
    record or how they differentiate); `STATE.tracer` is what primitives, the backward sweep
    and Variables report to.
    """

    _observer = True
    _watch_accessed = False

    def __init__(self, name: str, fallback: bool) -> None:
        self._tracked: dict[int, Any] = {}
        self._notes: list[tuple[Any, ...]] = []
        self.name = name
        self.fallback = fallback
        self.failed: str | None = None  # with fallback: why this trace cannot be replayed
        self.known: dict[int, str] = {}  # id(value) -> expression in the replay function
        self.keep: list[Any] = []  # everything whose id is in `known` or a constant, alive
        self.ns: dict[str, Any] = {"_T": _as_tensor, "_RETRACE": _RETRACE}
        self.const_ids: dict[int, str] = {}
        self.guards: dict[int, tuple[Variable, np.ndarray]] = {}
        self.lines: list[str] = []
        self.n_args = 0

    # -- the Recorder protocol (an observer that tracks nothing) ----------------------------
    def _auto_watch(self, var: Variable) -> bool:
        return False

    def _add(self, record: Any) -> None:
        pass

    # -- names for values -------------------------------------------------------------------
    def argument(self, value: Any) -> str:
        name = f"a{self.n_args}"
        self.n_args += 1
        self.known[id(value)] = name
        self.keep.append(value)
        return name

    def _const(self, obj: Any) -> str:
        name = self.const_ids.get(id(obj))
        if name is None:
            name = self.const_ids[id(obj)] = f"c{len(self.const_ids)}"
            self.ns[name] = obj
            self.keep.append(obj)
        return name

    def _guard(self, var: Variable) -> None:
        if id(var) not in self.guards:
            self.guards[id(var)] = (var, var._value)
            self.keep.append(var)

    def _expr(self, x: Any) -> str | None:
        """The replay expression of `x`, or None if `x` is a constant."""
        e = self.known.get(id(x))
        if e is not None:
            return e
        t = type(x)
        if t is tuple or t is list:
            parts = [self._expr(v) for v in x]
            if all(p is None for p in parts):
                return None
            items = ", ".join(p if p is not None else self._const(v) for p, v in zip(parts, x))
            return f"({items},)" if t is tuple else f"[{items}]"
        if t is dict:
            parts = [self._expr(v) for v in x.values()]
            if all(p is None for p in parts):
                return None
            return "{" + ", ".join(f"{self._const(k)}: {p if p is not None else self._const(v)}"
                                   for (k, v), p in zip(x.items(), parts)) + "}"
        if isinstance(x, Tensor):
            if x._is_variable:
                self._guard(x)  # type: ignore[arg-type]
                return None
            e = self.known.get(id(x._value))
            return None if e is None else f"_T({e})"
        if t is np.ndarray and x.base is not None:
            return self._view(x)
        return None

    def _view(self, x: np.ndarray) -> str | None:
        """A NumPy view of a traced array taken outside tape ops: exactly a reshape (same
        memory, size and dtype, both contiguous) is replayed as one; anything else would be a
        frozen copy of a value that changes, so it is refused."""
        base = x.base
        while isinstance(base, np.ndarray) and id(base) not in self.known and \
                base.base is not None:
            base = base.base
        e = self.known.get(id(base))
        if e is None:
            return None
        assert isinstance(base, np.ndarray)
        if (x.size == base.size and x.dtype == base.dtype and x.flags.c_contiguous
                and base.flags.c_contiguous
                and x.__array_interface__["data"][0] == base.__array_interface__["data"][0]):
            name = f"r{len(self.lines)}"
            self.lines.append(f"{name} = {e}.reshape({x.shape!r})")
            self._register(x, name)
            return name
        self.unsupported("a NumPy view of a traced array", "it was taken with NumPy outside "
                         "tape ops, so the replay cannot rebuild it; use tape ops on tensors")
        return None

    def _arg(self, x: Any) -> str:
        e = self._expr(x)
        return self._const(x) if e is None else e

    def _register(self, obj: Any, expr: str) -> None:
        if type(obj) in _NOT_REGISTERED:
            return
        if isinstance(obj, Tensor):
            if not obj._is_variable:
                self._register(obj._value, f"{expr}._value")
            return
        self.known[id(obj)] = expr
        self.keep.append(obj)
        t = type(obj)
        if t is tuple or t is list:
            for i, v in enumerate(obj):
                self._register(v, f"{expr}[{i}]")
        elif t is dict:
            for k, v in obj.items():
                self._register(v, f"{expr}[{self._const(k)}]")

    def tainted(self, x: Tensor) -> bool:
        """Whether `x` depends on the arguments or on Variables (so it differs per call)."""
        return x._is_variable or id(x._value) in self.known

    # -- kernels ----------------------------------------------------------------------------
    def emit(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> str:
        """Add the call `fn(*args, **kwargs)` that returned `result`; returns its variable."""
        parts = [self._arg(a) for a in args]
        for k, v in kwargs.items():
            parts.append(f"{k}={self._arg(v)}" if k.isidentifier()
                         else f"**{{{self._const(k)}: {self._arg(v)}}}")
        out = f"v{len(self.lines)}"
        self.lines.append(f"{out} = {self._const(fn)}({', '.join(parts)})")
        self._register(result, out)
        return out

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
             ) -> Any:
        """Run `fn` as one kernel: eagerly now, with nothing inside it traced; again at
        every replay with its inputs re-bound."""
        STATE.tracer = None
        try:
            result = fn(*args, **kwargs)
        finally:
            STATE.tracer = self
        self.emit(fn, args, kwargs, result)
        return result

    def op(self, prim: Any, args: tuple[Any, ...], vals: tuple[Any, ...],
           params: dict[str, Any], raw: Any, ans: Any) -> None:
        """A primitive call: `raw = prim.forward(*vals, **params)` gave the output `ans`."""
        if prim.name == "custom_gradient":
            self.unsupported("a @tape.custom_gradient function",
                             "its grad_fn closes over the values of the traced call")
        for a in args:
            if isinstance(a, Variable):
                self._guard(a)
        out = self.emit(prim.forward, vals, params, raw)
        if ans is not (raw[0] if prim.residuals else raw):  # a Python number made an array
            self.lines.append(f"{out}a = {self._const(np.asarray)}"
                              f"({out}{'[0]' if prim.residuals else ''})")
            self._register(ans, f"{out}a")

    def compare(self, op: Callable[[Any, Any], Any], x: Tensor, other: Any) -> Any:
        """A comparison of tensors: a traced boolean Tensor when an operand is traced."""
        y = other._value if isinstance(other, Tensor) else other
        if not (self.tainted(x) or (isinstance(other, Tensor) and self.tainted(other))):
            return op(x._value, y)
        return _as_tensor(self.call(op, (x._value, y), {}))

    def converted(self, x: Tensor, what: str) -> None:
        """`x` is being turned into a Python or NumPy value (`what`); refuse if it is traced."""
        if not self.tainted(x):
            return
        where = _user_line()
        if self.fallback:
            self.failed = self.failed or f"{what} of a traced value at {where}"
            return
        raise TracingError(
            f"tape.function {self.name!r}: {what} of a traced value at {where} would freeze a "
            f"value that depends on the arguments or Variables into the replayed program. Move "
            f"the conversion out of the function (convert the value it returns), use "
            f"tape.where for a choice that depends on data, or pass fallback='eager' to run "
            f"{self.name!r} eagerly on every call")

    def unsupported(self, what: str, why: str) -> None:
        where = _user_line()
        if self.fallback:  # the call goes on eagerly; its trace is dropped
            self.failed = self.failed or f"{what} at {where}"
            return
        raise TracingError(f"tape.function {self.name!r}: {what} at {where} cannot be replayed "
                           f"({why}); call it outside the function, or pass fallback='eager' "
                           f"to run {self.name!r} eagerly on every call")

    def build(self, returned: Any) -> Callable[..., Any]:
        """The replay function `replay(a0, a1, ...) -> returned structure` (or `_RETRACE`)."""
        ret = self._arg(returned)
        head = [f"def replay({', '.join(f'a{i}' for i in range(self.n_args))}):"]
        if self.guards:
            checks = " or ".join(f"{self._const(var)}._value is not {self._const(arr)}"
                                 for var, arr in self.guards.values())
            head.append(f"    if {checks}:\n        return _RETRACE")
        body = [f"    {line}" for line in self.lines]
        source = "\n".join([*head, *body, f"    return {ret}"]) + "\n"
        code = compile(source, f"<tape.function {self.name}>", "exec")
        exec(code, self.ns)  # our own generated source, from this trace
        replay = self.ns["replay"]
        replay.source = source
        return replay  # type: ignore[no-any-return]


# -- hooks the engine calls -----------------------------------------------------------------
def kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark `fn` as one opaque step of a traced program: under `tape.function` it runs
    eagerly at trace time with nothing inside it traced, and again on every replay, with its
    array and tensor arguments re-bound (iterators such as `zip` are read into lists first).
    Eager calls are unchanged. Use it for code that computes on raw arrays or reads Python
    state per call (an optimizer step reading its schedule, a running statistic).

    Example:
        >>> import numpy as np, tape
        >>> w = tape.Variable([1.0, 2.0])
        >>> @tape.kernel
        ... def halve(v):
        ...     v.assign(np.asarray(v.numpy()) / 2)
        >>> step = tape.function(lambda: halve(w))
        >>> for _ in range(3):
        ...     step()
        >>> w.numpy(), step.trace_count
        (array([0.125, 0.25 ]), 1)
    """
    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        tracer = STATE.tracer
        if tracer is None:
            return fn(*args, **kwargs)
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        return tracer.call(fn, args, kwargs)

    return traced


def tracing() -> bool:
    """Whether `tape.function` is tracing on this thread right now.

    Example:
        >>> import tape
        >>> tape.tracing()
        False
        >>> tape.function(tape.tracing)()
        True
    """
    return STATE.tracer is not None


# -- the signature of a call ----------------------------------------------------------------
def _leaf_key(x: Any) -> Any:
    t = type(x)
    if t is np.ndarray or isinstance(x, np.generic):
        return (x.shape, x.dtype)
    if isinstance(x, Tensor):
        return ("var", id(x)) if x._is_variable else (x.shape, x.dtype)
    if t is tuple or t is list:
        return (t, tuple(_leaf_key(v) for v in x))
    if t is dict:
        return (dict, tuple((k, _leaf_key(v)) for k, v in x.items()))
    if t in (int, float, bool, str, complex) or x is None:
        return (t, x)  # Python values by value, as TensorFlow does
    return ("object", id(x))  # anything else (a model, an optimizer) by identity


def _array_leaves(x: Any, out: list[Any]) -> None:
    """Append the arrays of `x` (what a replay gets as arguments), in a fixed order."""
    t = type(x)
    if t is np.ndarray:
        out.append(x)
    elif isinstance(x, np.generic):
        out.append(np.asarray(x))
    elif isinstance(x, Tensor):
        if not x._is_variable:
            out.append(x._value)
    elif t is tuple or t is list:
        for v in x:
            _array_leaves(v, out)
    elif t is dict:
        for v in x.values():
            _array_leaves(v, out)


def _as_traced(x: Any, tracer: _Tracer | None) -> Any:
    """`x` with each array replaced by a Tensor (that the tracer knows as an argument)."""
    t = type(x)
    if t is np.ndarray or isinstance(x, np.generic):
        value = np.asarray(x)
        if tracer is not None:
            tracer.argument(value)
        return _as_tensor(value)
    if isinstance(x, Tensor):
        if tracer is not None and not x._is_variable:
            tracer.argument(x._value)
        return x
    if t is tuple or t is list:
        return t(_as_traced(v, tracer) for v in x)
    if t is dict:
        return {k: _as_traced(v, tracer) for k, v in x.items()}
    return x


def _alias_pattern(leaves: list[Any]) -> tuple[int, ...]:
    """For each array argument, the first position holding the same array object."""
    first: dict[int, int] = {}
    return tuple(first.setdefault(id(a), i) for i, a in enumerate(leaves))


class Function:
    """A function traced once per input signature and replayed; see `function`.

    `trace_count` is the number of traces so far; `replay_source(*args)` the generated code
    for the signature of `args` (for reading, after a call with such arguments).
    """

    def __init__(self, fn: Callable[..., Any], fallback: str = "error", validate: int = 0
                 ) -> None:
        if fallback not in ("error", "eager"):
            raise ValueError(f"tape.function: fallback must be 'error' or 'eager', got "
                             f"{fallback!r}")
        if int(validate) < 0:
            raise ValueError(f"tape.function: validate must be >= 0, got {validate!r}")
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._name = getattr(fn, "__name__", type(fn).__name__)
        self._fallback = fallback
        self._validate = int(validate)
        self._cache: dict[Any, Callable[..., Any]] = {}
        self._keys: list[Any] = []
        self._eager_only = False
        self._warned = False
        self.trace_count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if (STATE.tracer is not None  # inside another trace: inlined into it
                or self._eager_only
                or any(not t._observer for t in STATE.tapes)):  # a tape needs the operations
            return self._eager(args, kwargs)
        key = (_leaf_key(args), _leaf_key(kwargs) if kwargs else None)
        leaves: list[Any] = []
        _array_leaves(args, leaves)
        if kwargs:
            _array_leaves(kwargs, leaves)
        key = (key, _alias_pattern(leaves))
        replay = self._cache.get(key)
        if replay is not None:
            if self._validate:
                self._validate -= 1
                return self._validated(replay, args, kwargs, leaves)
            out = replay(*leaves)
            if out is not _RETRACE:
                return out
            del self._cache[key]  # a Variable's array was replaced: trace again
        return self._trace(key, args, kwargs)

    def _eager(self, args: Any, kwargs: Any) -> Any:
        return self._fn(*_as_traced(args, None), **_as_traced(kwargs, None))

    def _trace(self, key: Any, args: Any, kwargs: Any) -> Any:
        self.trace_count += 1
        self._keys.append(key)
        if self.trace_count > _MANY_TRACES and not self._warned:
            self._warned = True
            warnings.warn(self._retracing_message(), RuntimeWarning, stacklevel=3)
        tracer = _Tracer(self._name, self._fallback == "eager")
        traced_args = _as_traced(args, tracer)
        traced_kwargs = _as_traced(kwargs, tracer)
        STATE.tapes.insert(0, tracer)
        STATE.tracer = tracer
        try:
            returned = self._fn(*traced_args, **traced_kwargs)
        finally:
            STATE.tracer = None
            STATE.tapes.remove(tracer)
        if tracer.failed is not None:
            self._eager_only = True
            warnings.warn(f"tape.function {self._name!r} runs eagerly on every call: "
                          f"{tracer.failed} cannot be replayed", RuntimeWarning, stacklevel=3)
            return returned
        self._cache[key] = tracer.build(returned)
        return returned

    def _retracing_message(self) -> str:
        names = _parameter_names(self._fn)
        last, prev = self._keys[-1][0], self._keys[-2][0]
        changed = [names[i] if i < len(names) else f"argument {i}"
                   for i, (a, b) in enumerate(zip(last[0][1], prev[0][1])) if a != b]
        if last[1] != prev[1]:
            changed.append("keyword arguments")
        what = ", ".join(changed) or "the Variables it reads"
        return (f"tape.function {self._name!r} was traced {self.trace_count} times; the last "
                f"traces differ in {what}. Each new shape, dtype or Python value of an argument "
                f"traces again: pass varying numbers as arrays, keep shapes fixed (pad the last "
                f"batch), or call the function undecorated")

    def _validated(self, replay: Callable[..., Any], args: Any, kwargs: Any,
                   leaves: list[Any]) -> Any:
        """Run the call eagerly, then replay it from the same state; raise on any difference."""
        state = _State(replay)
        eager = self._eager(args, kwargs)
        after = state.capture()
        state.restore()
        out = replay(*leaves)
        if out is _RETRACE:
            raise TracingError(f"tape.function {self._name!r}: validate: a Variable read by "
                               f"the trace was replaced during the eager call")
        for what, a, b in [("returned value", eager, out), *state.compare(after)]:
            for x, y in zip(_flat(a), _flat(b), strict=True):
                if not np.array_equal(x, y, equal_nan=True) or np.shape(x) != np.shape(y):
                    raise TracingError(f"tape.function {self._name!r}: validate: the replay "
                                       f"differs from the eager call in the {what}")
        return out

    def replay_source(self, *args: Any, **kwargs: Any) -> str:
        """The generated replay code for the signature of these arguments (traced before)."""
        leaves: list[Any] = []
        _array_leaves(args, leaves)
        _array_leaves(kwargs, leaves)
        key = ((_leaf_key(args), _leaf_key(kwargs) if kwargs else None),
               _alias_pattern(leaves))
        try:
            return self._cache[key].source  # type: ignore[attr-defined, no-any-return]
        except KeyError:
            raise KeyError(f"tape.function {self._name!r} has no trace for this signature; "
                           f"call it with these arguments first") from None


def _parameter_names(fn: Callable[..., Any]) -> list[str]:
    return [p.name for p in signatures.parameters(fn) or ()]


def _flat(x: Any) -> list[Any]:
    if isinstance(x, Tensor):
        return [x._value]
    if isinstance(x, (list, tuple)):
        return [leaf for v in x for leaf in _flat(v)]
    if isinstance(x, dict):
        return [leaf for v in x.values() for leaf in _flat(v)]
    return [np.asarray(x)]


class _State:
    """The state a replay touches: Variables captured in it, and objects with a state dict
    (optimizers) whose methods it calls; saved so that `validate` can run a call twice."""

    def __init__(self, replay: Callable[..., Any]) -> None:
        ns = replay.__globals__
        self.variables = [v for v in ns.values() if isinstance(v, Variable)]
        owners = [getattr(v, "__self__", v) for v in ns.values()]
        self.stateful = list({id(o): o for o in owners
                              if callable(getattr(o, "state_dict", None))
                              and callable(getattr(o, "load_state_dict", None))}.values())
        self.saved = self.capture()

    def capture(self) -> tuple[list[Any], list[Any]]:
        return ([v.numpy() for v in self.variables],
                [{k: np.array(a, copy=True) for k, a in o.state_dict().items()}
                 for o in self.stateful])

    def restore(self) -> None:
        values, states = self.saved
        for var, value in zip(self.variables, values):
            var.assign(value)
        for o, state in zip(self.stateful, states):
            o.load_state_dict(state)

    def compare(self, other: tuple[list[Any], list[Any]]) -> list[tuple[str, Any, Any]]:
        now = self.capture()
        rows = [(f"Variable '{v.name}'", a, b)
                for v, a, b in zip(self.variables, other[0], now[0])]
        for o, a, b in zip(self.stateful, other[1], now[1]):
            rows += [(f"{type(o).__name__} state {k!r}", a[k], b[k]) for k in a]
        return rows


def function(fn: Callable[..., Any] | None = None, *, fallback: str = "error",
             validate: int = 0) -> Any:
    """Trace `fn` once per input signature, then replay the captured NumPy program.

    Semantics follow TensorFlow's `tf.function`:

    - **Trace.** The first call with a new signature runs `fn` eagerly (its result is the
      eager result) while every kernel it runs is captured: primitive forwards, the gradient
      rules and sums of `Tape.gradient`, Variable writes, `tape.kernel` functions (an
      optimizer's `apply_gradients`, batch norm's running statistics). Later calls with the
      same signature run the captured program instead of `fn`: the same NumPy calls on the
      same values in the same order, so the results are bit-identical to eager.
    - **Signature.** Array and tensor arguments by shape and dtype (inside `fn` they are
      `tape.Tensor`s); Python numbers, strings and flags by value; Variables and other objects
      by identity. Each new signature traces again (`trace_count`); after 5 traces a warning
      names the argument that keeps changing. A Variable whose array was replaced (not
      written in place) since the trace also traces again.
    - **Python runs once.** Python side effects (prints, appends, NumPy random draws, reading
      a global) happen at trace time only; their results are constants of the program.
      Converting a traced value to Python or NumPy inside `fn` (`float(t)`, `bool(t)`,
      `if t > 0:`, `int(t)`, `t.numpy()`, `np.asarray(t)`) would freeze a data-dependent
      choice, so it raises `TracingError` naming the line; move it out of `fn` (convert the
      returned value), or use `tape.where`. With `fallback="eager"` such a function runs
      eagerly on every call instead, after one warning. `@tape.custom_gradient` functions
      and higher-order gradients inside `fn` are refused the same way.
    - **Per-call state.** An optimizer's learning rate, schedule and hyperparameters are read
      at every call (`set_hyperparameters` takes effect at the next call, a schedule
      advances, `iterations` counts), and its non-finite check runs on every call, as eager.
    - **Results** are fresh arrays on every call.
    - **Not traced:** a call while an outer `Tape` records (it needs the operations), or from
      inside another traced function (inlined into that trace).
    - `validate=N` runs the first N replays twice, eagerly and replayed from the same state,
      and raises `TracingError` if returned values, Variables or optimizer state differ.

    Example:
        >>> import numpy as np, tape
        >>> from optim import Adam
        >>> w, opt = tape.Variable(0.0), Adam(0.1)
        >>> @tape.function
        ... def step(x):
        ...     with tape.Tape() as t:
        ...         cost = x[0] * w**2 + x[1] * w + x[2]
        ...     opt.apply_gradients(zip(t.gradient(cost, [w]), [w]))
        ...     return cost
        >>> x = np.array([1.0, -10.0, 25.0])
        >>> for _ in range(1000):
        ...     cost = step(x)
        >>> round(float(w), 3), step.trace_count, opt.iterations
        (5.0, 1, 1000)
    """
    if fn is None:
        return functools.partial(function, fallback=fallback, validate=validate)
    return Function(fn, fallback=fallback, validate=validate)

