"""Helpers shared by the gradient rules. Each works on raw arrays and on tensors alike."""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.tensor import Tensor


def raw(x: Any) -> Any:
    """The underlying array of a tensor (a constant: masks and signs are not differentiated)."""
    return x._value if isinstance(x, Tensor) else x


def shape_of(x: Any) -> tuple[int, ...]:
    return getattr(x, "shape", ())


def sum_to_raw(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast array back down to `shape` (NumPy's broadcasting, undone).

    Example:
        >>> sum_to_raw(np.ones((4, 3)), (3,))
        array([4., 4., 4.])
    """
    xs = np.shape(x)
    if xs == shape:
        return x
    lead = len(xs) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and xs[lead + i] != 1)
    return x.sum(axis=axes, keepdims=True).reshape(shape)


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(int(a) % ndim if ndim else 0 for a in axis)


def keep_dims(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """The result (or gradient) of a reduction over `axis`, reshaped to broadcast against the
    input's `shape` (unit length on the reduced axes)."""
    if keepdims or g.ndim == 0:  # a 0-d value broadcasts against anything as it is
        return g
    axes = normalize_axes(axis, len(shape))
    return g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))


def expand_reduced(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """Broadcast the gradient of a reduction over `axis` back to the input's `shape`."""
    return np.broadcast_to(keep_dims(g, shape, axis, keepdims), shape)
