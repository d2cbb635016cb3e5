"""Hyperparameter values: validation, and per-member broadcasting for stacked models.

A hyperparameter is a Python float, or a 1-D float64 array of length K: one value per member of
a population of K same-shaped models stacked along the leading axis of every variable. Checks
turn any accepted input into one of those two forms, so update code can treat both alike:
arithmetic on floats stays in Python (weak scalars keep float32 arrays float32, NEP 50) and
`fit_to` reshapes arrays to (K, 1, ..., 1) against a variable only when they meet it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Value = float | np.ndarray
Check = Callable[[str, Any], Any]


def _number_or_vector(name: str, value: Any) -> Value:
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise TypeError(f"{name} must be a number or a 1-D array of numbers, got {value!r}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or a 1-D array of numbers, got "
                        f"{type(value).__name__}") from None
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D array (one value per "
                         f"stacked model), got shape {arr.shape}")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


def _check(name: str, value: Any, test: Callable[[Value], Any], rule: str) -> Value:
    v = _number_or_vector(name, value)
    ok = test(v)
    if isinstance(v, np.ndarray) and not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(f"{name} must be {rule} for every member; member {i} has "
                         f"{float(v[i])!r} (values {v.tolist()})")
    if not np.all(ok):
        raise ValueError(f"{name} must be {rule}, got {value!r}")
    return v


def check_rate(name: str, value: Any) -> Value:
    """A learning rate or weight decay: finite and >= 0 (a number, or K of them).

    Example:
        >>> check_rate("learning_rate", np.float32(0.5)), check_rate("lr", [0.1, 0.2])
        (0.5, array([0.1, 0.2]))
    """
    return _check(name, value, lambda v: np.isfinite(v) & (v >= 0), "finite and >= 0")


def check_beta(name: str, value: Any) -> Value:
    """An averaging coefficient (beta_1, beta_2, rho, momentum): in [0, 1).

    An array names its first bad member.

    Example:
        >>> check_beta("beta_1", 1.0)
        Traceback (most recent call last):
        ValueError: beta_1 must be in [0, 1), got 1.0
        >>> check_beta("rho", [0.9, 1.0])
        Traceback (most recent call last):
        ValueError: rho must be in [0, 1) for every member; member 1 has 1.0 (values [0.9, 1.0])
    """
    return _check(name, value, lambda v: (v >= 0) & (v < 1), "in [0, 1)")


def check_epsilon(name: str, value: Any) -> Value:
    """A denominator guard: finite and > 0 (with 0, a zero gradient divides 0 by 0).

    Example:
        >>> check_epsilon("epsilon", 1e-8)
        1e-08
        >>> check_epsilon("epsilon", 0.0)
        Traceback (most recent call last):
        ValueError: epsilon must be finite and > 0, got 0.0
    """
    return _check(name, value, lambda v: np.isfinite(v) & (v > 0), "finite and > 0")


def check_norm(name: str, value: Any) -> Value | None:
    """A clipping norm: finite and > 0 (or K of them), or None for no clipping.

    Example:
        >>> check_norm("clipnorm", None), check_norm("clipnorm", 1)
        (None, 1.0)
    """
    if value is None:
        return None
    return _check(name, value, lambda v: np.isfinite(v) & (v > 0), "finite and > 0, or None")


def check_learning_rate(name: str, value: Any) -> Any:
    """A learning rate as `check_rate`, or a schedule (any callable of the step), kept as is.

    Example:
        >>> check_learning_rate("learning_rate", abs) is abs
        True
    """
    return value if callable(value) else check_rate(name, value)


def population_size(values: Mapping[str, Any]) -> int | None:
    """K, the common length of the array values, or None when all are scalars.

    Example:
        >>> population_size({"lr": np.array([0.1, 0.2]), "beta": 0.9})
        2
    """
    sizes = {name: len(v) for name, v in values.items() if isinstance(v, np.ndarray)}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"array hyperparameters must all have the same length (one value per "
                         f"stacked model), got lengths {sizes}")
    return next(iter(sizes.values()), None)


def _same(x: Any) -> Any:
    return x


def fit_to(var: Any, k: int | None) -> Callable[[Any], Any]:
    """A function that shapes a hyperparameter-derived value for use against `var`.

    Floats pass through; (K,) arrays become (K, 1, ..., 1) arrays of the variable's dtype.
    A variable whose leading dimension is not K is a `ValueError`.

    Example:
        >>> import tape
        >>> fit = fit_to(tape.Variable(np.zeros((2, 3))), 2)
        >>> fit(np.array([0.1, 0.2])).shape, fit(0.5)
        ((2, 1), 0.5)
    """
    if k is None:
        return _same
    if var.ndim == 0 or var.shape[0] != k:
        raise ValueError(f"Variable '{var.name}' has shape {var.shape}, but the array "
                         f"hyperparameters have length {k}: with one value per stacked model, "
                         f"every variable needs a leading dimension of {k}")
    shape = (k,) + (1,) * (var.ndim - 1)
    dtype = var.dtype

    def fit(x: Any) -> Any:
        return x.astype(dtype, copy=False).reshape(shape) if isinstance(x, np.ndarray) else x
    return fit


def magnitude(x: Value) -> float:
    """The largest magnitude of a value (a float, or one per stacked member).

    Example:
        >>> magnitude(-0.5), magnitude(np.array([0.1, -0.3]))
        (0.5, 0.3)
    """
    return abs(x) if x.__class__ is float else float(np.max(np.abs(x)))


def sqrt(x: Value) -> Value:
    """Correctly rounded square root of a float or a float64 array (the same bits either way).

    Example:
        >>> sqrt(4.0), sqrt(np.array([4.0, 9.0]))
        (2.0, array([2., 3.]))
    """
    return np.sqrt(x) if isinstance(x, np.ndarray) else math.sqrt(x)
