"""Weight initializers: `init(shape, rng, dtype) -> ndarray` with an explicit Generator.

Fans are read from the last two axes (`fan_in = shape[-2]`, `fan_out = shape[-1]`), so a
kernel with leading axes (a stack of models) is initialized as that many separate kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.utils import names

Initializer = Callable[[tuple[int, ...], np.random.Generator, Any], np.ndarray]

# Standard deviation of a unit normal truncated to [-2, 2] (Keras' variance-scaling constant).
_TRUNCATED_STD = 0.87962566103423978


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[-2], shape[-1]


def truncated_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = np.float32,
                     stddev: float = 1.0) -> np.ndarray:
    """Normal samples redrawn until they lie within two standard deviations.

    Example:
        >>> x = truncated_normal((1000,), np.random.default_rng(0))
        >>> bool(np.abs(x).max() <= 2)
        True
    """
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2
    return (z * stddev).astype(dtype)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = np.float32
              ) -> np.ndarray:
    """He initialization, Keras' form: truncated normal with variance `2 / fan_in`.

    (The course's `randn * sqrt(2 / n_prev)` has the same variance, without the truncation.)

    Example:
        >>> w = he_normal((400, 300), np.random.default_rng(0))
        >>> round(float(w.std() * np.sqrt(400 / 2)), 1)
        1.0
    """
    fan_in, _ = _fans(shape)
    return truncated_normal(shape, rng, dtype, np.sqrt(2.0 / fan_in) / _TRUNCATED_STD)


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: Any = np.float32
                   ) -> np.ndarray:
    """Xavier/Glorot: uniform on `[-l, l]`, `l = sqrt(6 / (fan_in + fan_out))`.

    Example:
        >>> w = glorot_uniform((3, 3), np.random.default_rng(0))
        >>> bool(np.abs(w).max() <= 1)
        True
    """
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None,
          dtype: Any = np.float32) -> np.ndarray:
    """All zeros (biases, batch norm's `beta` and running mean).

    Example:
        >>> zeros((2,))
        array([0., 0.], dtype=float32)
    """
    return np.zeros(shape, dtype)


def ones(shape: tuple[int, ...], rng: np.random.Generator | None = None,
         dtype: Any = np.float32) -> np.ndarray:
    """All ones (batch norm's `gamma` and running variance).

    Example:
        >>> ones((2,))
        array([1., 1.], dtype=float32)
    """
    return np.ones(shape, dtype)


_BY_NAME: dict[str, Initializer] = {
    "he_normal": he_normal, "glorot_uniform": glorot_uniform, "zeros": zeros, "ones": ones,
}


def get(identifier: str | Initializer) -> Initializer:
    """An initializer by name (`'he_normal'`, `'glorot_uniform'`, `'zeros'`, `'ones'`) or as given.

    A callable must accept `(shape, rng, dtype)` and return an array of that shape.

    Example:
        >>> get("zeros")((2,), None, np.float64)
        array([0., 0.])
    """
    if callable(identifier):
        return identifier
    return names.pick(_BY_NAME, identifier, "initializer",
                      "a callable (shape, rng, dtype) -> array")
