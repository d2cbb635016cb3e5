"""Shared by the reliability tests: comparing studies bit for bit, types included."""

from __future__ import annotations

from typing import Any

import pytest


def typed(x: Any) -> Any:
    """``x`` with the type of every value beside it, so ``(64, 32)`` differs from ``[64, 32]``
    and ``np.int64(32)`` from ``32`` and ``'np.int64(32)'``."""
    if isinstance(x, (list, tuple)):
        return type(x).__name__, [typed(v) for v in x]
    if isinstance(x, dict):
        return "dict", {k: typed(v) for k, v in x.items()}
    return type(x).__name__, x


def trial_records(study: Any) -> list[tuple[Any, ...]]:
    """Everything a trial holds except its duration, typed: equal lists are the same trials
    with the same parameters, values, statuses, errors, learning curves, rounds and boxes."""
    return [(t.number, typed(t.params), typed(t.value), t.status, t.error,
             typed(t.intermediate), t.round, typed(t.box)) for t in study.trials]


@pytest.fixture(name="typed")
def typed_fixture():
    """``typed(x)``: see ``typed``."""
    return typed


@pytest.fixture
def records():
    """``records(study)``: see ``trial_records``."""
    return trial_records
