"""Reductions over axes: sum, mean, max, min, var, std, logsumexp."""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops._util import expand_reduced, keep_dims, normalize_axes, raw, shape_of
from tape.primitive import Primitive


def _count(x: Any, axis: Any) -> int:
    shape = shape_of(x)
    n = 1
    for a in normalize_axes(axis, len(shape)):
        n *= shape[a]
    return n


_sum: Primitive = Primitive(
    "sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims), uses_inputs=False
).defvjp(
    lambda g, ans, x, axis, keepdims: expand_reduced(g, shape_of(x), axis, keepdims),
).defjvp(
    lambda t, ans, x, axis, keepdims: np.sum(t, axis=axis, keepdims=keepdims),
)
_mean: Primitive = Primitive(
    "mean", lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims), uses_inputs=False
).defvjp(
    lambda g, ans, x, axis, keepdims:
        expand_reduced(g / _count(x, axis), shape_of(x), axis, keepdims),
).defjvp(
    lambda t, ans, x, axis, keepdims: np.mean(t, axis=axis, keepdims=keepdims),
)


def _extremum_share(d: Any, ans: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    # The gradient is shared equally among the elements that attain the extremum (and the
    # tangent is their mean, the adjoint of that).
    hit = raw(x) == keep_dims(raw(ans), shape_of(x), axis, keepdims)
    return (hit / np.sum(hit, axis=axis, keepdims=True)).astype(raw(d).dtype, copy=False)


def _extremum_grad(g: Any, ans: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    return keep_dims(g, shape_of(x), axis, keepdims) * _extremum_share(g, ans, x, axis, keepdims)


def _extremum_jvp(t: Any, ans: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    return np.sum(t * _extremum_share(t, ans, x, axis, keepdims), axis=axis, keepdims=keepdims)


_max: Primitive = Primitive("max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims)
                 ).defvjp(_extremum_grad).defjvp(_extremum_jvp)
_min: Primitive = Primitive("min", lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims)
                 ).defvjp(_extremum_grad).defjvp(_extremum_jvp)


def _var_grad(g: Any, ans: Any, x: Any, axis: Any, ddof: int, keepdims: bool) -> Any:
    centered = x - np.mean(x, axis=axis, keepdims=True)
    scale = 2.0 / (_count(x, axis) - ddof)
    return keep_dims(g, shape_of(x), axis, keepdims) * centered * scale


def _std_grad(g: Any, ans: Any, x: Any, axis: Any, ddof: int, keepdims: bool) -> Any:
    centered = x - np.mean(x, axis=axis, keepdims=True)
    denominator = keep_dims(ans, shape_of(x), axis, keepdims) * (_count(x, axis) - ddof)
    return keep_dims(g, shape_of(x), axis, keepdims) * centered / denominator


# JVPs: sum(t * centered) = sum((t - mean t) * centered), so the tangent needs no centering.
def _var_jvp(t: Any, ans: Any, x: Any, axis: Any, ddof: int, keepdims: bool) -> Any:
    centered = x - np.mean(x, axis=axis, keepdims=True)
    return np.sum(t * centered, axis=axis, keepdims=keepdims) * (2.0 / (_count(x, axis) - ddof))


def _std_jvp(t: Any, ans: Any, x: Any, axis: Any, ddof: int, keepdims: bool) -> Any:
    centered = x - np.mean(x, axis=axis, keepdims=True)
    return np.sum(t * centered, axis=axis, keepdims=keepdims) / (ans * (_count(x, axis) - ddof))


_var: Primitive = Primitive("var", lambda x, axis, ddof, keepdims:
                 np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)
                 ).defvjp(_var_grad).defjvp(_var_jvp)
_std: Primitive = Primitive("std", lambda x, axis, ddof, keepdims:
                 np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)
                 ).defvjp(_std_grad).defjvp(_std_jvp)


def _logsumexp(x: Any, axis: Any, keepdims: bool) -> Any:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


_logsumexp_p: Primitive = Primitive("logsumexp", _logsumexp).defvjp(
    lambda g, ans, x, axis, keepdims: keep_dims(g, shape_of(x), axis, keepdims)
    * np.exp(x - keep_dims(ans, shape_of(x), axis, keepdims)),
).defjvp(
    lambda t, ans, x, axis, keepdims: np.sum(
        t * np.exp(x - keep_dims(ans, shape_of(x), axis, keepdims)), axis=axis, keepdims=keepdims),
)


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Sum over `axis` (all axes by default), as `np.sum`.

    Example:
        >>> sum(np.ones((2, 3)), axis=0).numpy()
        array([2., 2., 2.])
    """
    return _sum(x, axis=_axis(axis), keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over `axis`, as `np.mean`.

    Example:
        >>> float(mean(np.array([1.0, 3.0])))
        2.0
    """
    return _mean(x, axis=_axis(axis), keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Maximum over `axis`; ties share the gradient equally (as TensorFlow's reduce_max).

    Example:
        >>> float(max(np.array([1.0, 3.0])))
        3.0
    """
    return _max(x, axis=_axis(axis), keepdims=keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Minimum over `axis`; ties share the gradient equally.

    Example:
        >>> float(min(np.array([1.0, 3.0])))
        1.0
    """
    return _min(x, axis=_axis(axis), keepdims=keepdims)


def var(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
    """Variance over `axis` (biased by default: `ddof=0`, as NumPy and TensorFlow).

    Example:
        >>> float(var(np.array([1.0, 3.0])))
        1.0
    """
    return _var(x, axis=_axis(axis), ddof=ddof, keepdims=keepdims)


def std(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Any:
    """Standard deviation over `axis` (`ddof=0` by default).

    Example:
        >>> float(std(np.array([1.0, 3.0])))
        1.0
    """
    return _std(x, axis=_axis(axis), ddof=ddof, keepdims=keepdims)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """log(sum(exp(x))) over `axis`, computed without overflow.

    Example:
        >>> round(float(logsumexp(np.array([1000.0, 1000.0]))), 4)
        1000.6931
    """
    return _logsumexp_p(x, axis=_axis(axis), keepdims=keepdims)


__all__ = ["sum", "mean", "max", "min", "var", "std", "logsumexp"]
