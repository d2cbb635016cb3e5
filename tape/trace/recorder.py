"""The tracer: captures the kernels of one eager run as a list of `Instr`.

On `STATE.tapes` it is an observer that tracks nothing (so it never changes what tapes record
or how they differentiate); `STATE.tracer` is what primitives, the backward sweep and
Variables report to. Inputs of a kernel are found by object identity: an argument, an earlier
kernel's output, or a constant captured by reference (a Variable's array is one: Variables are
written in place, so the replay reads their current value at that point of the program).
"""

from __future__ import annotations

import linecache
import operator
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from tape._state import STATE
from tape.primitive import PRIMITIVES
from tape.tensor import Tensor, Variable
from tape.trace.signature import as_tensor

_TAPE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NOT_REGISTERED = (bool, int, str, type(None))
RETRACE = object()  # what a replay returns when a guard fails

# Kernels that are one NumPy ufunc, so a replay may give them an `out=` buffer: the same
# loop on the same operands, written into a buffer of the result's dtype and shape.
_UFUNC_OF: dict[Any, np.ufunc] = {
    operator.add: np.add, operator.sub: np.subtract, operator.mul: np.multiply,
    operator.truediv: np.true_divide, operator.neg: np.negative,
}
_PRIMITIVE_UFUNCS = {"matmul": (np.matmul, ()), "relu": (np.maximum, (0,))}


# The rules of 2-D matmul, `g @ b.T` and `a.T @ g`, as one np.matmul on views of the operands
# (their arguments: g, ans, a, b).
_MATMUL_RULES: dict[Any, Callable[[list[str]], list[str]]] = {
    PRIMITIVES["matmul"].vjps[0]: lambda p: [p[0], f"{p[3]}.T"],
    PRIMITIVES["matmul"].vjps[1]: lambda p: [f"{p[2]}.T", p[0]],
}


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


class Instr:
    """One line of the replay program: `out = expr`.

    - `out`: the variable it defines; `expr`: its right-hand side as source;
    - `result`: the value it gave at trace time (for aliasing and buffer shapes);
    - `reads`: the replay variables `expr` reads;
    - `opaque`: a `tape.kernel` function, which may keep what it is given;
    - `ufunc`, `operands`: set when the kernel is exactly `ufunc(*operands)` and may write
      into a preplanned buffer (`ufunc(*operands, out=buffer)`);
    - `errstate`: the `np.errstate` settings it ran under that differ from the trace's start
      (inside a `with np.errstate(...)` block), or None;
    - `shape_varies`: its result's shape may change from call to call (a `tape.kernel`
      function's, or an index with traced values);
    - `shapes`: (operand expression, shape at trace time) of its traced array operands;
    - `fn`, `args`, `exprs`: the kernel called with positional `args` and no keywords, and
      the replay expression of each (None for a constant), for `tape.trace.scalars`; `fn` is
      None for a call with keywords or a line that is no call;
    - `slots`: for a `tape.kernel(floats=True)` function, its expression with each 0-d
      float64 argument as a slot `\x00k\x00`, and (value expression, object expression) of
      slot k: what `tape.trace.scalars` fills in.
    """

    __slots__ = ("out", "expr", "result", "reads", "opaque", "ufunc", "operands", "errstate",
                 "shape_varies", "shapes", "fn", "args", "exprs", "slots")

    def __init__(self, out: str, expr: str, result: Any, reads: list[str], opaque: bool = False,
                 ufunc: str | None = None, operands: list[str] | None = None) -> None:
        self.out, self.expr, self.result, self.reads = out, expr, result, reads
        self.opaque, self.ufunc, self.operands = opaque, ufunc, operands
        self.errstate: dict[str, str] | None = None
        self.shape_varies = opaque
        self.shapes: list[tuple[str, tuple[int, ...]]] = []
        self.fn: Any = None
        self.args: tuple[Any, ...] = ()
        self.exprs: list[str | None] = []
        self.slots: tuple[str, list[tuple[str, str]]] | None = None


