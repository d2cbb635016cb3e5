"""Batch normalization: one fused primitive (closed-form gradient) and the `BatchNorm` layer.

Training mode: `y = gamma * (x - mean) / sqrt(var + epsilon) + beta`, with the batch mean and
the biased batch variance taken over every axis except the feature `axis`.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, cast

import numpy as np

import tape
from nn.layers import initializers
from nn.layers.module import Module, as_floating
from tape import Tensor, Variable


@functools.lru_cache(maxsize=64)
def feature_axes(ndim: int, axis: int | tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(other axes, feature axes `axis`), both sorted and non-negative: batch norm reduces
    over the other axes, layer norm over the feature axes.

    Example:
        >>> feature_axes(3, -1), feature_axes(4, (1, -1))
        (((0, 1), (2,)), ((0, 2), (1, 3)))
    """
    requested = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not requested or any(not -ndim <= int(a) < ndim for a in requested):
        raise ValueError(f"normalization axis {axis} is out of range for an input with {ndim} "
                         f"dimensions")
    kept = tuple(sorted({int(a) % ndim for a in requested}))
    return tuple(a for a in range(ndim) if a not in kept), kept


def feature_shape(layer: str, input_shape: tuple[int | None, ...],
                  axis: int | tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a normalization layer's per-feature variables: `input_shape` on the
    feature axes `axis`, which must be known (a `ValueError` naming the layer otherwise).

    Example:
        >>> feature_shape("norm", (None, 3, 4), (1, -1))
        (3, 4)
        >>> feature_shape("norm", (8, None), -1)
        Traceback (most recent call last):
        ValueError: norm: the feature axis of shape (8, None) is unknown
    """
    _, kept = feature_axes(len(input_shape), axis)
    features = tuple(input_shape[a] for a in kept)
    if any(n is None for n in features):
        raise ValueError(f"{layer}: the feature axis of shape {input_shape} is unknown")
    return cast("tuple[int, ...]", features)


def feature_variable(layer: Any, label: str,
                     init: Callable[[tuple[int, ...], None, Any], np.ndarray],
                     trainable: bool = True) -> Variable:
    """A per-feature variable of a normalization layer (its `features`, `dtype` and `name`),
    named `<layer name>/<label>`.

    Example:
        >>> norm = BatchNorm(); norm.build((None, 3))
        >>> feature_variable(norm, "extra", initializers.ones).name.endswith("/extra")
        True
    """
    return Variable(init(layer.features, None, layer.dtype), trainable=trainable,
                    name=f"{layer.name}/{label}")



def scale_shift_variables(layer: Any) -> None:
    """Give a normalization layer its per-feature `gamma` (ones) and `beta` (zeros), as its
    `scale` and `center` flags ask.

    Example:
        >>> norm = BatchNorm(center=False); norm.build((None, 3))
        >>> norm.gamma.numpy(), hasattr(norm, "beta")
        (array([1., 1., 1.], dtype=float32), False)
    """
    if layer.scale:
        layer.gamma = feature_variable(layer, "gamma", initializers.ones)
    if layer.center:
        layer.beta = feature_variable(layer, "beta", initializers.zeros)

def per_feature(v: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """A per-feature array shaped to broadcast against `x` (unit length on `axes`).

    Example:
        >>> per_feature(np.ones(3), np.ones((2, 3, 4)), (0, 2)).shape
        (1, 3, 1)
    """
    if axes == tuple(range(len(axes))):  # features are the trailing axes: broadcasts as is
        return v
    return v.reshape(tuple(1 if i in axes else n for i, n in enumerate(x.shape)))


def _count(x: Any, axes: tuple[int, ...]) -> int:
    return x.shape[axes[0]] if len(axes) == 1 else math.prod(x.shape[a] for a in axes)


_add_reduce = np.add.reduce  # what ndarray.sum calls, without its Python wrapper (same bits)
_all = np.logical_and.reduce  # what ndarray.all calls
_add, _divide, _multiply, _sqrt = np.add, np.divide, np.multiply, np.sqrt
_subtract, _isfinite = np.subtract, np.isfinite


def _sum(x: Any, axes: tuple[int, ...]) -> Any:
    """`x.sum(axis=axes, keepdims=True)`. For a population's per-member batch sums (axis 1 of
    (K, B, F) arrays) `einsum` is about three times faster than NumPy's reduction over a
    middle axis, and adds in the same order (row after row), so the bits are the same."""
    if type(x) is np.ndarray:  # the first-order path (and every replay): no wrappers
        if axes == (1,) and x.ndim == 3:
            return np.einsum("kbf->kf", x)[:, None, :]
        return _add_reduce(x, axis=axes, keepdims=True)
    return x.sum(axis=axes, keepdims=True)


def _dot(a: Any, b: Any, axes: tuple[int, ...]) -> Any:
    """`_sum(a * b, axes)`; for a population's (K, B, F) arrays one einsum pass, without the
    temporary product (the same bits: each product is rounded, then added in order)."""
    if axes == (1,) and a.ndim == 3 and type(a) is np.ndarray and type(b) is np.ndarray:
        return np.einsum("kbf,kbf->kf", a, b)[:, None, :]
    return _sum(a * b, axes)


_einsum, _repeat = np.einsum, np.repeat
_SPREAD_BELOW = 1024  # features per member under which a per-feature operand is spread first


def _spread(v: np.ndarray, rows: int, features: int) -> np.ndarray:
    """A population's per-feature (K, 1, F) array `v` repeated to (K, rows, F). NumPy's
    elementwise loops on a (K, B, F) array against a (K, 1, F) one run F elements at a time,
    about twice as slow as on two whole (K, B, F) arrays: below about a thousand features the
    copy pays for itself (measured: 25 against 33 us for (32, 64, 64) float32, 148 against
    213 us for (32, 64, 512), about even at 1024). The same values meet, so the same bits."""
    return _repeat(v, rows, axis=1) if features < _SPREAD_BELOW else v


def _with_spread(op: np.ufunc, a: np.ndarray, v: np.ndarray, rows: int, features: int
                 ) -> np.ndarray:
    """`op(a, v)` for a population's (K, rows, F) array `a` and per-feature (K, 1, F) `v`,
    written over the spread copy of `v` when there is one of the result's dtype."""
    spread = _spread(v, rows, features)
    if spread is not v and spread.dtype == a.dtype:
        return op(a, spread, out=spread)
    return op(a, spread)


