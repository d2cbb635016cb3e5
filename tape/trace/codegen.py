"""Writing the replay function from a trace: straight-line Python over the captured kernels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    body = [f"    {instr.out} = {instr.expr}" for instr in tracer.program]
    source = "\n".join([*head, *body, f"    return {ret}"]) + "\n"
    code = compile(source, f"<tape.function {tracer.name}>", "exec")
    exec(code, tracer.ns)  # our own generated source, from this trace
    replay = tracer.ns["replay"]
    replay.source = source
    return replay  # type: ignore[no-any-return]
