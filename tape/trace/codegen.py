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

Scalars: runs of 0-d float64 arithmetic are written as Python float code by
`tape.trace.scalars` (same bits; NumPy's kernels on any floating-point exception).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from tape.tensor import Tensor
from tape.trace.recorder import Instr, Tracer
from tape.trace.scalars import Writer


def build(tracer: Tracer, returned: Any) -> Callable[..., Any]:
    """The replay function `replay(a0, a1, ...) -> returned structure` (or `RETRACE` when a
    Variable read by the trace was replaced since); its source is `replay.source`."""
    tracer._reads = []
    ret = tracer.arg(returned)
    varies = _varying(tracer.program)
    buffers = _plan_buffers(tracer, set(tracer._reads), varies)
    head = [f"def replay({', '.join(f'a{i}' for i in range(tracer.n_args))}):"]
    if tracer.guards:
        checks = " or ".join(f"{tracer.const(var)}._value is not {tracer.const(arr)}"
                             for var, arr in tracer.guards.values())
        head.append(f"    if {checks}:\n        return _RETRACE")
    lines = [f"{instr.out} = {instr.ufunc}({', '.join(instr.operands or ())}, "
             f"out={buffers[i]})" if i in buffers else f"{instr.out} = {instr.expr}"
             for i, instr in enumerate(tracer.program)]
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


def _plan_buffers(tracer: Tracer, returned: set[str], varies: set[str]) -> dict[int, str]:
    """{position in the program: buffer} for the ufunc kernels whose value does not escape."""
    program = tracer.program
    made = {instr.out: _arrays(instr.result, []) for instr in program}
    group = {name: name for name in made}  # aliasing classes (union-find)

    def find(name: str) -> str:
        while group[name] != name:
            group[name] = name = group[group[name]]
        return name

    last: dict[str, int] = {}
    escaped: set[str] = set()
    for instr in program:
        for r in set(instr.reads):
            if r not in made:
                continue  # an argument
            if any(np.may_share_memory(a, b) for a in made[instr.out] for b in made[r]):
                group[find(instr.out)] = find(r)
    for i, instr in enumerate(program):
        for r in instr.reads:
            if r in made:
                last[find(r)] = i
                if instr.opaque:
                    escaped.add(find(r))
    escaped |= {find(r) for r in returned if r in made}
    free: dict[tuple[Any, ...], list[str]] = {}
    held: dict[int, list[str]] = {}  # position -> buffers free after it
    out: dict[int, str] = {}
    for i, instr in enumerate(program):
        root = find(instr.out)
        if instr.ufunc is not None and root not in escaped:
            value = instr.result
            key = (value.shape, value.dtype)
            pool = free.setdefault(key, [])
            name = pool.pop() if pool else tracer.const(np.empty(value.shape, value.dtype))
            out[i] = name
            if any(r in varies for r in instr.reads):  # the buffer only if the shapes are
                shapes = dict(instr.shapes)
                vary = {e: s for e, s in shapes.items() if tracer.roots.get(e, e) in varies}
                same = " and ".join(f"{e}.shape == {s!r}" for e, s in (vary or shapes).items())
                out[i] = f"({name} if {same} else None)"
            held.setdefault(max(last.get(root, i), i), []).append(name)
        for name in held.pop(i, ()):
            free.setdefault(_key_of(tracer, name), []).append(name)
    return out


def _key_of(tracer: Tracer, name: str) -> tuple[Any, ...]:
    buffer = tracer.ns[name]
    return (buffer.shape, buffer.dtype)