# The formulas below are written once for arrays and tensors. Augmented assignments (`t -= u`)
# work in place on the fresh arrays of the first-order path and rebind on (immutable) tensors.
def normalize(x: Any, axes: tuple[int, ...], epsilon: float) -> tuple[Any, ...]:
    """(x_hat, mean, var, 1/std) over `axes` (keepdims, biased variance); records when `x` is
    a tensor.

    Example:
        >>> normalize(np.array([[1.0, 3.0]]), (1,), 0.0)[0]
        array([[-1.,  1.]])
    """
    n = _count(x, axes)
    mean = _sum(x, axes) / n
    xhat = x - mean
    var = _dot(xhat, xhat, axes) / n
    if type(var) is np.ndarray:  # the same operations, in place on the fresh array
        rstd = np.add(var, epsilon)
        np.divide(1, np.sqrt(rstd, out=rstd), out=rstd)
    else:
        rstd = 1 / np.sqrt(var + epsilon)
    xhat *= rstd
    return xhat, mean, var, rstd


def scale_shift(xhat: Any, gamma: Any, beta: Any, x: Any, axes: tuple[int, ...]) -> Any:
    """`x_hat * gamma + beta` (either None: left out), the per-feature `gamma`/`beta` with unit
    length on `axes`; `x_hat` itself when both are None.

    Example:
        >>> scale_shift(np.ones((2, 3)), np.arange(3.0), None, np.ones((2, 3)), (0,))[0]
        array([0., 1., 2.])
    """
    if gamma is None:
        return xhat if beta is None else xhat + per_feature(beta, x, axes)
    y = xhat * per_feature(gamma, x, axes)
    if beta is not None:
        y += per_feature(beta, x, axes)
    return y


