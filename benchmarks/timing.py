"""Timing helpers: best-of-N wall time and peak traced memory, for ratios within one run."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def best_time(fn: Callable[[], Any], *, repeat: int = 5, number: int | None = None,
              budget: float = 0.2) -> float:
    """Seconds per call: the best of `repeat` runs of `number` calls (sized to ~`budget` s).

    Example:
        >>> best_time(lambda: sum(range(10)), repeat=2, number=100) > 0
        True
    """
    fn()  # warm up caches and lazy imports
    if number is None:
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        number = max(1, int(budget / once))
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def compare(engine: Callable[[], Any], reference: Callable[[], Any], *, repeat: int = 7,
            budget: float = 0.2) -> tuple[float, float]:
    """Best seconds per call of `engine` and `reference`, their repeats interleaved.

    Interleaving exposes both to the same background load, which keeps the ratio stable on
    noisy machines even when absolute times drift.

    Example:
        >>> e, r = compare(lambda: sum(range(100)), lambda: sum(range(10)), repeat=2)
        >>> e > r
        True
    """
    numbers = []
    for fn in (engine, reference):
        fn()
        start = time.perf_counter()
        fn()
        numbers.append(max(1, int(budget / 2 / max(time.perf_counter() - start, 1e-7))))
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for k, (fn, number) in enumerate(zip((engine, reference), numbers)):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[k] = min(best[k], (time.perf_counter() - start) / number)
    return best[0], best[1]


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated through Python's allocator (NumPy included) during one call.

    Example:
        >>> peak_memory(lambda: bytearray(10**6)) >= 10**6
        True
    """
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@dataclass
class Row:
    """One benchmark result: engine time against the NumPy reference measured in the same run."""

    suite: str
    case: str
    engine: float
    reference: float | None = None
    unit: str = "s"
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.reference else self.engine / self.reference

    def format(self) -> str:
        scale, unit = (1e6, "us") if self.engine < 1e-3 else (1e3, "ms")
        if self.unit != "s":
            scale, unit = 1.0, self.unit
        text = f"{self.suite:<8} {self.case:<44} {self.engine * scale:10.2f} {unit:<3}"
        if self.reference:
            text += f"  ref {self.reference * scale:10.2f} {unit:<3} ratio {self.ratio:5.2f}x"
        if self.target is not None:
            value = self.ratio if self.reference else self.engine * scale
            verdict = "ok" if value is not None and value <= self.target else "MISSED"
            text += f"  target <= {self.target:g} {verdict}"
        if self.note:
            text += f"  {self.note}"
        return text
