"""Thread-local recording state: which tapes are recording in this thread."""

from __future__ import annotations

import threading
from typing import Any


class _ThreadState(threading.local):
    def __init__(self) -> None:
        # Tapes currently recording in this thread, outermost first.
        self.tapes: list[Any] = []
        # The `tape.function` tracer capturing kernels on this thread, or None.
        self.tracer: Any = None


STATE = _ThreadState()