def scale_shift_tangent(out: Any, xhat: Any, tgamma: Any, tbeta: Any, x: Any,
                        axes: tuple[int, ...]) -> Any:
    """`out + tgamma * x_hat + tbeta`, leaving out the None terms: the tangent that the
    per-feature parameters (unit length on `axes`) add to a normalization's output.

    Example:
        >>> scale_shift_tangent(None, np.ones((2, 3)), None, np.arange(3.0), np.ones((2, 3)),
        ...                     (0,)).shape
        (3,)
    """
    if tgamma is not None:
        term = xhat * per_feature(tgamma, x, axes)
        out = term if out is None else out + term
    if tbeta is not None:
        term = per_feature(tbeta, x, axes)
        out = term if out is None else out + term
    return out


def _forward(x: Any, gamma: Any, beta: Any, *, axes: tuple[int, ...], epsilon: float
             ) -> tuple[Any, tuple[Any, ...]]:
    """(y, residuals): the residuals are (x_hat, batch mean, batch variance, 1/std)."""
    if axes == (0,) and type(x) is np.ndarray:
        # Raw arrays with the features trailing (the first-order path and every replay): the
        # operations of `normalize` and `scale_shift`, written out straight, in place on the
        # fresh arrays (the same bits).
        n = x.shape[0]
        mean = _add_reduce(x, axis=axes, keepdims=True) / n  # not in place: x may be integers
        xhat = x - mean
        var = _add_reduce(xhat * xhat, axis=axes, keepdims=True)
        var /= n
        rstd = _add(var, epsilon)
        _divide(1, _sqrt(rstd, out=rstd), out=rstd)
        xhat *= rstd
        if gamma is None:
            y = xhat if beta is None else xhat + beta
        else:
            y = xhat * gamma
            if beta is not None:
                y += beta
        return y, (xhat, mean, var, rstd)
    if (axes == (1,) and type(x) is np.ndarray and x.ndim == 3
            and type(gamma) in (np.ndarray, type(None)) and type(beta) in (np.ndarray, type(None))):
        # A population's (K, B, F) raw arrays: the operations of `normalize` and `scale_shift`
        # (einsum sums over axis 1), written out straight, the per-feature operands spread.
        k, n, f = x.shape
        mean = _einsum("kbf->kf", x)[:, None, :] / n
        xhat = _with_spread(_subtract, x, mean, n, f)
        var = _einsum("kbf,kbf->kf", xhat, xhat)[:, None, :] / n
        rstd = _add(var, epsilon)
        _divide(1, _sqrt(rstd, out=rstd), out=rstd)
        xhat *= _spread(rstd, n, f)
        if gamma is None:
            y = xhat if beta is None else _with_spread(_add, xhat, beta.reshape(k, 1, f), n, f)
        else:
            y = _with_spread(_multiply, xhat, gamma.reshape(k, 1, f), n, f)
            if beta is not None:
                y += _spread(beta.reshape(k, 1, f), n, f)
        return y, (xhat, mean, var, rstd)
    residuals = normalize(x, axes, epsilon)
    return scale_shift(residuals[0], gamma, beta, x, axes), residuals


