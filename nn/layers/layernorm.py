"""Layer normalization: one fused primitive (closed-form gradient) and the `LayerNorm` layer.

`y = gamma * (x - mean) / sqrt(var + epsilon) + beta`, with the mean and the biased variance of
each example taken over the feature axes, and `gamma`/`beta` one value per feature. The
normalization is batch norm's with the roles of the axes swapped (`nn.layers.batchnorm`'s helpers);
only the per-feature scale and shift now vary inside the reduction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tape
from nn.layers.batchnorm import (
    batch_norm_jvp,
    batch_norm_vjp,
    feature_axes,
    feature_shape,
    normalize,
    per_feature,
    scale_shift,
    scale_shift_tangent,
    scale_shift_variables,
)
from nn.layers.module import Module, as_floating
from tape import Tensor, Variable


def _others(x: Any, axes: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of `x` that are not normalized (the example axes)."""
    return tuple(a for a in range(x.ndim) if a not in axes)


def _forward(x: Any, gamma: Any, beta: Any, *, axes: tuple[int, ...], epsilon: float
             ) -> tuple[Any, tuple[Any, ...]]:
    """(y, residuals): the residuals are (x_hat, mean, variance, 1/std), keepdims over `axes`
    (the normalized feature axes)."""
    residuals = normalize(x, axes, epsilon)
    return scale_shift(residuals[0], gamma, beta, x, _others(x, axes)), residuals


def _grads(needed: list[int], g: Any, ans: Any, residuals: tuple[Any, ...] | None, x: Any,
           gamma: Any, beta: Any, *, axes: tuple[int, ...], epsilon: float) -> tuple[Any, ...]:
    """(dx, dgamma, dbeta), each only if `needed`: with g' = g * gamma, dx is plain
    normalization's gradient of g' (sums over the feature axes); dgamma = sum(g * x_hat) and
    dbeta = sum(g) over the example axes."""
    if residuals is None:  # tensors under an outer tape: recompute with recorded operations
        residuals = normalize(x, axes, epsilon)
        g = g if isinstance(g, Tensor) else tape.constant(g)
    xhat = residuals[0]
    others = _others(x, axes)
    dx = dgamma = dbeta = None
    if 0 in needed:
        scaled = g if gamma is None else g * per_feature(gamma, x, others)
        dx = batch_norm_vjp([0], scaled, ans, residuals, x, None, None, axes=axes,
                            epsilon=epsilon)[0]
    if 1 in needed:
        dgamma = (g * xhat).sum(axis=others)
    if 2 in needed:
        dbeta = g.sum(axis=others)
    return dx, dgamma, dbeta


def _jvp(tangents: list[Any], ans: Any, residuals: tuple[Any, ...] | None, x: Any, gamma: Any,
         beta: Any, *, axes: tuple[int, ...], epsilon: float) -> Any:
    """dy = gamma * (plain normalization's tangent of dx) + dgamma * x_hat + dbeta."""
    tx, tgamma, tbeta = tangents
    if residuals is None:  # tensors under an outer tape: recompute with recorded operations
        residuals = normalize(x, axes, epsilon)
    others = _others(x, axes)
    out: Any = None
    if tx is not None:
        out = batch_norm_jvp([tx, None, None], ans, residuals, x, None, None, axes=axes,
                             epsilon=epsilon)
        if gamma is not None:
            out = out * per_feature(gamma, x, others)
    return scale_shift_tangent(out, residuals[0], tgamma, tbeta, x, others)


_layer_norm_p = tape.Primitive("nn.layer_norm", _forward, residuals=True
                               ).defvjp_all(_grads).defjvp_all(_jvp)


def layer_norm(x: Any, gamma: Any = None, beta: Any = None, *, axis: Any = -1,
               epsilon: float = 1e-3) -> Tensor:
    """Normalize each example of `x` over the feature `axis` (an int or a tuple), then scale
    by `gamma` and shift by `beta` (the features' shape, or None: no scale / no shift).

    One primitive with the closed-form gradient; its rule is differentiable, so second
    derivatives work. Unlike batch norm, the statistics are per example: the result does not
    depend on the batch, and a batch of one is fine.

    Example:
        >>> layer_norm(np.array([[1.0, 3.0], [0.0, 10.0]]), epsilon=0.0).numpy()
        array([[-1.,  1.],
               [-1.,  1.]])
    """
    x = x if isinstance(x, Tensor) else np.asarray(x)
    _, axes = feature_axes(x.ndim, axis)
    features = tuple(x.shape[a] for a in axes)
    gamma, beta = (v if v is None or isinstance(v, Tensor) else np.asarray(v)
                   for v in (gamma, beta))
    for label, v in (("gamma", gamma), ("beta", beta)):
        if v is not None and v.shape != features:
            raise ValueError(f"layer norm {label} has shape {v.shape}, but the input of "
                             f"shape {x.shape} has features of shape {features} on axis {axis}")
    return _layer_norm_p(x, gamma, beta, axes=axes, epsilon=float(epsilon))


class LayerNorm(Module):
    """Layer normalization with Keras' conventions (`keras.layers.LayerNormalization`).

    Each example is normalized over the feature `axis` (an int or a tuple; default the last)
    with its own mean and biased variance, then scaled by `gamma` (ones at first) and shifted
    by `beta` (zeros), one of each per feature (`scale`/`center` switch them off). There are
    no running statistics: training and inference compute the same thing.

    Not for `nn.Population` (stacking a population whose layers include it is an error).

    Example:
        >>> ln = LayerNorm()
        >>> ln(np.array([[0.0, 0.1], [1.0, 5.0]])).numpy().round(3)  # epsilon 1e-3 shows
        array([[-0.845,  0.845],
               [-1.   ,  1.   ]], dtype=float32)
        >>> ln.gamma.shape, ln.beta.shape
        ((2,), (2,))
    """

    gamma: Variable  # made by `build` (with `scale`)
    beta: Variable  # made by `build` (with `center`)

    def __init__(self, axis: int | tuple[int, ...] = -1, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, dtype: Any = np.float32,
                 name: str | None = None) -> None:
        super().__init__(name)
        if not epsilon > 0:
            raise ValueError(f"LayerNorm epsilon must be positive, got {epsilon}")
        self.axis = axis
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.dtype = np.dtype(dtype)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.features = feature_shape(self.name, input_shape, self.axis)
        scale_shift_variables(self)

    def call(self, x: Any, training: bool = False) -> Any:
        x = as_floating(x, self.dtype)
        _, kept = feature_axes(x.ndim, self.axis)
        if tuple(x.shape[a] for a in kept) != self.features:
            raise ValueError(f"{self.name}: the input of shape {x.shape} has features of shape "
                             f"{tuple(x.shape[a] for a in kept)} on axis {self.axis}, but the "
                             f"layer was built for {self.features}")
        return layer_norm(x, self.gamma if self.scale else None,
                          self.beta if self.center else None, axis=self.axis,
                          epsilon=self.epsilon)
