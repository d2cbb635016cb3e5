"""Logged values for people: how a metric is shown in `print(history)` and progress lines
(the tables themselves: `tape.utils.tables`).

One home for how a metric is shown, so the progress line, `print(history)` and any other
table agree. A population's logs (one value per member) are shown as one member's: the best
by `val_loss` (else `loss`), named by its index (`member_row`), so the values shown belong
together. Whether best is the smallest or the largest follows the name (`better`).

Example:
    >>> format_value("val_accuracy", np.array([0.5, 0.75]))
    '0.75 (#1)'
"""

from __future__ import annotations

from typing import Any

import numpy as np


def better(name: str) -> str:
    """`'max'` for a metric whose larger values are better (names containing `acc` or `auc`,
    Keras' rule), else `'min'` (losses, errors).

    Example:
        >>> better("val_accuracy"), better("val_loss")
        ('max', 'min')
    """
    return "max" if ("acc" in name or "auc" in name) else "min"


def best_member(values: Any, mode: str) -> int | None:
    """The index of the best finite value (`mode` `'min'` or `'max'`), None if there is none.

    Example:
        >>> best_member(np.array([0.5, np.nan, 0.2]), "min")
        2
    """
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    if not finite.any():
        return None
    masked = np.where(finite, v, np.inf if mode == "min" else -np.inf)
    return int(np.argmin(masked) if mode == "min" else np.argmax(masked))


def member_row(logs: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """For logs with one value per population member: the member to show (the best by
    `val_loss`, else `loss`; None if every one is NaN) and its values (plain numbers stay as
    they are). Logs of one model come back unchanged, with None.

    Example:
        >>> member_row({"loss": np.array([0.5, 0.2]), "accuracy": np.array([0.7, 0.6])})
        (1, {'loss': 0.2, 'accuracy': 0.6})
    """
    arrays = [k for k, v in logs.items() if np.ndim(v) == 1]
    if not arrays:
        return None, dict(logs)
    key = next((k for k in ("val_loss", "loss") if k in arrays), arrays[0])
    k = best_member(logs[key], better(key))
    if k is None:
        return None, {n: (float("nan") if np.ndim(v) == 1 else v) for n, v in logs.items()}
    return k, {n: (float(np.asarray(v)[k]) if np.ndim(v) == 1 else v) for n, v in logs.items()}


def format_value(name: str, value: Any, digits: int = 4) -> str:
    """A logged value as text: a number with `digits` significant digits, or for one value
    per population member the best member's value and its index, `0.3412 (#5)`.

    Example:
        >>> format_value("loss", 0.123456), format_value("accuracy", np.array([0.5, 0.75]))
        ('0.1235', '0.75 (#1)')
    """
    if np.ndim(value) == 0:
        return f"{float(value):.{digits}g}"
    k = best_member(value, better(name))
    if k is None:
        return "nan (all)"
    return f"{float(np.asarray(value)[k]):.{digits}g} (#{k})"
