"""Pruners: stop a trial early when its learning curve says it will not be among the best.

An objective that takes a second argument, ``objective(params, report)``, reports its curve
with ``report(step, value)``; a search given ``pruner=`` asks the pruner after every report and
``report`` raises ``TrialPruned`` when the pruner says stop (an objective does not catch it).
The trial is recorded with status ``pruned``, its last reported value and its curve, and the
search goes on.

A pruner decides from the current trial's curve and the trials the study holds when the report
arrives: the finished trials, as stored in the study file. A reported NaN counts as the worst
value. Serially the decisions are therefore deterministic (trials finish in number order) and a
resumed search decides as the uninterrupted one did; in threads they depend on the order in
which trials finish.

>>> from optim.search import Uniform, random_search
>>> def objective(params, report):
...     for step in range(10):
...         report(step, params["x"] * (10 - step))
...     return params["x"]
>>> study = random_search(objective, {"x": Uniform(0, 1)}, 20, seed=0, progress=False,
...                       pruner=MedianPruner(warmup_steps=2, min_trials=3))
>>> sorted({t.status for t in study.trials})
['ok', 'pruned']
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import check_int
from .trials import Trial

__all__ = ["Pruner", "MedianPruner", "SuccessiveHalvingPruner", "loss"]

Curve = Sequence[tuple[int, float]]


def loss(value: float, direction: str) -> float:
    """``value`` turned so that lower is better; NaN is the worst value (``inf``).

    >>> loss(2.0, "maximize"), loss(float("nan"), "minimize")
    (-2.0, inf)
    """
    if math.isnan(value):
        return math.inf
    return -value if direction == "maximize" else value


class Pruner(ABC):
    """Decides whether a running trial stops; see the module doc.

    >>> isinstance(MedianPruner(), Pruner)
    True
    """

    @abstractmethod
    def decide(self, curve: Curve, trials: Sequence[Trial], direction: str) -> str | None:
        """Why the trial whose reports so far are ``curve`` should stop, given the study's
        finished ``trials``; ``None`` to let it go on."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The pruner's settings, as stored in a study file's header."""


class MedianPruner(Pruner):
    """Stop a trial whose best value so far is worse than the median of the ``ok`` trials'
    values at the same step (Optuna's ``MedianPruner``), from step ``warmup_steps`` on and
    once at least ``min_trials`` finished trials reported at that step.

    >>> p = MedianPruner(warmup_steps=0, min_trials=2)
    >>> done = [Trial(k, {}, 1.0, "ok", intermediate=[(0, v)]) for k, v in enumerate([1, 2, 3])]
    >>> p.decide([(0, 2.5)], done, "minimize")
    'best value 2.5 by step 0 is worse than the median 2 of 3 finished trials at that step'
    >>> p.decide([(0, 1.5)], done, "minimize") is None
    True
    """

    def __init__(self, warmup_steps: int = 0, min_trials: int = 5) -> None:
        check_int("warmup_steps", warmup_steps, 0)
        check_int("min_trials", min_trials, 1)
        self.warmup_steps, self.min_trials = int(warmup_steps), int(min_trials)

    def decide(self, curve: Curve, trials: Sequence[Trial], direction: str) -> str | None:
        step = curve[-1][0]
        if step < self.warmup_steps:
            return None
        others = [loss(v, direction) for t in trials if t.status == "ok"
                  for v in _first_at(t.intermediate, step, exact=True)]
        if len(others) < self.min_trials:
            return None
        best = min(loss(v, direction) for _, v in curve)
        median = float(np.median(others))
        if best > median or best == math.inf:
            shown = best if direction == "minimize" else -best
            middle = median if direction == "minimize" else -median
            return (f"best value {shown:.6g} by step {step} is worse than the median "
                    f"{middle:.6g} of {len(others)} finished trials at that step")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "MedianPruner", "warmup_steps": self.warmup_steps,
                "min_trials": self.min_trials}

    def __repr__(self) -> str:
        return f"MedianPruner(warmup_steps={self.warmup_steps}, min_trials={self.min_trials})"


class SuccessiveHalvingPruner(Pruner):
    """Asynchronous successive halving (Li et al. 2020, ASHA): rungs at steps
    ``min_resource * reduction_factor**k``; when a trial first reports at or past a rung, it
    goes on only if its value there is in the top ``1 / reduction_factor`` of the trials that
    reached that rung (the finished ones and itself; at least the best one goes on). A trial's
    value at a rung is the first it reported at a step >= the rung.

    >>> p = SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    >>> done = [Trial(k, {}, 1.0, "ok", intermediate=[(1, v)]) for k, v in enumerate([1, 2, 3])]
    >>> p.decide([(0, 9.0), (1, 2.5)], done, "minimize")
    'value 2.5 at rung 0 (step 1) is not in the top 1/2 of the 4 trials that reached it'
    >>> p.decide([(0, 9.0), (1, 1.5)], done, "minimize") is None
    True
    """

    def __init__(self, min_resource: int = 1, reduction_factor: int = 3) -> None:
        check_int("min_resource", min_resource, 1)
        check_int("reduction_factor", reduction_factor, 2)
        self.min_resource, self.reduction_factor = int(min_resource), int(reduction_factor)

    def decide(self, curve: Curve, trials: Sequence[Trial], direction: str) -> str | None:
        step, value = curve[-1]
        before = curve[-2][0] if len(curve) > 1 else -math.inf
        eta, k, rung = self.reduction_factor, 0, self.min_resource
        while rung <= step:
            if before < rung:  # this report is the trial's first at or past rung k
                values = sorted([loss(value, direction)] + [
                    loss(v, direction) for t in trials
                    for v in _first_at(t.intermediate, rung, exact=False)])
                top = max(1, len(values) // eta)
                if loss(value, direction) > values[top - 1]:
                    return (f"value {value:.6g} at rung {k} (step {rung}) is not in the top "
                            f"1/{eta} of the {len(values)} trials that reached it")
            k, rung = k + 1, rung * eta
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "SuccessiveHalvingPruner", "min_resource": self.min_resource,
                "reduction_factor": self.reduction_factor}

    def __repr__(self) -> str:
        return (f"SuccessiveHalvingPruner(min_resource={self.min_resource}, "
                f"reduction_factor={self.reduction_factor})")


def _first_at(curve: Curve, step: int, *, exact: bool) -> list[float]:
    """The first value reported at ``step`` (``exact``) or at a step >= it: a list of one
    value, or empty."""
    for s, v in curve:
        if s == step or (not exact and s >= step):
            return [v]
    return []
