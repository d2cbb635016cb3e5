"""Shape primitives: reshape, transpose, expand_dims, squeeze, broadcast_to, concatenate, stack."""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops._util import normalize_axes, shape_of, sum_to_raw
from tape.primitive import Primitive
from tape.tensor import Tensor

_reshape: Primitive = Primitive("reshape", lambda x, shape: np.reshape(x, shape), uses_inputs=False
                     ).defvjp(lambda g, ans, x, shape: np.reshape(g, shape_of(x))
                     ).defjvp(lambda t, ans, x, shape: np.reshape(t, shape_of(ans)))


def _transpose_grad(g: Any, ans: Any, x: Any, axes: Any) -> Any:
    return np.transpose(g, None if axes is None else tuple(np.argsort(axes)))


_transpose: Primitive = Primitive(
    "transpose", lambda x, axes: np.transpose(x, axes), uses_inputs=False
).defvjp(_transpose_grad).defjvp(lambda t, ans, x, axes: np.transpose(t, axes))
_expand_dims: Primitive = Primitive("expand_dims", lambda x, axis: np.expand_dims(x, axis),
                         uses_inputs=False
                         ).defvjp(lambda g, ans, x, axis: np.reshape(g, shape_of(x))
                         ).defjvp(lambda t, ans, x, axis: np.reshape(t, shape_of(ans)))
_squeeze: Primitive = Primitive("squeeze", lambda x, axis: np.squeeze(x, axis), uses_inputs=False
                     ).defvjp(lambda g, ans, x, axis: np.reshape(g, shape_of(x))
                     ).defjvp(lambda t, ans, x, axis: np.reshape(t, shape_of(ans)))
# (the JVP of broadcast_to is the tangent itself: tangents are broadcast to the output anyway)
_broadcast_to: Primitive = Primitive("broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
                          uses_inputs=False).defvjp(lambda g, ans, x, shape: unbroadcast(g, x)
                          ).defjvp(lambda t, ans, x, shape: t)


_sum_to: Primitive = Primitive("sum_to", sum_to_raw, uses_inputs=False).defvjp(
    lambda g, ans, x, shape: np.broadcast_to(g, shape_of(x)),
).defjvp(
    lambda t, ans, x, shape: unbroadcast(t, ans),
)


def unbroadcast(g: Any, like: Any) -> Any:
    """Reduce the gradient `g` of a broadcast result to the shape of the input `like`.

    Example:
        >>> unbroadcast(np.ones((4, 3)), np.zeros(3))
        array([4., 4., 4.])
    """
    shape = getattr(like, "shape", ())
    g_shape = getattr(g, "shape", ())
    if g_shape == shape:
        return g
    if shape and type(g) is np.ndarray and len(g_shape) == len(shape) + 1 and g_shape[1:] == shape:
        return np.add.reduce(g, axis=0)  # a bias's gradient: sum_to_raw's sum, less overhead
    if isinstance(g, Tensor):
        return sum_to(g, shape)
    return sum_to_raw(g, shape)


def _concatenate_grad(i: int, g: Any, ans: Any, *xs: Any, axis: int) -> Any:
    axis = normalize_axes(axis, len(shape_of(ans)))[0]
    start = int(np.sum([shape_of(x)[axis] for x in xs[:i]], dtype=int))
    index = (slice(None),) * axis + (slice(start, start + shape_of(xs[i])[axis]),)
    return g[index]


def _stack_grad(i: int, g: Any, ans: Any, *xs: Any, axis: int) -> Any:
    axis = normalize_axes(axis, len(shape_of(ans)))[0]
    return g[(slice(None),) * axis + (i,)]


def _zero_filled(tangents: list[Any], ans: Any, xs: tuple[Any, ...]) -> list[Any]:
    """The tangents, with zeros of the input's shape for inputs that have none."""
    return [np.zeros(shape_of(x), ans.dtype) if t is None else t for t, x in zip(tangents, xs)]