def batch_norm_vjp(needed: list[int], g: Any, ans: Any, residuals: tuple[Any, ...] | None, x: Any,
           gamma: Any, beta: Any, *, axes: tuple[int, ...], epsilon: float) -> tuple[Any, ...]:
    """(dx, dgamma, dbeta), each only if `needed`; sums over `axes`:
    dx = gamma / (n * std) * (n * g - sum(g) - x_hat * sum(g * x_hat)),
    dgamma = sum(g * x_hat), dbeta = sum(g). With gamma and beta None, the gradient of plain
    normalization over `axes` (layer norm's, before its per-feature gamma).

    Example:
        >>> x = np.array([[0.0, 1.0, 5.0]])
        >>> dx, _, _ = batch_norm_vjp([0], np.ones((1, 3)), None, None, x, None, None,
        ...                           axes=(1,), epsilon=1e-3)
        >>> np.abs(dx).max() < 1e-12  # a shift of x does not move x_hat
        np.True_
    """
    if axes == (0,) and residuals is not None and type(g) is np.ndarray:
        # Raw arrays with the features trailing (the first-order path and every replay): the
        # operations below, written out straight, in place on the fresh arrays (the same bits).
        xhat, _, _, rstd = residuals
        want_dx = 0 in needed
        dx: Any = None
        g_xhat: Any = None
        g_sum: Any = None
        if want_dx or 1 in needed:
            prod = g * xhat
            g_xhat = _add_reduce(prod, axis=axes, keepdims=True)
        if want_dx or 2 in needed:
            g_sum = _add_reduce(g, axis=axes, keepdims=True)
        if want_dx:
            n = x.shape[0]
            scale = rstd / n
            if gamma is not None:
                scale = gamma * scale  # not in place: gamma's dtype may be the wider one
            dx = g * n
            dx -= g_sum
            dx -= _multiply(xhat, g_xhat, out=prod)
            dx *= scale
        return (dx, g_xhat.reshape(gamma.shape) if 1 in needed else None,
                g_sum.reshape(beta.shape) if 2 in needed else None)
    if (axes == (1,) and residuals is not None and type(g) is np.ndarray and g.ndim == 3
            and type(residuals[0]) is np.ndarray and type(gamma) in (np.ndarray, type(None))):
        # A population's (K, B, F) raw arrays: the operations below (einsum sums over axis 1),
        # written out straight, in place on the fresh arrays, the per-feature operands spread.
        xhat, _, _, rstd = residuals
        k, n, f = g.shape
        want_dx = 0 in needed
        dx = g_xhat = g_sum = None
        if want_dx or 1 in needed:
            g_xhat = _einsum("kbf,kbf->kf", g, xhat)[:, None, :]
        if want_dx or 2 in needed:
            g_sum = _einsum("kbf->kf", g)[:, None, :]
        if want_dx:
            scale = rstd / n
            if gamma is not None:
                scale = gamma.reshape(k, 1, f) * scale  # not in place: gamma may be wider
            dx = g * n
            dx -= _spread(g_sum, n, f)
            dx -= _with_spread(_multiply, xhat, g_xhat, n, f)
            dx *= _spread(scale, n, f)
        return (dx, g_xhat.reshape(gamma.shape) if 1 in needed else None,
                g_sum.reshape(beta.shape) if 2 in needed else None)
    if residuals is None:
        # Under an outer tape the inputs are tensors: recompute x_hat and 1/std from x with
        # recorded operations, so that the rule itself is differentiable.
        xhat, _, _, rstd = normalize(x, axes, epsilon)
        if not isinstance(g, Tensor):
            g = tape.constant(g)  # so that the in-place steps below rebind instead of writing
    else:
        xhat, _, _, rstd = residuals
    g_xhat = _dot(g, xhat, axes) if 0 in needed or 1 in needed else None
    g_sum = _sum(g, axes) if 0 in needed or 2 in needed else None
    dx = None
    if 0 in needed:
        n = _count(x, axes)
        scale = rstd / n if gamma is None else per_feature(gamma, x, axes) * (rstd / n)
        dx = g * n
        dx -= g_sum
        dx -= xhat * g_xhat
        dx *= scale
    dgamma = g_xhat.reshape(gamma.shape) if 1 in needed else None
    dbeta = g_sum.reshape(beta.shape) if 2 in needed else None
    return dx, dgamma, dbeta


def batch_norm_jvp(tangents: list[Any], ans: Any, residuals: tuple[Any, ...] | None, x: Any,
                   gamma: Any, beta: Any, *, axes: tuple[int, ...], epsilon: float) -> Any:
    """The output's tangent (forward mode), sums and means over `axes`:
    dy = gamma / std * (dx - mean(dx) - x_hat * mean(dx * x_hat)) + dgamma * x_hat + dbeta.

    Example:
        >>> x = np.array([[0.0, 1.0, 5.0]])
        >>> dy = batch_norm_jvp([np.ones((1, 3)), None, None], None, None, x, None, None,
        ...                     axes=(1,), epsilon=1e-3)
        >>> np.abs(dy).max() < 1e-12
        np.True_
    """
    tx, tgamma, tbeta = tangents
    if residuals is None:  # tensors under an outer tape: recompute with recorded operations
        xhat, _, _, rstd = normalize(x, axes, epsilon)
    else:
        xhat, _, _, rstd = residuals
    out: Any = None
    if tx is not None:
        n = _count(x, axes)
        scale = rstd if gamma is None else per_feature(gamma, x, axes) * rstd
        out = (tx - _sum(tx, axes) / n - xhat * (_dot(tx, xhat, axes) / n)) * scale
    return scale_shift_tangent(out, xhat, tgamma, tbeta, x, axes)


