"""Scalar specialisation of a replay: 0-d float64 values held as Python floats.

A kernel of the trace whose operands and result are 0-d float64 values (NumPy float64
scalars, 0-d float64 arrays, Python numbers) and that is in `TABLE` (the built-in primitives'
forwards and gradient rules for add, subtract, multiply, divide, negative, power by 2, square
and sqrt, cotangent sums, `backprop.finish` and `np.asarray` of such a value) is written as
inline Python float arithmetic: the same IEEE double operations, so the same bits (`TABLE`'s
entries are checked bit for bit against the NumPy kernels, special values included). The
mappings follow NumPy exactly: a 0-d array to the power 2 is `np.square` (`x * x`), a NumPy
float64 scalar to the power 2 is C `pow` (Python's `x ** 2.0`).

Consecutive such kernels form a run, written as

    try:
        f0 = float(c0)            # a 0-d array (a Variable's value) read where eager reads it
        s0 = f0 * f0
        ...
        if not (<no floating-point exception>):
            raise _SlowPath
    except _SLOW:                 # a division by zero, a non-finite or tiny result, ...
        <the run's NumPy kernels>  # as eager, with its warnings or errors under np.errstate
        s0 = float(v0) ...

The checks send every result that NumPy could have flagged (overflow, underflow, invalid,
division by zero: any non-finite or tiny result that is not an exact zero) to the NumPy
kernels themselves, so warnings and `np.errstate` behave as eager. Where a value leaves the
run (any other kernel reads it, or it is returned) it becomes the object it was at trace
time (`np.float64(s)`, `np.array(s)`, a tensor of that); after a mutable one (an array) was
handed to another kernel, it is read back with `float()` where it is used. A kernel marked
`tape.kernel(floats=True)` gets such values as Python floats. Anything else (float32 values,
other kernels, values whose shape may change between calls) keeps its NumPy kernel.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from tape.backprop import finish
from tape.primitive import PRIMITIVES
from tape.tensor import Tensor
from tape.trace.recorder import Instr, Tracer, is_float64_scalar

# A step: (operation, operand, operand); an operand is an argument position (int), an earlier
# step's result ("#k") or a float literal (str).
Step = tuple[Any, ...]
_HUGE = repr(float(np.finfo(np.float64).max))
_TINY = repr(float(np.finfo(np.float64).tiny))
_FORMATS = {"+": "{0} + {1}", "-": "{0} - {1}", "*": "{0} * {1}", "/": "{0} / {1}",
            "neg": "-{0}", "sqrt": "_sqrt({0})", "pow2": "{0} ** 2.0"}
_NAME = re.compile(r"\b(?:v\d+a?|r\d+)\b")  # the replay variables made by kernels


def _fixed(*steps: Step) -> Callable[[tuple[Any, ...], list[bool]], list[Step] | None]:
    return lambda args, const: list(steps)


def _power(args: tuple[Any, ...], const: list[bool]) -> list[Step] | None:
    """`x ** y` for a constant `y`: NumPy squares a float array for the exact int 2 and takes
    the square root for the exact float 0.5; a NumPy float64 scalar calls C `pow`."""
    x, y = args
    if not const[1]:
        return None
    if type(x) is np.ndarray:
        if type(y) is int and y == 2:
            return [("*", 0, 0)]
        if type(y) is float and y == 0.5:
            return [("sqrt", 0)]
        return None
    if type(y) in (int, float, np.float64) and y == 2:
        return [("pow2", 0)]
    return None


def _power_base_rule(args: tuple[Any, ...], const: list[bool]) -> list[Step] | None:
    """`unbroadcast(_power_scale_base(g, ans, x, y), x)` for a constant number `y`."""
    y = args[3]
    if not const[3] or not isinstance(y, (int, float)):
        return None
    if y == 0:
        return [("*", 0, "0.0")]
    if y == 1:
        return [("id", 0)]
    if y == 2:
        return [("*", 0, "2.0"), ("*", "#0", 2)]
    square = _power((args[2], y - 1), [False, True])  # x ** (y - 1), as NumPy does it
    if square is None or not math.isfinite(y) or abs(y) > 2 ** 53:
        return None
    return [("*", 0, repr(float(y))), (square[0][0], 2, 2), ("*", "#0", "#1")]


def _finish(args: tuple[Any, ...], const: list[bool]) -> list[Step] | None:
    source = args[1]
    if isinstance(source, Tensor) and source.shape == () and source.dtype == np.float64:
        return [("id", 0)]
    return None


def _table() -> dict[Any, tuple[Callable[..., list[Step] | None], tuple[int, ...]]]:
    """{kernel: (steps for its trace-time arguments, the positions that are numbers)}."""
    p = PRIMITIVES
    two, four = (0, 1), (0, 1, 2, 3)
    unary = {"neg": ("neg", 0), "id": ("id", 0)}
    return {
        operator.add: (_fixed(("+", 0, 1)), two),  # forward and cotangent sums
        operator.sub: (_fixed(("-", 0, 1)), two),
        operator.mul: (_fixed(("*", 0, 1)), two),
        operator.truediv: (_fixed(("/", 0, 1)), two),
        operator.neg: (_fixed(unary["neg"]), (0,)),
        operator.pow: (_power, two),
        np.square: (_fixed(("*", 0, 0)), (0,)),
        np.sqrt: (_fixed(("sqrt", 0)), (0,)),
        np.asarray: (_fixed(unary["id"]), (0,)),
        finish: (_finish, (0,)),
        # gradient rules (g, ans, *inputs): unbroadcast of a 0-d value to 0-d is the value
        p["add"].vjps[0]: (_fixed(unary["id"]), four),
        p["add"].vjps[1]: (_fixed(unary["id"]), four),
        p["subtract"].vjps[0]: (_fixed(unary["id"]), four),
        p["subtract"].vjps[1]: (_fixed(unary["neg"]), four),
        p["multiply"].vjps[0]: (_fixed(("*", 0, 3)), four),
        p["multiply"].vjps[1]: (_fixed(("*", 0, 2)), four),
        p["divide"].vjps[0]: (_fixed(("/", 0, 3)), four),
        p["divide"].vjps[1]: (_fixed(("neg", 0), ("*", "#0", 1), ("/", "#1", 3)), four),
        p["negative"].vjps[0]: (_fixed(unary["neg"]), (0, 1, 2)),
        p["power"].vjps[0]: (_power_base_rule, (0, 1, 2)),
        p["square"].vjps[0]: (_fixed(("*", 0, "2.0"), ("*", "#0", 2)), (0, 1, 2)),
        p["sqrt"].vjps[0]: (_fixed(("*", 0, "0.5"), ("/", "#0", 1)), (0, 1, 2)),
    }


TABLE = _table()
_BY_ID = {id(fn): (fn, entry) for fn, entry in TABLE.items()}  # by identity: any callable


def is_number(x: Any) -> bool:
    """Whether the constant `x` is a float64 value or an int that float64 holds exactly.

    Example:
        >>> is_number(2), is_number(True), is_number(np.float32(1.0)), is_number(2.5)
        (True, False, False, True)
    """
    t = type(x)
    return (t is float or t is np.float64 or (t is int and abs(x) <= 2 ** 53)
            or (t is np.ndarray and x.shape == () and x.dtype == np.float64))


def _result_kind(x: Any) -> str | None:
    """How a kernel's 0-d float64 result is rebuilt from its float, or None."""
    t = type(x)
    if t is np.float64:
        return "_f64({})"
    if t is float:
        return "{}"
    if t is np.ndarray and x.shape == () and x.dtype == np.float64:
        return "_a0({})"
    if t is Tensor and is_float64_scalar(x._value) and type(x._value) is np.ndarray:
        return "_T(_a0({}))"
    return None


