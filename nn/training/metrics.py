"""Metrics for `nn.fit(..., metrics=[...])`: functions of `(outputs, labels)` and their names.

A metric is any function `metric(outputs, labels) -> float` on NumPy arrays (the model's
outputs and the batch's labels); `fit` averages it over each epoch's examples and logs it
under its name: the string it was given by, else the callable's `name` attribute, else its
`__name__`. Strings are Keras' names (`get` lists them). Metrics are not weighted by
`sample_weight`/`class_weight` (the loss is).

Example:
    >>> import numpy as np
    >>> name, fn = get("mae")
    >>> name, fn(np.array([[1.0], [3.0]]), np.array([[0.0], [0.0]]))
    ('mae', 2.0)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from nn.data import accuracy

Metric = Callable[[Any, Any], float]


def _errors(outputs: Any, labels: Any) -> np.ndarray:
    p, y = np.asarray(outputs, dtype=float), np.asarray(labels, dtype=float)
    if p.shape != y.shape and p.shape[-1:] == (1,) and y.shape == p.shape[:-1]:
        y = y[..., None]  # (N,) targets for (N, 1) outputs, as fit accepts them
    if p.shape != y.shape:
        raise ValueError(f"outputs of shape {p.shape} and labels of shape {y.shape} differ")
    return p - y


def mean_squared_error(outputs: Any, labels: Any) -> float:
    """The mean of `(outputs - labels) ** 2` (`'mse'`).

    Example:
        >>> mean_squared_error(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
        5.0
    """
    return float(np.mean(np.square(_errors(outputs, labels))))


def mean_absolute_error(outputs: Any, labels: Any) -> float:
    """The mean of `|outputs - labels|` (`'mae'`).

    Example:
        >>> mean_absolute_error(np.array([1.0, -3.0]), np.array([0.0, 0.0]))
        2.0
    """
    return float(np.mean(np.abs(_errors(outputs, labels))))


# Keras' names. Every accuracy is `nn.accuracy` on logits: class ids or one-hot rows against the
# arg-max, binary labels against `logits > 0` (Keras' thresholds apply to probabilities).
_BY_NAME: dict[str, Metric] = {
    "accuracy": accuracy, "acc": accuracy, "sparse_categorical_accuracy": accuracy,
    "categorical_accuracy": accuracy, "binary_accuracy": accuracy,
    "mse": mean_squared_error, "mean_squared_error": mean_squared_error,
    "mae": mean_absolute_error, "mean_absolute_error": mean_absolute_error,
}


def metric_name(fn: Callable[..., Any]) -> str:
    """The name a callable metric is logged under: its `name` attribute if that is a string,
    else its `__name__` (a `functools.partial`'s function's); a lambda has none.

    Example:
        >>> def top3(outputs, labels): ...
        >>> metric_name(top3)
        'top3'
    """
    name = getattr(fn, "name", None)
    if isinstance(name, str) and name:
        return name
    base = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(base, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        raise ValueError(f"the metric {fn!r} has no name to log it under: define it with "
                         f"`def my_metric(outputs, labels)`, or set its `name` attribute")
    return name


def get(identifier: str | Metric) -> tuple[str, Metric]:
    """`(name, function)` for a metric given by Keras name or as a callable.

    Example:
        >>> get("accuracy")[0], get(mean_absolute_error)[0]
        ('accuracy', 'mean_absolute_error')
    """
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"unknown metric {identifier!r}; use one of {sorted(_BY_NAME)} "
                             f"or a function metric(outputs, labels) -> float")
        return identifier, _BY_NAME[identifier]
    if not callable(identifier):
        raise TypeError(f"a metric is a name or a function metric(outputs, labels) -> float, "
                        f"got {type(identifier).__name__} {identifier!r}")
    return metric_name(identifier), identifier