_concatenate: Primitive = Primitive("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
                         uses_inputs=False).defvjp_argnum(_concatenate_grad).defjvp_all(
    lambda ts, ans, residuals, *xs, axis: np.concatenate(_zero_filled(ts, ans, xs), axis=axis))
_stack: Primitive = Primitive("stack", lambda *xs, axis: np.stack(xs, axis=axis), uses_inputs=False
                   ).defvjp_argnum(_stack_grad).defjvp_all(
    lambda ts, ans, residuals, *xs, axis: np.stack(_zero_filled(ts, ans, xs), axis=axis))


def _shape_arg(shape: Any) -> Any:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def reshape(x: Any, shape: Any) -> Tensor:
    """Same values in a new shape (one dimension may be -1), as `np.reshape`.

    Example:
        >>> reshape(np.arange(6.0), (2, 3)).shape
        (2, 3)
    """
    return _reshape(x, shape=_shape_arg(shape))


def transpose(x: Any, axes: Any = None) -> Tensor:
    """Permute axes (reverse them by default), as `np.transpose`.

    Example:
        >>> transpose(np.zeros((2, 3))).shape
        (3, 2)
    """
    return _transpose(x, axes=None if axes is None else tuple(axes))


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes, as `np.swapaxes`.

    Example:
        >>> swapaxes(np.zeros((2, 3, 4)), 0, 2).shape
        (4, 3, 2)
    """
    axes = list(range(len(shape_of(x))))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes)


def moveaxis(x: Any, source: Any, destination: Any) -> Tensor:
    """Move axes to new positions, as `np.moveaxis` (an axis or a sequence of axes each).

    Example:
        >>> moveaxis(np.zeros((2, 3, 4)), 0, -1).shape
        (3, 4, 2)
        >>> moveaxis(np.zeros((2, 3, 4)), [0, 1], [-1, -2]).shape
        (4, 3, 2)
    """
    ndim = len(shape_of(x))
    src = [int(a) % ndim for a in np.atleast_1d(source)]
    dst = [int(a) % ndim for a in np.atleast_1d(destination)]
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source} and destination {destination} must have "
                         f"the same number of axes")
    axes = [a for a in range(ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        axes.insert(d, s)
    return transpose(x, axes)


def expand_dims(x: Any, axis: Any) -> Tensor:
    """Insert a unit axis at `axis`, as `np.expand_dims`.

    Example:
        >>> expand_dims(np.zeros(3), 0).shape
        (1, 3)
    """
    return _expand_dims(x, axis=tuple(axis) if isinstance(axis, list) else axis)


def squeeze(x: Any, axis: Any = None) -> Tensor:
    """Remove unit axes (all of them, or those in `axis`), as `np.squeeze`.

    Example:
        >>> squeeze(np.zeros((1, 3, 1))).shape
        (3,)
    """
    return _squeeze(x, axis=tuple(axis) if isinstance(axis, list) else axis)


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """Broadcast to `shape`; the gradient is summed back, as for any broadcast.

    Example:
        >>> broadcast_to(np.ones(3), (2, 3)).shape
        (2, 3)
    """
    return _broadcast_to(x, shape=_shape_arg(shape))


def sum_to(x: Any, shape: Any) -> Tensor:
    """Sum a broadcast value back down to `shape` (the adjoint of `broadcast_to`).

    Example:
        >>> sum_to(np.ones((2, 3)), (3,)).numpy()
        array([2., 2., 2.])
    """
    return _sum_to(x, shape=_shape_arg(shape))


def concatenate(values: Any, axis: int | None = 0) -> Tensor:
    """Join tensors along an existing axis, as `np.concatenate` (`axis=None` flattens them).

    Example:
        >>> concatenate([np.zeros(2), np.ones(3)]).shape
        (5,)
    """
    if axis is None:  # NumPy: flatten every input first
        return _concatenate(*[reshape(v, (-1,)) for v in values], axis=0)
    return _concatenate(*values, axis=axis)


def stack(values: Any, axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis, as `np.stack`.

    Example:
        >>> stack([np.zeros(2), np.ones(2)], axis=1).shape
        (2, 2)
    """
    return _stack(*values, axis=axis)
