"""`tape.function` and its parts, one job per module.

- `signature`: what selects a trace (shapes, dtypes, Python values, identities);
- `recorder`: the tracer that captures one eager run as a list of kernels;
- `codegen`: the replay function written from that list;
- `validate`: `validate=N`, eager and replayed runs compared;
- `wrapper`: `Function`, `function`, `kernel`, `tracing`.
"""

from tape.trace.recorder import TracingError
from tape.trace.wrapper import Function, function, kernel, tracing

__all__ = ["Function", "TracingError", "function", "kernel", "tracing"]
