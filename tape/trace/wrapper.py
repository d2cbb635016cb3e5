"""`tape.function`: trace a step once, replay it as straight-line NumPy code.

The first call with a new input signature runs the function eagerly while a tracer
(`tape.trace.recorder`) captures every kernel the step runs: primitive forwards, the gradient
rules and cotangent sums of the backward sweep, the conversion of cotangents to gradients,
Variable writes, and functions marked `kernel` (an optimizer's `apply_gradients`, batch norm's
running statistics). `tape.trace.codegen` writes one Python function from that list, calling
the same NumPy code on the same values in the same order, so a replay is bit-identical to an
eager call. Later calls with the same signature (`tape.trace.signature`) run it.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from tape._state import STATE
from tape.trace import signature
from tape.trace.codegen import build
from tape.trace.recorder import RETRACE, Tracer, TracingError
from tape.trace.signature import EMPTY_KEY, call_key
from tape.trace.validate import State, differ

_MANY_TRACES = 5  # as TensorFlow: warn once after this many traces of one function
_NO_LEAVES: list[Any] = []  # the leaves of a call without arguments (never changed)


def kernel(fn: Callable[..., Any] | None = None, *, floats: bool = False) -> Any:
    """Mark `fn` as one opaque step of a traced program: under `tape.function` it runs
    eagerly at trace time with nothing inside it traced, and again on every replay, with its
    array and tensor arguments re-bound (iterators such as `zip` are read into lists first).
    Eager calls are unchanged. Use it for code that computes on raw arrays or reads Python
    state per call (an optimizer step reading its schedule, a running statistic).

    `kernel(fn, floats=True)` (or `@kernel(floats=True)`) declares that `fn` gives the same
    result when a 0-d float64 argument (an array, NumPy scalar or tensor of one, also inside
    lists, tuples and dicts) is passed as a Python float of the same value: a replay whose
    value is held as a Python float (see `tape.function`) then passes it as is.

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
        >>> seen = []
        >>> @tape.kernel(floats=True)
        ... def show(g):
        ...     seen.append(type(g).__name__)
        >>> double = tape.function(lambda x: show(x * 2.0))
        >>> double(np.array(1.5)); double(np.array(1.5))
        >>> seen  # traced with a tensor, replayed with a float
        ['Tensor', 'float']
    """
    if fn is None:
        return functools.partial(kernel, floats=floats)
    inner = fn

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        tracer = STATE.tracer
        if tracer is None:
            return inner(*args, **kwargs)
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        return tracer.call(inner, args, kwargs, opaque=True, floats=floats)

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


class Function:
    """A function traced once per input signature and replayed; see `function`.

    `trace_count` is the number of traces so far; `replay_source(*args)` the generated code
    for the signature of `args` (for reading, after a call with such arguments).

    Example:
        >>> import numpy as np, tape
        >>> double = tape.function(lambda x: x * 2.0)
        >>> double(np.ones(2)).numpy(), double(np.ones(3)).numpy().shape, double.trace_count
        (array([2., 2.]), (3,), 2)
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
        state = STATE
        tapes = state.tapes
        if (state.tracer is not None  # inside another trace: inlined into it
                or self._eager_only
                or (tapes and any(not t._observer for t in tapes))):  # a tape needs the ops
            return self._eager(args, kwargs)
        if args or kwargs:
            key, leaves = call_key(args, kwargs)
        else:
            key, leaves = EMPTY_KEY, _NO_LEAVES
        replay = self._cache.get(key)
        if replay is not None:
            if self._validate:
                self._validate -= 1
                return self._validated(replay, args, kwargs, leaves)
            lock = replay.lock  # type: ignore[attr-defined]
            if lock is None:
                out = replay(*leaves)
            elif lock.acquire(blocking=False):
                try:
                    out = replay(*leaves)
                finally:
                    lock.release()
            else:  # its buffers are in use by another thread: the same result, eagerly
                return self._eager(args, kwargs)
            if out is not RETRACE:
                return out
            del self._cache[key]  # a Variable's array was replaced: trace again
        return self._trace(key, args, kwargs)

    def _eager(self, args: Any, kwargs: Any) -> Any:
        return self._fn(*signature.as_traced(args, None), **signature.as_traced(kwargs, None))

    def _trace(self, key: Any, args: Any, kwargs: Any) -> Any:
        self.trace_count += 1
        self._keys.append(key)
        if self.trace_count > _MANY_TRACES and not self._warned:
            self._warned = True
            warnings.warn(signature.retracing_message(self._name, self._fn, self.trace_count,
                                                    self._keys), RuntimeWarning, stacklevel=3)
        tracer = Tracer(self._name, self._fallback == "eager")
        traced_args = signature.as_traced(args, tracer.argument)
        traced_kwargs = signature.as_traced(kwargs, tracer.argument)
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
        self._cache[key] = build(tracer, returned)
        return returned

    def _validated(self, replay: Callable[..., Any], args: Any, kwargs: Any,
                   leaves: list[Any]) -> Any:
        """Run the call eagerly, then replay it from the same state; raise on any difference."""
        state = State(replay)
        eager = self._eager(args, kwargs)
        after = state.capture()
        state.restore()
        out = replay(*leaves)
        if out is RETRACE:
            raise TracingError(f"tape.function {self._name!r}: validate: a Variable read by "
                               f"the trace was replaced during the eager call")
        for what, a, b in [("returned value", eager, out), *state.compare(after)]:
            if differ(a, b):
                raise TracingError(f"tape.function {self._name!r}: validate: the replay "
                                   f"differs from the eager call in the {what}")
        return out

    def replay_source(self, *args: Any, **kwargs: Any) -> str:
        """The generated replay code for the signature of these arguments (traced before).

        Example:
            >>> import numpy as np, tape
            >>> f = tape.function(lambda x: tape.exp(x) + 1.0)
            >>> _ = f(np.zeros(2))
            >>> print(f.replay_source(np.zeros(2)).splitlines()[0])
            def replay(a0):
        """
        key = signature.call_key(args, kwargs)[0]
        try:
            return self._cache[key].source  # type: ignore[attr-defined, no-any-return]
        except KeyError:
            raise KeyError(f"tape.function {self._name!r} has no trace for this signature; "
                           f"call it with these arguments first") from None


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
      eagerly on every call instead, after one warning. `@tape.custom_gradient` functions,
      higher-order gradients (a tape recording another tape's gradient, `tape.hvp`) and
      forward mode are traced through: the function's forward, its `grad_fn`, the rules of
      a recorded backward sweep and tangent rules become kernels that every replay
      recomputes from the current values; inside them too a conversion raises
      `TracingError` and a Python value read is a constant.
    - **Per-call state.** An optimizer's learning rate, schedule and hyperparameters are read
      at every call (`set_hyperparameters` takes effect at the next call, a schedule
      advances, `iterations` counts), and its non-finite check runs on every call, as eager.
    - **Scalars.** Values that are 0-d float64 (NumPy scalars, 0-d arrays, Variables of
      shape ()) computed by plain arithmetic (add, subtract, multiply, divide, negative,
      powers by 2, square, sqrt, and their gradient rules) are replayed as Python floats:
      the same IEEE operations, so the same bits; any result NumPy would flag (overflow,
      underflow, invalid, division by zero) is recomputed by NumPy's own kernels, so
      warnings and `np.errstate` apply as in eager. Other kernels get the values as the
      NumPy objects they got when traced.
    - **Results** are fresh arrays on every call. Intermediate values of single-ufunc
      kernels are written into buffers allocated once per trace and reused when dead
      (`out=`, same bits); while one thread replays a trace, a call from another thread with
      the same signature runs eagerly.
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