def _user_line() -> str:
    """`file:line (code)` of the innermost caller outside the tape package."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _TAPE_DIR + os.sep):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "an unknown line"
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno} ({code})"


class Tracer:
    """Captures the kernels of one eager run (see the module docstring)."""

    _observer = True
    _watch_accessed = False

    def __init__(self, name: str, fallback: bool) -> None:
        self._tracked: dict[int, Any] = {}
        self._notes: list[tuple[Any, ...]] = []
        self.name = name
        self.fallback = fallback
        self.failed: str | None = None  # with fallback: why this trace cannot be replayed
        self.known: dict[int, str] = {}  # id(value) -> expression in the replay function
        self.roots: dict[str, str] = {}  # expression -> the replay variable it reads
        self.keep: list[Any] = []  # everything whose id is in `known` or a constant, alive
        self.ns: dict[str, Any] = {"_T": as_tensor, "_RETRACE": RETRACE}
        self.const_ids: dict[int, str] = {}
        self.guards: dict[int, tuple[Variable, np.ndarray]] = {}
        self.program: list[Instr] = []
        self.n_args = 0
        self._reads: list[str] = []  # replay variables read by the expressions made so far
        self.errstate: dict[str, Any] = dict(np.geterr())  # at the start of the trace

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
        self.roots[name] = name
        self.keep.append(value)
        return name

    def const(self, obj: Any) -> str:
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

    def _known(self, x: Any) -> str | None:
        e = self.known.get(id(x))
        if e is not None:
            self._reads.append(self.roots[e])
        return e

    def _expr(self, x: Any, slots: list[tuple[str, str]] | None = None) -> str | None:
        """The replay expression of `x`, or None if `x` is a constant. With `slots`, each
        traced 0-d float64 value (an array, a NumPy scalar, or a tensor of one) is written as
        a slot `\x00k\x00`, and (its value's expression, its own) is appended to `slots`."""
        e = self._known(x)
        if e is not None:
            if slots is not None:
                value = x._value if isinstance(x, Tensor) else x
                if is_float64_scalar(value):
                    slots.append((f"{e}._value" if value is not x else e, e))
                    return f"\x00{len(slots) - 1}\x00"
            return e
        t = type(x)
        if t is tuple or t is list:
            parts = [self._expr(v, slots) for v in x]
            if all(p is None for p in parts):
                return None
            items = ", ".join(p if p is not None else self.const(v) for p, v in zip(parts, x))
            return f"({items},)" if t is tuple else f"[{items}]"
        if t is dict:
            parts = [self._expr(v, slots) for v in x.values()]
            if all(p is None for p in parts):
                return None
            return "{" + ", ".join(f"{self.const(k)}: {p if p is not None else self.const(v)}"
                                   for (k, v), p in zip(x.items(), parts)) + "}"
        if isinstance(x, Tensor):
            if x._is_variable:
                self._guard(x)  # type: ignore[arg-type]
                return None
            e = self._known(x._value)
            if e is None:
                return None
            if slots is not None and is_float64_scalar(x._value):
                slots.append((e, f"_T({e})"))
                return f"\x00{len(slots) - 1}\x00"
            return f"_T({e})"
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
            name = f"r{len(self.program)}"
            self.program.append(Instr(name, f"{e}.reshape({x.shape!r})", x, [self.roots[e]]))
            self._register(x, name, name)
            self._reads.append(name)
            return name
        self.unsupported("a NumPy view of a traced array", "it was taken with NumPy outside "
                         "tape ops, so the replay cannot rebuild it; use tape ops on tensors")
        return None

    def arg(self, x: Any) -> str:
        e = self._expr(x)
        return self.const(x) if e is None else e

    def _register(self, obj: Any, expr: str, root: str) -> None:
        if type(obj) in _NOT_REGISTERED:
            return
        if isinstance(obj, Tensor):
            if not obj._is_variable:  # a kernel's tensor is passed on as it is, not rewrapped
                self.known[id(obj)] = expr
                self.roots[expr] = root
                self.keep.append(obj)
                self._register(obj._value, f"{expr}._value", root)
            return
        self.known[id(obj)] = expr
        self.roots[expr] = root
        self.keep.append(obj)
        t = type(obj)
        if t is tuple or t is list:
            for i, v in enumerate(obj):
                self._register(v, f"{expr}[{i}]", root)
        elif t is dict:
            for k, v in obj.items():
                self._register(v, f"{expr}[{self.const(k)}]", root)

    def _traced(self, x: Any) -> bool:
        """Whether `x` (nested lists, tuples, dicts and tensors opened) holds a traced value."""
        if id(x) in self.known:
            return True
        if isinstance(x, Tensor):
            return self.tainted(x)
        if isinstance(x, (tuple, list)):
            return any(self._traced(v) for v in x)
        if isinstance(x, dict):
            return any(self._traced(v) for v in x.values())
        return False

    def tainted(self, x: Tensor) -> bool:
        """Whether `x` depends on the arguments or on Variables (so it differs per call)."""
        return x._is_variable or id(x._value) in self.known

    # -- kernels ----------------------------------------------------------------------------
    def emit(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any,
             opaque: bool = False, ufunc: Any = None, extra: tuple[Any, ...] = (),
             operands: Callable[[list[str]], list[str]] | None = None,
             floats: bool = False) -> str:
        """Add the call `fn(*args, **kwargs)` that returned `result`; returns its variable.
        With `ufunc`, the call is `ufunc(*args, *extra)` (or `ufunc(*operands(args))`) and
        may get an `out=` buffer. `floats`: `fn` takes Python floats for 0-d float64 values."""
        self._reads = []
        exprs = [self._expr(a) for a in args]
        parts = [self.const(a) if e is None else e for a, e in zip(args, exprs)]
        for k, v in kwargs.items():
            parts.append(f"{k}={self.arg(v)}" if k.isidentifier()
                         else f"**{{{self.const(k)}: {self.arg(v)}}}")
        out = f"v{len(self.program)}"
        instr = Instr(out, f"{self.const(fn)}({', '.join(parts)})", result, self._reads, opaque)
        if not kwargs:
            instr.fn, instr.args, instr.exprs = fn, args, exprs
        if floats:
            slots: list[tuple[str, str]] = []
            with_slots = [self._expr(v, slots) for v in (*args, *kwargs.values())]
            if slots:
                parts = [self.const(v) if e is None else e
                         for v, e in zip((*args, *kwargs.values()), with_slots)]
                parts[len(args):] = [f"**{{{self.const(k)}: {p}}}"
                                     for k, p in zip(kwargs, parts[len(args):])]
                instr.slots = (f"{self.const(fn)}({', '.join(parts)})", slots)
        if (ufunc is not None and not kwargs and type(result) is np.ndarray and result.ndim
                and not any(type(a) not in (np.ndarray, float, int) and
                            not isinstance(a, (np.generic, Tensor)) for a in args)):
            instr.ufunc = self.const(ufunc)
            instr.operands = (operands(parts) if operands is not None
                              else parts + [repr(e) for e in extra])
            instr.shapes = [(p, a.shape) for a, p in zip(args, parts)
                            if isinstance(a, (np.ndarray, np.generic)) and p not in self.ns]
        now: dict[str, Any] = dict(np.geterr())
        if now != self.errstate:
            instr.errstate = {k: v for k, v in now.items() if self.errstate[k] != v}
        self.program.append(instr)
        self._register(result, out, out)
        return out

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             opaque: bool = False, floats: bool = False) -> Any:
        """Run `fn` as one kernel: eagerly now, with nothing inside it traced; again at
        every replay with its inputs re-bound. `opaque` for a `tape.kernel` function (it may
        keep references to its arguments); the engine's own kernels (rules, sums, writes)
        keep none. `floats`: `fn` takes Python floats for 0-d float64 arguments."""
        if fn is PRIMITIVES["custom_gradient"].vjp_all:  # grad_fn traced: its ops are kernels
            return fn(*args, **kwargs)
        STATE.tracer = None
        try:
            result = fn(*args, **kwargs)
        finally:
            STATE.tracer = self
        ufunc = operands = None
        if not opaque:  # the engine's kernels (a tape.kernel function may be unhashable)
            ufunc = _UFUNC_OF.get(fn)
            if fn in _MATMUL_RULES and all(getattr(a, "ndim", 0) == 2 for a in args[2:4]):
                ufunc, operands = np.matmul, _MATMUL_RULES[fn]
        self.emit(fn, args, kwargs, result, opaque, ufunc=ufunc, operands=operands,
                  floats=floats)
        return result

    def op(self, prim: Any, args: tuple[Any, ...], vals: tuple[Any, ...],
           params: dict[str, Any], raw: Any, ans: Any) -> None:
        """A primitive call: `raw = prim.forward(*vals, **params)` gave the output `ans`."""
        for a in args:
            if isinstance(a, Variable):
                self._guard(a)
        if prim.name == "custom_gradient":  # its outputs are its function's, traced already
            return
        ufunc, extra = _ufunc_of(prim)
        out = self.emit(prim.forward, vals, params, raw, ufunc=ufunc, extra=extra)
        if (prim.name == "getitem" and self._traced(vals[1:])) or self._traced(params):
            self.program[-1].shape_varies = True  # an index or a parameter from the data
        if ans is not (raw[0] if prim.residuals else raw):  # a Python number made an array
            name = f"{out}a"
            value = f"{out}{'[0]' if prim.residuals else ''}"
            instr = Instr(name, f"{self.const(np.asarray)}({value})", ans, [out])
            instr.fn, instr.exprs = np.asarray, [value]
            instr.args = (raw[0] if prim.residuals else raw,)
            self.program.append(instr)
            self._register(ans, name, name)

    def compare(self, op: Callable[[Any, Any], Any], x: Tensor, other: Any) -> Any:
        """A comparison of tensors: a traced boolean Tensor when an operand is traced."""
        y = other._value if isinstance(other, Tensor) else other
        if not (self.tainted(x) or (isinstance(other, Tensor) and self.tainted(other))):
            return op(x._value, y)
        return as_tensor(self.call(op, (x._value, y), {}))

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


def is_float64_scalar(x: Any) -> bool:
    """Whether `x` is a 0-d float64 value: a NumPy float64 scalar or a 0-d float64 array.

    Example:
        >>> is_float64_scalar(np.float64(1.0)), is_float64_scalar(np.zeros((), np.float32))
        (True, False)
    """
    t = type(x)
    return t is np.float64 or (t is np.ndarray and x.shape == () and x.dtype == np.float64)


def _ufunc_of(prim: Any) -> tuple[Any, tuple[Any, ...]]:
    """(ufunc, extra operands) when `prim`'s forward is exactly that ufunc call, else None."""
    if prim.residuals:
        return None, ()
    fwd = prim.forward
    if isinstance(fwd, np.ufunc):
        return fwd, ()
    ufunc = _UFUNC_OF.get(fwd)
    if ufunc is not None:
        return ufunc, ()
    name = prim.name
    if name in _PRIMITIVE_UFUNCS and PRIMITIVES.get(name) is prim:  # the built-in one
        return _PRIMITIVE_UFUNCS[name]
    return None, ()