_batch_norm_p = tape.Primitive("nn.batch_norm", _forward, residuals=True
                               ).defvjp_all(batch_norm_vjp).defjvp_all(batch_norm_jvp)


def _training_forward(x: Any, gamma: Any, beta: Any, axes: tuple[int, ...], epsilon: float
                      ) -> tuple[Tensor, Any, Any]:
    """The fused primitive on checked arguments: (y, batch mean, batch variance), keepdims."""
    if _count(x, axes) < 2:
        raise ValueError(f"batch norm in training mode needs more than one value per feature "
                         f"(the batch variance is undefined otherwise); got an input of shape "
                         f"{x.shape}, normalized over axes {axes}. Use a batch of at least 2, "
                         f"or training=False")
    y, (_, mean, var, _) = _batch_norm_p.call_with_residuals(x, gamma, beta, axes=axes,
                                                             epsilon=epsilon)
    return y, mean, var


def batch_norm_with_stats(x: Any, gamma: Any = None, beta: Any = None, *, axis: Any = -1,
                          epsilon: float = 1e-3) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """`batch_norm` plus the batch mean and biased variance (arrays of the features' shape).

    Example:
        >>> y, mean, var = batch_norm_with_stats(np.array([[0.0], [2.0]]))
        >>> mean, var
        (array([1.]), array([1.]))
    """
    x = x if isinstance(x, Tensor) else np.asarray(x)
    axes, kept = feature_axes(x.ndim, axis)
    features = tuple(x.shape[a] for a in kept)
    gamma, beta = (v if v is None or isinstance(v, Tensor) else np.asarray(v)
                   for v in (gamma, beta))
    for label, v in (("gamma", gamma), ("beta", beta)):
        if v is not None and v.shape != features:
            raise ValueError(f"batch norm {label} has shape {v.shape}, but the input of "
                             f"shape {x.shape} has features of shape {features} on axis {axis}")
    y, mean, var = _training_forward(x, gamma, beta, axes, float(epsilon))
    return y, mean.reshape(features), var.reshape(features)


def batch_norm(x: Any, gamma: Any = None, beta: Any = None, *, axis: Any = -1,
               epsilon: float = 1e-3) -> Tensor:
    """Normalize `x` with its batch statistics, then scale by `gamma` and shift by `beta`.

    Statistics are taken over every axis except `axis` (the features; an int or a tuple);
    `gamma`/`beta` have the features' shape, or are None (no scale / no shift). One primitive
    with the closed-form gradient; its rule is differentiable, so second derivatives work.

    Example:
        >>> batch_norm(np.array([[1.0], [3.0]]), epsilon=0.0).numpy()
        array([[-1.],
               [ 1.]])
    """
    return batch_norm_with_stats(x, gamma, beta, axis=axis, epsilon=epsilon)[0]


