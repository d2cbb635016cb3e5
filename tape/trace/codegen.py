"""Writing the replay function from a trace: straight-line Python over the captured kernels.

Buffers: a kernel that is exactly one ufunc call (`np.add`, `np.multiply`, `np.matmul`,
`np.exp`, `np.maximum`, ... forwards and the backward sweep's cotangent sums) writes its result
into a buffer allocated once per trace (`out=`): the same loop on the same operands, so the
bits are those of eager. A buffer is reused by a later kernel of the same shape and dtype once
its value is dead: after the last kernel that reads the value or anything aliasing it (a view,
a rule that returned its input, a tensor wrapping it). A value that escapes the call never
gets a buffer: returned (or aliased by what is returned), or given to a `tape.kernel`
function (which may keep it, as an optimizer keeps state). Where an operand's shape may differ
between calls (it was computed from a `tape.kernel` function's result or from an index taken
from the data), the buffer is used only when the operands have their traced shapes (else a
smaller operand would broadcast into it without an error), and a fresh array otherwise.

Gradient views: an opaque kernel may say where it would like some of its arguments written,
through a `destinations` attribute of its function: `destinations(*args)` gives (argument,
array) pairs, the argument as it was passed at trace time (`Optimizer._run_plan` gives each
gradient and its view of the update plan's flat gradient buffer, which it then reads without
copying). A gradient that reaches such a kernel only through `tape.backprop.finish` (which
returned it unchanged at trace time) and is made by a buffered ufunc kernel is written straight
into its destination (`out=`), and `finish` is not called for it (it would return it as it
is). Only where the destination is C-contiguous (so the loop is the same) of the value's shape
and dtype, nothing reads the value or anything aliasing it after that kernel, no other opaque
kernel runs between its making and that kernel (one that may use the same destination), it is
not returned and it goes to that kernel once. Where its shape may vary, the destination is
used only if the operands have their traced shapes (as a buffer is), and `finish` is called.

Scalars: runs of 0-d float64 arithmetic are written as Python float code by
`tape.trace.scalars` (same bits; NumPy's kernels on any floating-point exception).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from tape.backprop import finish
from tape.tensor import Tensor
from tape.trace.recorder import Instr, Tracer
from tape.trace.scalars import Writer


def build(tracer: Tracer, returned: Any) -> Callable[..., Any]:
    """The replay function `replay(a0, a1, ...) -> returned structure` (or `RETRACE` when a
    Variable read by the trace was replaced since); its source is `replay.source`."""
    tracer._reads = []
    ret = tracer.arg(returned)
    varies = _varying(tracer.program)
    buffers, direct = _plan_buffers(tracer, set(tracer._reads), varies)
    head = [f"def replay({', '.join(f'a{i}' for i in range(tracer.n_args))}):"]
    if tracer.guards:
        checks = " or ".join(f"{tracer.const(var)}._value is not {tracer.const(arr)}"
                             for var, arr in tracer.guards.values())
        head.append(f"    if {checks}:\n        return _RETRACE")
    lines = [f"{instr.out} = {instr.ufunc}({', '.join(instr.operands or ())}, "
             f"out={buffers[i]})" if i in buffers else f"{instr.out} = {instr.expr}"
             for i, instr in enumerate(tracer.program)]
    for f, value in direct.items():  # `finish` would return the value as it is
        lines[f] = f"{tracer.program[f].out} = {value}"
    writer = Writer(tracer, lines, varies)
    units = writer.write()
    *made, last = writer.leaving(f"return {ret}")
    if made:
        units.append((units[-1][0] if units else None, made))
    body = _with_errstate(tracer, units)
    source = "\n".join([*head, *(f"    {line}" for line in body), f"    {last}"]) + "\n"
    code = compile(source, f"<tape.function {tracer.name}>", "exec")
    exec(code, tracer.ns)  # our own generated source, from this trace
    replay = tracer.ns["replay"]
    replay.source = source
    replay.lock = threading.Lock() if buffers else None  # buffers serve one call at a time
    return replay  # type: ignore[no-any-return]


def _with_errstate(tracer: Tracer, units: list[tuple[dict[str, str] | None, list[str]]]
                   ) -> list[str]:
    """The lines of `units` ((errstate of its kernels, lines) each) with the `np.errstate`
    blocks of the trace: where a kernel ran under settings that differ from the start of the
    trace, the replay sets those keys over the caller's own settings (as `with
    np.errstate(...)` does), and restores the caller's at the end."""
    if not any(state for state, _ in units):
        return [line for _, lines in units for line in lines]
    tracer.ns["_geterr"], tracer.ns["_seterr"] = np.geterr, np.seterr
    out, current = ["_e0 = _geterr()", "try:"], None
    for state, lines in units:
        if state != current:
            out.append(f"    _seterr(**{{**_e0, **{state or {}!r}}})")
            current = state
        out += [f"    {line}" for line in lines]
    return [*out, "finally:", "    _seterr(**_e0)"]


def _varying(program: list[Instr]) -> set[str]:
    """The values whose shape may change between calls (see the module docstring)."""
    varies: set[str] = set()
    for instr in program:
        if instr.shape_varies or any(r in varies for r in instr.reads):
            varies.add(instr.out)
    return varies


def _arrays(x: Any, out: list[np.ndarray]) -> list[np.ndarray]:
    """The arrays in a kernel's result (tuples, lists, dicts and tensors opened)."""
    if isinstance(x, np.ndarray):
        out.append(x)
    elif isinstance(x, Tensor):
        _arrays(x._value, out)
    elif isinstance(x, (tuple, list)):
        for v in x:
            _arrays(v, out)
    elif isinstance(x, dict):
        for v in x.values():
            _arrays(v, out)
    return out


def _plan_buffers(tracer: Tracer, returned: set[str], varies: set[str]
                  ) -> tuple[dict[int, str], dict[int, str]]:
    """{position in the program: buffer} for the ufunc kernels whose value does not escape or
    goes to its kernel's destination (see the module docstring), and {position of a `finish`
    left out: the variable it would return}."""
    program = tracer.program
    made = {instr.out: _arrays(instr.result, []) for instr in program}
    group = {name: name for name in made}  # aliasing classes (union-find)

    def find(name: str) -> str:
        while group[name] != name:
            group[name] = name = group[group[name]]
        return name

    last: dict[str, int] = {}
    for instr in program:
        for r in set(instr.reads):
            if r not in made:
                continue  # an argument
            if any(np.may_share_memory(a, b) for a in made[instr.out] for b in made[r]):
                group[find(instr.out)] = find(r)
    opaque_readers: dict[str, set[int]] = {}
    for i, instr in enumerate(program):
        for r in instr.reads:
            if r in made:
                last[find(r)] = i
                if instr.opaque:
                    opaque_readers.setdefault(find(r), set()).add(i)
    returned_roots = {find(r) for r in returned if r in made}
    escaped = set(opaque_readers) | returned_roots
    views = _destinations(tracer, varies)
    out: dict[int, str] = {}
    direct: dict[int, str] = {}
    for d, (view, f, p) in views.items():
        root = find(program[d].out)
        if (root not in returned_roots and opaque_readers.get(root) == {p}
                and last.get(root) == p):
            out[d] = _guarded(tracer, program[d], tracer.const(view), varies)
            if program[d].out not in varies:
                direct[f] = program[d].out
    free: dict[tuple[Any, ...], list[str]] = {}
    held: dict[int, list[str]] = {}  # position -> buffers free after it
    for i, instr in enumerate(program):
        root = find(instr.out)
        if instr.ufunc is not None and root not in escaped and i not in out:
            value = instr.result
            key = (value.shape, value.dtype)
            pool = free.setdefault(key, [])
            name = pool.pop() if pool else tracer.const(np.empty(value.shape, value.dtype))
            out[i] = _guarded(tracer, instr, name, varies)
            held.setdefault(max(last.get(root, i), i), []).append(name)
        for name in held.pop(i, ()):
            free.setdefault(_key_of(tracer, name), []).append(name)
    return out, direct


def _destinations(tracer: Tracer, varies: set[str]) -> dict[int, tuple[np.ndarray, int, int]]:
    """{position of a ufunc kernel: (the destination its value may be written into, position
    of the `finish` it goes through, position of the opaque kernel that takes it)}, by the
    conditions of the module docstring that do not concern aliasing."""
    program = tracer.program
    at = {instr.out: i for i, instr in enumerate(program)}
    found: dict[int, tuple[np.ndarray, int, int]] = {}
    opaque_before = -1  # position of the last opaque kernel seen
    for p, instr in enumerate(program):
        if not instr.opaque:
            continue
        wants = getattr(instr.fn, "destinations", None)
        pairs = wants(*instr.args) if wants is not None and instr.fn is not None else ()
        counts: dict[int, int] = {}
        for arg, _ in pairs:
            counts[id(arg)] = counts.get(id(arg), 0) + 1
        for arg, view in pairs:
            f = at.get(tracer.known.get(id(arg), ""), -1)
            if f < 0 or counts[id(arg)] != 1 or program[f].fn is not finish:
                continue
            g = program[f].args[0]
            d = at.get(program[f].exprs[0] or "", -1)
            made = program[d] if d >= 0 else None
            if (made is None or made.ufunc is None or made.result is not g
                    or not opaque_before < d < f < p
                    or not (isinstance(arg, Tensor) and arg._value is g)
                    or type(g) is not np.ndarray or type(view) is not np.ndarray
                    or g.shape != view.shape or g.dtype != view.dtype
                    or not view.flags.c_contiguous or not view.flags.writeable):
                continue
            found[d] = (view, f, p)
        opaque_before = p
    return found


def _guarded(tracer: Tracer, instr: Instr, name: str, varies: set[str]) -> str:
    """The `out=` of `instr` for the buffer `name`: the buffer only if the operands have
    their traced shapes, where they may vary."""
    if not any(r in varies for r in instr.reads):
        return name
    shapes = dict(instr.shapes)
    vary = {e: s for e, s in shapes.items() if tracer.roots.get(e, e) in varies}
    same = " and ".join(f"{e}.shape == {s!r}" for e, s in (vary or shapes).items())
    return f"({name} if {same} else None)"


def _key_of(tracer: Tracer, name: str) -> tuple[Any, ...]:
    buffer = tracer.ns[name]
    return (buffer.shape, buffer.dtype)
