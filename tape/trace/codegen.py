"""Writing the replay function from a trace: straight-line Python over the captured kernels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.trace.recorder import Tracer


def build(tracer: Tracer, returned: Any) -> Callable[..., Any]:
    """The replay function `replay(a0, a1, ...) -> returned structure` (or `RETRACE` when a
    Variable read by the trace was replaced since); its source is `replay.source`."""
    ret = tracer.arg(returned)
    head = [f"def replay({', '.join(f'a{i}' for i in range(tracer.n_args))}):"]
    if tracer.guards:
        checks = " or ".join(f"{tracer.const(var)}._value is not {tracer.const(arr)}"
                             for var, arr in tracer.guards.values())
        head.append(f"    if {checks}:\n        return _RETRACE")
    body = [f"{instr.out} = {instr.expr}" for instr in tracer.program]
    body = _with_errstate(tracer, body)
    source = "\n".join([*head, *(f"    {line}" for line in body), f"    return {ret}"]) + "\n"
    code = compile(source, f"<tape.function {tracer.name}>", "exec")
    exec(code, tracer.ns)  # our own generated source, from this trace
    replay = tracer.ns["replay"]
    replay.source = source
    return replay  # type: ignore[no-any-return]


def _with_errstate(tracer: Tracer, body: list[str]) -> list[str]:
    """`body` with the `np.errstate` blocks of the trace: where a kernel ran under settings
    that differ from the start of the trace, the replay sets those keys over the caller's own
    settings (as `with np.errstate(...)` does), and restores the caller's at the end."""
    states = [instr.errstate for instr in tracer.program]
    if not any(states):
        return body
    tracer.ns["_geterr"], tracer.ns["_seterr"] = np.geterr, np.seterr
    out, current = ["_e0 = _geterr()", "try:"], None
    for line, state in zip(body, states, strict=True):
        if state != current:
            out.append(f"    _seterr(**{{**_e0, **{state or {}!r}}})")
            current = state
        out.append(f"    {line}")
    return [*out, "finally:", "    _seterr(**_e0)"]