class BatchNorm(Module):
    """Batch normalization with Keras' conventions.

    `training=True` normalizes with the batch mean and biased batch variance and updates the
    running statistics as `running = momentum * running + (1 - momentum) * batch` (the
    course's exponentially weighted average), with the biased variance, outside any tape
    (`Variable.assign_sub`); a batch with non-finite statistics leaves them unchanged (its
    NaN output makes the loss NaN, and `fit` stops). `training=False` normalizes with the
    running statistics, which start at mean 0 and variance 1. `gamma`/`beta` are trainable
    (`scale`/`center` switch them off); `moving_mean`/`moving_variance` are not.

    From PyTorch's `BatchNorm1d(momentum=p, eps=e)`: use `momentum = 1 - p` (PyTorch's default
    0.1 is 0.9 here; a momentum below 0.5 warns, as it is most likely PyTorch's convention)
    and `epsilon = e`. PyTorch stores the unbiased running variance
    (`var * n / (n - 1)` for a batch of n); this layer, like Keras, stores the biased one.

    Inside an `nn.Population` of K members (`population == K`) every variable is (K, features)
    and each member normalizes over its own batch: axis 0 of the input is the member axis and
    is never reduced; a member whose batch statistics are not finite keeps its running ones.

    Example:
        >>> bn = BatchNorm()
        >>> y = bn(np.array([[0.0, 1.0], [2.0, 5.0]]), training=True)
        >>> bn.moving_mean.numpy()
        array([0.01, 0.03], dtype=float32)
    """

    population: int | None = None  # members, once nn.Population stacked this layer

    gamma: Variable  # made by `build` (with `scale`)
    beta: Variable  # made by `build` (with `center`)

    def __init__(self, axis: int | tuple[int, ...] = -1, momentum: float = 0.99,
                 epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 dtype: Any = np.float32, name: str | None = None) -> None:
        super().__init__(name)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm momentum must lie in [0, 1] (Keras convention: the "
                             f"weight of the old running value), got {momentum}")
        if epsilon <= 0:
            raise ValueError(f"BatchNorm epsilon must be positive, got {epsilon}")
        if momentum < 0.5:
            warnings.warn(
                f"BatchNorm(momentum={momentum}): this layer follows Keras' convention, where "
                f"momentum is the weight of the OLD running value (running = momentum * running "
                f"+ (1 - momentum) * batch; default 0.99). PyTorch's momentum is the weight of "
                f"the new batch: PyTorch's momentum={momentum} is momentum={1 - momentum:g} here",
                UserWarning, stacklevel=2)
        self.axis = axis
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.dtype = np.dtype(dtype)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.features = feature_shape(self.name, input_shape, self.axis)
        scale_shift_variables(self)
        self.moving_mean = feature_variable(self, "moving_mean", initializers.zeros,
                                            trainable=False)
        self.moving_variance = feature_variable(self, "moving_variance", initializers.ones,
                                                trainable=False)

    def stack_members(self, size: int) -> None:
        """The population hook (`nn.Module.stack_members`): every variable (K, features),
        the member axis 0 of the input never reduced.

        Example:
            >>> bn = BatchNorm(); bn.stack_members(3); bn.population
            3
        """
        self.population = size

    def call(self, x: Any, training: bool = False) -> Any:
        x = as_floating(x, self.dtype)
        axes, kept, features = self._layout(x.ndim)
        if tuple(x.shape[a] for a in kept) != features:
            raise ValueError(f"{self.name}: the input of shape {x.shape} has features of shape "
                             f"{tuple(x.shape[a] for a in kept)} on axis {self.axis}, but the "
                             f"layer was built for {features}")
        gamma = self.gamma if self.scale else None
        beta = self.beta if self.center else None
        if training:
            y, mean, var = _training_forward(x, gamma, beta, axes, self.epsilon)
            self._update_running(mean.reshape(features), var.reshape(features))
            return y
        # y = x * s + (beta - mean * s),  s = gamma / sqrt(running_var + epsilon)
        s = 1 / tape.sqrt(self.moving_variance + self.epsilon)
        if gamma is not None:
            s = s * gamma
        shift = -self.moving_mean * s
        if beta is not None:
            shift = shift + beta
        return x * per_feature(s, x, axes) + per_feature(shift, x, axes)

    def _layout(self, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(reduced axes, kept axes, features' shape) for inputs of `ndim` axes; in a
        population the member axis 0 is kept and `axis` counts within one member's input."""
        if self.population is None:
            return (*feature_axes(ndim, self.axis), self.features)
        axes, kept = feature_axes(ndim - 1, self.axis)
        return (tuple(a + 1 for a in axes), (0, *(a + 1 for a in kept)),
                (self.population, *self.features))

    @tape.kernel  # raw-array code: one step of a tape.function program
    def _update_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        """`running -= (running - batch) * (1 - momentum)`, skipped where the batch statistics
        are not finite (the whole layer, or those members of a population)."""
        finite = _isfinite(var)  # a non-finite mean makes the variance NaN too
        if self.population is None:
            if not _all(finite, None):
                return
            some = None  # every member (there is one) is kept
        else:
            keep = _all(finite.reshape(self.population, -1), 1)
            if not keep.any():
                return
            some = None if keep.all() else ~keep
        rate = 1 - self.momentum
        for running, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
            delta = _subtract(running.numpy(), batch)
            delta *= rate
            if some is not None:
                delta[some] = 0
            running.assign_sub(delta)
