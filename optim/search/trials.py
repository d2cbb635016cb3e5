"""A trial: one evaluation of the objective, and the exception that stops one early.

>>> Trial(0, {"x": 1.0}, 0.5, "ok").status
'ok'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Trial", "TrialPruned", "Status"]

Status = Literal["ok", "failed", "pruned"]


class TrialPruned(Exception):
    """Raise from an objective to stop a hopeless trial early; it is recorded as ``pruned``
    with the last value it reported.

    >>> def objective(params, report):
    ...     for epoch in range(100):
    ...         report(epoch, 1e9)
    ...         raise TrialPruned("diverged")
    """


@dataclass
class Trial:
    """One evaluation of the objective.

    ``value`` is ``None`` unless ``status == "ok"`` (or a pruned trial reported something).
    ``intermediate`` holds the ``(step, value)`` pairs passed to ``report``; ``round`` and
    ``box`` say which coarse-to-fine round drew it and from which box (unit coordinates of the
    original space per numeric dimension, kept options per ``Choice``; ``None`` for plain
    random search).

    >>> Trial(0, {"x": 1.0}, 0.5, "ok").value
    0.5
    """

    number: int
    params: dict[str, Any]
    value: float | None
    status: Status
    error: str | None = None
    duration: float = 0.0
    intermediate: list[tuple[int, float]] = field(default_factory=list)
    round: int = 0
    box: dict[str, Any] | None = None