def _check(op: str, out: str, a: str, b: str | None) -> str | None:
    """A condition true when the step `out = a op b` raised no floating-point exception in
    NumPy (else the run is redone by NumPy's kernels); None when it never raises."""
    if op in ("neg", "sqrt", "id"):  # sign flips never raise; sqrt's invalid is a ValueError
        return None
    if op in ("+", "-"):  # exact when tiny: only overflow or invalid, both non-finite
        return f"-{_HUGE} <= {out} <= {_HUGE}"
    zeros = [z for z in dict.fromkeys((a, b) if op == "*" else (a,))
             if _literal(z) != 1.0]  # names, and literals that are zero
    exact_zero = f" or {out} == 0.0 and ({' or '.join(f'{z} == 0.0' for z in zeros)})" \
        if zeros else ""
    return (f"({_TINY} <= {out} <= {_HUGE} or -{_HUGE} <= {out} <= -{_TINY}"
            f"{exact_zero})")


def _literal(x: str | None) -> float | None:
    """The value of a float literal; 1.0 for any nonzero one; None for a name."""
    try:
        v = float(x.strip("()")) if x is not None else None
    except ValueError:
        return None  # a name
    return v if v == 0.0 or v is None else 1.0


_PYTHON: dict[str, Callable[..., float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "neg": operator.neg, "sqrt": math.sqrt, "pow2": lambda x: x ** 2.0}


def _fold(op: str, operands: list[str]) -> str | None:
    """A step on float literals, computed now: its literal, or None when it raises or its
    result would be checked (left to the replay, which takes NumPy's path)."""
    try:
        values = [float(o.strip("()")) for o in operands]
        v = _PYTHON[op](*values)
    except (ArithmeticError, ValueError):
        return None  # a name, or an exception: at replay
    tiny, huge = float(_TINY), float(_HUGE)
    if not (tiny <= abs(v) <= huge or (v == 0.0 and op in ("+", "-", "neg", "sqrt"))):
        return None
    return f"({v!r})" if repr(v).startswith("-") else repr(v)


_OPERATORS = {operator.add, operator.sub, operator.mul, operator.truediv, operator.neg,
              operator.pow}


def _worth(first: Instr, n: int) -> bool:
    """Whether a run of `n` kernels from `first` is faster as floats: all are, but one
    operator on NumPy scalars (a NumPy scalar operation is about as fast as float()
    conversions, a check and a NumPy scalar made back)."""
    return n > 1 or first.fn not in _OPERATORS or any(type(a) is np.ndarray for a in first.args)


class Writer:
    """Writes the replay body with scalar runs (see the module docstring)."""

    def __init__(self, tracer: Tracer, lines: list[str], varies: set[str]) -> None:
        self.tracer, self.lines, self.varies = tracer, lines, varies
        self.scalar: dict[str, str] = {}  # value expression -> its float (name or literal)
        self.of_root: dict[str, list[str]] = {}  # replay variable -> its entries in `scalar`
        self.pending: dict[str, str] = {}  # replay variable not yet made -> its expression
        self.mutable: set[str] = set()  # replay variables holding arrays or tensors of them
        self.shares: dict[str, set[str]] = {}  # replay variables holding the same array
        self.units: list[tuple[dict[str, str] | None, list[str]]] = []
        self.reads = 0
        ns = tracer.ns
        ns["_f64"], ns["_a0"], ns["_sqrt"] = np.float64, np.array, math.sqrt
        ns["_SlowPath"] = SlowPath
        ns["_SLOW"] = (ArithmeticError, ValueError, SlowPath)

    # -- the body -------------------------------------------------------------------------
    def write(self) -> list[tuple[dict[str, str] | None, list[str]]]:
        program = self.tracer.program
        i = 0
        while i < len(program):
            run: list[tuple[int, list[Step]]] = []
            while i < len(program):
                steps = self._steps(program[i])
                if steps is None:
                    break
                run.append((i, steps))
                i += 1
            if run and _worth(program[run[0][0]], len(run)):
                self._run(run)
            else:  # NumPy's own scalar operator is as fast alone
                self.units += [(None, self.leaving(self.lines[j])) for j, _ in run]
            if i < len(program):
                self.units.append((program[i].errstate, self.leaving(self._object_line(i))))
                i += 1
        return self.units

    def leaving(self, line: str) -> list[str]:
        """`line` (object code) preceded by the making of the scalar values it reads; those
        that are arrays are read back with `float()` from then on (it may change them)."""
        out: list[str] = []
        for name in _NAME.findall(line):
            self._make(name, out)
            if name in self.mutable:
                for other in self.shares.get(name, {name}):
                    for key in self.of_root.pop(other, ()):
                        self.scalar.pop(key, None)
        return [*out, line]

    def _make(self, name: str, out: list[str], done: set[str] | None = None) -> None:
        """Append the making of `name` if it is pending (and of what it is made from); with
        `done`, for a path that may not run (kept pending), each name once."""
        expr = self.pending.get(name)
        if expr is None or (done is not None and name in done):
            return
        for dep in _NAME.findall(expr):
            self._make(dep, out, done)
        out.append(f"{name} = {expr}")
        if done is None:
            del self.pending[name]
        else:
            done.add(name)

    def _object_line(self, i: int) -> str:
        instr = self.tracer.program[i]
        if instr.slots is None:
            return self.lines[i]
        expr, slots = instr.slots
        for k, (value, obj) in enumerate(slots):
            expr = expr.replace(f"\x00{k}\x00", self.scalar.get(value, obj))
        return f"{instr.out} = {expr}"

    # -- runs -------------------------------------------------------------------------------
    def _steps(self, instr: Instr) -> list[Step] | None:
        """The steps of `instr` as float arithmetic, or None if it keeps its kernel."""
        fn, entry = _BY_ID.get(id(instr.fn), (None, None))
        if (entry is None or fn is not instr.fn or instr.errstate is not None
                or instr.out in self.varies or _result_kind(instr.result) is None):
            return None
        make, numbers = entry
        args, exprs = instr.args, instr.exprs
        for k in numbers:  # the other arguments are read for their fixed dtype and shape
            a, e = args[k], exprs[k]
            if not (is_number(a) if e is None else is_float64_scalar(a) or type(a) is float):
                return None
        steps = make(args, [e is None for e in exprs])
        if steps is None:
            return None
        result = instr.result._value if type(instr.result) is Tensor else instr.result
        for a, e in zip(args, exprs):  # the result is an argument: only a value of ours
            if a is result and type(a) is np.ndarray and (e is None or e not in self.scalar):
                return None
        return steps

    def _run(self, run: list[tuple[int, list[Step]]]) -> None:
        tracer = self.tracer
        fast: list[str] = []
        checks: list[str] = []
        reads: dict[str, str] = {}  # expression -> its float, read in this run
        made: list[tuple[str, str]] = []  # (float name, value expression) made in this run
        for i, steps in run:
            instr = tracer.program[i]
            results: list[str] = []
            for k, (op, *operands) in enumerate(steps):
                ops = [self._operand(instr, o, results, reads, fast) for o in operands]
                if op == "id":
                    results.append(ops[0])
                    continue
                folded = _fold(op, ops)
                if folded is not None:
                    results.append(folded)
                    continue
                name = f"s{instr.out[1:]}" if k == len(steps) - 1 else f"t{instr.out[1:]}_{k}"
                fast.append(f"{name} = {_FORMATS[op].format(*ops)}")
                check = _check(op, name, ops[0], ops[1] if len(ops) > 1 else None)
                if check is not None:
                    checks.append(check)
                results.append(name)
            self._define(instr, results[-1], made)
        if not fast:
            return  # nothing computed: constants only
        if checks:
            fast.append(f"if not ({' and '.join(checks)}):\n    raise _SlowPath")
        slow: list[str] = [f"{name} = float({expr})" for expr, name in reads.items()]
        done = {tracer.program[i].out for i, _ in run}  # made by the run's kernels
        for i, _ in run:
            for name in _NAME.findall(self.lines[i]):
                self._make(name, slow, done)
            slow.append(self.lines[i])
        slow += [f"{name} = float({value})" for name, value in made]
        lines = ["try:", *(f"    {x}" for line in fast for x in line.split("\n")),
                 "except _SLOW:", *(f"    {x}" for x in slow)]
        self.units.append((None, lines))

    def _operand(self, instr: Instr, o: Any, results: list[str], reads: dict[str, str],
                 fast: list[str]) -> str:
        if isinstance(o, str):
            return results[int(o[1:])] if o.startswith("#") else o
        expr, value = instr.exprs[o], instr.args[o]
        if expr is None:  # a constant
            if type(value) is not np.ndarray:
                v = float(value)
                if math.isfinite(v):
                    return f"({v!r})" if v < 0 or repr(v).startswith("-") else repr(v)
                return self.tracer.const(v)
            expr = self.tracer.const(value)  # an array read where the kernel reads it
        elif expr in self.scalar:
            return self.scalar[expr]
        name = reads.get(expr)
        if name is None:
            name = reads[expr] = f"f{self.reads}"
            self.reads += 1
            fast.append(f"{name} = float({expr})")
        return name

    def _define(self, instr: Instr, value: str, made: list[tuple[str, str]]) -> None:
        """Record `instr`'s result as the float `value`; its object is made when needed."""
        out, result = instr.out, instr.result
        tensor = type(result) is Tensor
        key = f"{out}._value" if tensor else out
        self.scalar[key] = value
        self.of_root.setdefault(out, []).append(key)
        if value.startswith("s"):
            made.append((value, key))
        array = result._value if tensor else result
        for a, e in zip(instr.args, instr.exprs):
            if a is array and type(a) is np.ndarray and e is not None:  # the same array
                self.pending[out] = f"_T({e})" if tensor else e
                root = self.tracer.roots[e]
                group = self.shares.setdefault(root, {root})
                group.add(out)
                self.shares[out] = group
                break
        else:
            self.pending[out] = _result_kind(result).format(value)  # type: ignore[union-attr]
        if type(array) is np.ndarray:
            self.mutable.add(out)


class SlowPath(Exception):
    """Raised inside a scalar run of a replay when a result needs NumPy's own kernels."""
