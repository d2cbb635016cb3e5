"""Activations as functions and as layers, composed from tape's primitives.

`softmax` and `log_softmax` are built on `tape.logsumexp`, so they are exact for logits of any
magnitude; training uses the fused `softmax_cross_entropy`, so they need no rule of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import tape
from nn.layers.module import Module
from tape.utils import names


def relu(x: Any) -> tape.Tensor:
    """max(x, 0).

    Example:
        >>> relu(np.array([-1.0, 2.0])).numpy()
        array([0., 2.])
    """
    return tape.relu(x)


def leaky_relu(x: Any, alpha: float = 0.2) -> tape.Tensor:
    """x where x > 0, else `alpha * x` (`alpha=0.2` as `tf.nn.leaky_relu`; PyTorch uses 0.01).

    Example:
        >>> leaky_relu(np.array([-1.0, 2.0]), alpha=0.1).numpy()
        array([-0.1,  2. ])
    """
    return tape.where(_positive(x), x, tape.multiply(x, alpha))


def tanh(x: Any) -> tape.Tensor:
    """Hyperbolic tangent.

    Example:
        >>> tanh(np.array([0.0])).numpy()
        array([0.])
    """
    return tape.tanh(x)


def sigmoid(x: Any) -> tape.Tensor:
    """1 / (1 + exp(-x)), exact in both tails.

    Example:
        >>> sigmoid(np.array([0.0])).numpy()
        array([0.5])
    """
    return tape.sigmoid(x)


def log_softmax(x: Any, axis: int = -1) -> tape.Tensor:
    """x - logsumexp(x) along `axis`: log-probabilities, stable for any logits.

    The logits are first shifted by their (constant) maximum, which keeps float32 results
    accurate for logits of magnitude 1e4; the shift does not change the value or gradient.

    Example:
        >>> log_softmax(np.array([1e4, 1e4])).numpy()
        array([-0.69314718, -0.69314718])
    """
    shifted = tape.subtract(x, _finite_max(x, axis))
    return shifted - tape.logsumexp(shifted, axis=axis, keepdims=True)


@tape.kernel  # under tape.function: recomputed from the values of each call
def _finite_max(x: Any, axis: int) -> np.ndarray:
    """The maximum of `x` along `axis` (kept), 0 where it is not finite: a constant shift."""
    m = np.max(np.asarray(x), axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0)


def softmax(x: Any, axis: int = -1) -> tape.Tensor:
    """exp(x) / sum(exp(x)) along `axis`, computed as exp(log_softmax(x)).

    Example:
        >>> softmax(np.array([-1e4, 0.0, 1e4])).numpy()
        array([0., 0., 1.])
    """
    return tape.exp(log_softmax(x, axis=axis))


def _positive(x: Any) -> Any:
    """The mask `x > 0`: a comparison, so `tape.function` traces it (no conversion)."""
    return (x if isinstance(x, tape.Tensor) else np.asarray(x)) > 0


def softplus(x: Any) -> tape.Tensor:
    """log(1 + exp(x)), accurate in both tails: `max(x, 0) + log1p(exp(-|x|))`, with `-|x|`
    written as `minimum(x, -x)` so that the gradient is sigmoid(x) everywhere, 0.5 at 0.

    Example:
        >>> softplus(np.array([-40.0, 0.0, 1000.0])).numpy()
        array([4.24835426e-18, 6.93147181e-01, 1.00000000e+03])
    """
    return tape.where(_positive(x), x, 0.0) + tape.log1p(tape.exp(tape.minimum(x, -x)))


def elu(x: Any, alpha: float = 1.0) -> tape.Tensor:
    """x where x > 0, else `alpha * (exp(x) - 1)` (Keras' and PyTorch's default alpha 1).

    Example:
        >>> elu(np.array([-1.0, 2.0])).numpy()
        array([-0.63212056,  2.        ])
    """
    negative = tape.multiply(tape.exp(tape.minimum(x, 0)) - 1, alpha)  # exp never overflows
    return tape.where(_positive(x), x, negative)


_SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))


def gelu(x: Any, approximate: bool = False) -> tape.Tensor:
    """The Gaussian error linear unit, `x * Phi(x)` (Phi: the standard normal CDF), as Keras'
    `gelu`: exact by default, `0.5 x (1 + erf(x / sqrt 2))`; with `approximate=True` the tanh
    form `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (the exact form calls `math.erf`
    per element, so the approximation is faster on large arrays).

    Example:
        >>> gelu(np.array([-1.0, 0.0, 1.0])).numpy()
        array([-0.15865525,  0.        ,  0.84134475])
    """
    if approximate:
        inner = tape.multiply(x + 0.044715 * x * x * x, _SQRT_2_OVER_PI)
        return 0.5 * x * (1 + tape.tanh(inner))
    return 0.5 * x * (1 + tape.erf(tape.multiply(x, float(1 / np.sqrt(2)))))


_BY_NAME: dict[str, Callable[..., Any]] = {
    "relu": relu, "leaky_relu": leaky_relu, "tanh": tanh, "sigmoid": sigmoid,
    "softmax": softmax, "log_softmax": log_softmax, "softplus": softplus, "elu": elu,
    "gelu": gelu,
}


def get(identifier: str | Callable[..., Any] | None) -> Callable[..., Any] | None:
    """An activation function by name (e.g. `'relu'`), a callable as given, or None (linear).

    Example:
        >>> get("relu") is relu
        True
    """
    if identifier is None or callable(identifier):
        return identifier
    return names.pick(_BY_NAME, identifier, "activation", "a callable or None")


# ---- layer forms ---------------------------------------------------------------------------
class Activation(Module):
    """An activation function as a layer: `Activation('relu')`, `Activation(fn, alpha=0.1)`.

    Example:
        >>> Activation("tanh")(np.zeros(2)).numpy()
        array([0., 0.])
    """

    def __init__(self, activation: str | Callable[..., Any], name: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name)
        fn = get(activation)
        if fn is None:
            raise ValueError("Activation needs a function or a name, got None")
        self.fn = fn
        self.kwargs = kwargs
        self.built = True

    def call(self, x: Any, training: bool = False) -> Any:
        return self.fn(x, **self.kwargs)


class ReLU(Activation):
    """`relu` as a layer.

    Example:
        >>> ReLU()(np.array([-1.0, 1.0])).numpy()
        array([0., 1.])
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(relu, name)


class LeakyReLU(Activation):
    """`leaky_relu` as a layer.

    Example:
        >>> LeakyReLU(alpha=0.5)(np.array([-1.0])).numpy()
        array([-0.5])
    """

    def __init__(self, alpha: float = 0.2, name: str | None = None) -> None:
        super().__init__(leaky_relu, name, alpha=alpha)


class Tanh(Activation):
    """`tanh` as a layer.

    Example:
        >>> Tanh()(np.zeros(1)).numpy()
        array([0.])
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(tanh, name)


class Sigmoid(Activation):
    """`sigmoid` as a layer.

    Example:
        >>> Sigmoid()(np.zeros(1)).numpy()
        array([0.5])
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(sigmoid, name)


class Softmax(Activation):
    """`softmax` as a layer (along `axis`).

    Example:
        >>> Softmax()(np.zeros(2)).numpy()
        array([0.5, 0.5])
    """

    def __init__(self, axis: int = -1, name: str | None = None) -> None:
        super().__init__(softmax, name, axis=axis)


class LogSoftmax(Activation):
    """`log_softmax` as a layer (along `axis`).

    Example:
        >>> LogSoftmax()(np.zeros(2)).numpy()
        array([-0.69314718, -0.69314718])
    """

    def __init__(self, axis: int = -1, name: str | None = None) -> None:
        super().__init__(log_softmax, name, axis=axis)
