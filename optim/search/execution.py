"""Running trials (in the calling process or a worker): the objective's result or exception
turned into the outcome fields of a ``Trial``.

>>> execute(lambda p: p["x"] ** 2, False, {"x": 3.0})["value"]
9.0
>>> execute(lambda p: "nine", False, {"x": 3.0})["status"]
'failed'
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from typing import Any

from .checks import Objective
from .population_objective import PopulationObjective, check_results
from .trials import TrialPruned

__all__ = ["execute", "execute_batch", "execute_task", "outcome", "error_text"]


def error_text(e: BaseException) -> str:
    """``Type: message (at file:line in function)`` of an exception.

    >>> error_text(ValueError("bad"))
    'ValueError: bad'
    """
    where = traceback.extract_tb(e.__traceback__)
    at = f" (at {where[-1].filename}:{where[-1].lineno} in {where[-1].name})" if where else ""
    return f"{type(e).__name__}: {e}{at}"


def _not_a_number(value: Any) -> str | None:
    """Why ``value`` is not a usable objective value, or None if it is."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        return f"TypeError: objective returned {type(value).__name__} {value!r:.80}, not a number"
    try:
        x = float(value)
    except (TypeError, ValueError) as e:
        return f"{type(e).__name__}: objective returned {value!r:.80}: {e}"
    return None if math.isfinite(x) else f"ValueError: objective returned {x}"


def outcome(result: Any, curve: list[tuple[int, float]], duration: float) -> dict[str, Any]:
    """The outcome fields of a ``Trial`` from what its objective returned (or raised).

    >>> outcome(TrialPruned("slow"), [(0, 2.0)], 0.5)["status"]
    'pruned'
    """
    out: dict[str, Any] = {"value": None, "status": "failed", "error": None}
    if isinstance(result, TrialPruned):
        out.update(status="pruned", error=error_text(result),
                   value=curve[-1][1] if curve else None)
    elif isinstance(result, Exception):
        out["error"] = error_text(result)
    else:
        out["error"] = _not_a_number(result)
        if out["error"] is None:
            out.update(status="ok", value=float(result))
    return {**out, "duration": duration, "intermediate": curve}


OnReport = Callable[[list[tuple[int, float]]], None]


def execute(objective: Objective, wants_report: bool, params: dict[str, Any],
            on_report: OnReport | None = None) -> dict[str, Any]:
    """Run one trial (in a worker); returns the outcome fields of a ``Trial``. After each
    ``report(step, value)``, ``on_report(curve)`` (if given) sees the curve so far and may
    raise ``TrialPruned`` through ``report`` to stop the trial.

    >>> execute(lambda p, report: report(0, 1.0) or 2.0, True, {})["intermediate"]
    [(0, 1.0)]
    """
    curve: list[tuple[int, float]] = []

    def report(step: int, value: float) -> None:
        curve.append((int(step), float(value)))
        if on_report is not None:
            on_report(curve)

    start = time.perf_counter()
    try:
        result = objective(*((params, report) if wants_report else (params,)))
    except Exception as e:  # the search goes on; KeyboardInterrupt still stops it
        result = e
    return outcome(result, curve, time.perf_counter() - start)


def execute_batch(objective: PopulationObjective, batch: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """Run a batch of trials together (in a worker); the outcome fields of each ``Trial``.
    Each trial's ``duration`` is the batch's wall time shared out evenly.

    >>> objective = PopulationObjective(lambda batch, report: [p["x"] for p in batch])
    >>> [o["value"] for o in execute_batch(objective, [{"x": 1.0}, {"x": 2.0}])]
    [1.0, 2.0]
    """
    curves: list[list[tuple[int, float]]] = [[] for _ in batch]

    def report(member: int, step: int, value: float) -> None:
        curves[member].append((int(step), float(value)))

    start = time.perf_counter()
    try:
        results = check_results(objective.fn(batch, report), len(batch))
    except Exception as e:  # the whole batch failed (or was pruned) together
        results = [e] * len(batch)
    duration = (time.perf_counter() - start) / len(batch)
    return [outcome(r, c, duration) for r, c in zip(results, curves)]


def execute_task(objective: Objective, wants_report: bool, batched: bool,
                 batch: list[dict[str, Any]], on_report: OnReport | None = None
                 ) -> list[dict[str, Any]]:
    """Run one task of a search: a batch of a ``PopulationObjective`` evaluated together
    (``batched``), else each trial of ``batch`` on its own.

    >>> [o["value"] for o in execute_task(lambda p: p["x"], False, False, [{"x": 1}, {"x": 2}])]
    [1.0, 2.0]
    """
    if batched:
        return execute_batch(objective, batch)  # type: ignore[arg-type]
    return [execute(objective, wants_report, params, on_report) for params in batch]
