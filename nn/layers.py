"""`Dense` and `Sequential`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

import tape
from nn import activations, initializers, regularizers, seeding
from nn.module import Module, as_floating
from tape import Tensor, Variable

_SEEDING = threading.local()  # .stack: [seed, layers seeded so far] per open `seeded` block


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed the layers created inside the block that get neither `seed` nor `rng`.

    The i-th such layer (0-based, in creation order) draws its weights from
    `np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))`; layers given a
    `seed` or an `rng` keep theirs. `nn.Population` builds member k inside
    `seeded(pop.seeds[k])`. Blocks nest (the innermost counts) and are per thread.

    Example:
        >>> with seeded(7):
        ...     a = Dense(2, input_dim=3)
        >>> with seeded(7):
        ...     b = Dense(2, input_dim=3)
        >>> bool((a.kernel.numpy() == b.kernel.numpy()).all())
        True
    """
    stack = _SEEDING.__dict__.setdefault("stack", [])
    stack.append([int(seed), 0])
    try:
        yield
    finally:
        stack.pop()


def make_rng(seed: int | None, rng: np.random.Generator | None) -> np.random.Generator:
    """The generator a layer draws its initial weights from: `rng`, else one seeded by `seed`.

    With neither, the next generator of the innermost `seeded` block, else the next stream of
    the global seed (`nn.set_seed`), else a fresh generator seeded from the OS (like an
    unseeded NumPy run).

    Example:
        >>> int(make_rng(0, None).integers(10)) == int(make_rng(0, None).integers(10))
        True
    """
    if rng is not None:
        if seed is not None:
            raise ValueError("pass either seed or rng, not both")
        return rng
    stack = getattr(_SEEDING, "stack", None)
    if seed is None and stack:
        block = stack[-1]
        block[1] += 1
        return np.random.default_rng(np.random.SeedSequence(block[0], spawn_key=(block[1] - 1,)))
    return np.random.default_rng(seeding.next_seed_sequence() if seed is None else seed)


def per_member(v: Any, ndim: int) -> Any:
    """A population's stacked variable `v` (members on axis 0) reshaped to broadcast against
    stacked arrays of `ndim` axes: unit axes inserted after the member axis.

    Example:
        >>> per_member(np.zeros((4, 3)), 3).shape
        (4, 1, 3)
    """
    extra = ndim - v.ndim
    return v if extra <= 0 else tape.reshape(v, v.shape[:1] + (1,) * extra + v.shape[1:])


class Dense(Module):
    """A fully connected layer: `activation(x @ kernel + bias)`, kernel of shape (in, units).

    The input width is taken from the first input unless `input_dim` is given. Inputs are cast
    to `dtype` (float32 by default, as Keras). `kernel_initializer` is `'he_normal'` (default),
    `'glorot_uniform'` or a callable `(shape, rng, dtype) -> array`; the weights are drawn from
    `rng`, or from a generator seeded with `seed` (with neither, from a fresh OS-seeded one).

    Inside an `nn.Population` of K members (`population == K`) the kernel is (K, in, units)
    and the bias (K, units), and inputs carry the member axis first: (K, batch, in).

    `kernel_regularizer` (`nn.regularizers.L2(0.01)`, `'l2'`, `'l1'`, an `L1L2`) adds its
    penalty on the kernel to `regularization_losses()`, which `nn.fit` adds to the loss (not
    in a population).

    Example:
        >>> layer = Dense(3, activation="relu", seed=0)
        >>> layer(np.ones((2, 5))).shape
        (2, 3)
        >>> layer.kernel.shape, layer.bias.shape
        ((5, 3), (3,))
    """

    population: int | None = None  # members, once nn.Population stacked this layer

    def __init__(self, units: int, use_bias: bool = True,
                 activation: str | Callable[..., Any] | None = None,
                 kernel_initializer: str | initializers.Initializer = "he_normal",
                 dtype: Any = np.float32, seed: int | None = None,
                 rng: np.random.Generator | None = None, input_dim: int | None = None,
                 name: str | None = None,
                 kernel_regularizer: str | regularizers.L1L2 | None = None) -> None:
        super().__init__(name)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        if int(units) != units or units < 1:
            raise ValueError(f"Dense needs a positive integer number of units, got {units!r}")
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.dtype = np.dtype(dtype)
        self._rng = make_rng(seed, rng)
        if input_dim is not None:
            self.build((None, input_dim))
            self.built = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if not input_shape or input_shape[-1] is None:
            raise ValueError(f"{self.name}: cannot infer the input width from shape {input_shape}")
        shape = (int(input_shape[-1]), self.units)
        kernel = np.asarray(self.kernel_initializer(shape, self._rng, self.dtype), self.dtype)
        if kernel.shape != shape:
            raise ValueError(f"{self.name}: the kernel initializer returned shape {kernel.shape}, "
                             f"expected {shape}")
        self.kernel = Variable(kernel, name=f"{self.name}/kernel")
        if self.use_bias:
            self.bias = Variable(np.zeros(self.units, self.dtype), name=f"{self.name}/bias")

    def stack_members(self, size: int) -> None:
        """The population hook (`nn.Module.stack_members`): kernel (K, in, units), bias
        (K, units), inputs (K, batch, in).

        Example:
            >>> layer = Dense(2, input_dim=3); layer.stack_members(4); layer.population
            4
        """
        self.population = size

    def own_regularization_losses(self) -> list[Tensor]:
        """[the kernel's penalty] with a `kernel_regularizer` (once built), else []."""
        if self.kernel_regularizer is None or not self.built:
            return []
        return [self.kernel_regularizer(self.kernel)]

    def call(self, x: Any, training: bool = False) -> Any:
        if self.population is not None and self.kernel_regularizer is not None:
            raise ValueError(f"{self.name}: kernel_regularizer is not supported inside an "
                             f"nn.Population (its penalty would not reach the member losses); "
                             f"build the members without it")
        x = as_floating(x, self.dtype)
        width = self.kernel.shape[-2]
        if x.ndim == 0 or x.shape[-1] != width:
            raise ValueError(f"{self.name}: the input has width {x.shape[-1] if x.ndim else 0} "
                             f"(shape {x.shape}) but the layer was built for width {width}")
        if self.population is None:
            y = tape.matmul(x, self.kernel)
            if self.use_bias:
                y = tape.add(y, self.bias)
        else:
            y = tape.matmul(x, per_member(self.kernel, x.ndim))
            if self.use_bias:
                y = tape.add(y, per_member(self.bias, y.ndim))
        return y if self.activation is None else self.activation(y)


class Sequential(Module):
    """Layers applied in order; `training` is passed to each. Sequentials nest.

    Plain functions (e.g. `nn.relu`) are wrapped as `Activation` layers. State keys are the
    layer positions: `'0/kernel'`, `'1/gamma'`, ...

    Example:
        >>> import nn
        >>> model = Sequential([nn.Dense(4, seed=0), nn.relu, nn.Dense(2, seed=1)])
        >>> model(np.ones((3, 5))).shape
        (3, 2)
        >>> list(model.state_dict())
        ['0/kernel', '0/bias', '2/kernel', '2/bias']
    """

    def __init__(self, layers: Iterable[Module | Callable[..., Any]] = (),
                 name: str | None = None) -> None:
        super().__init__(name)
        self._layers: list[Module] = []
        for layer in layers:
            self.add(layer)

    def add(self, layer: Module | Callable[..., Any]) -> None:
        """Append a layer (a `Module`, or a function of one tensor)."""
        if not isinstance(layer, Module):
            if not callable(layer):
                raise TypeError(f"Sequential takes layers or functions, got {type(layer).__name__}")
            layer = activations.Activation(layer)
        self._layers.append(layer)

    @property
    def layers(self) -> list[Module]:
        """The layers, in order."""
        return list(self._layers)

    def _members(self) -> Iterator[tuple[str, Any]]:
        return ((str(i), layer) for i, layer in enumerate(self._layers))

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Build every layer by running an all-zeros batch of `input_shape` (batch 1 if None).

        Example:
            >>> import nn
            >>> model = Sequential([nn.Dense(2)])
            >>> model.build((None, 3)); model.layers[0].kernel.shape
            (3, 2)
        """
        shape = tuple(1 if n is None else n for n in input_shape)
        self(np.zeros(shape, np.float32))

    def __call__(self, x: Any, training: bool = False) -> Any:
        self.built = True  # each layer builds itself on its first input
        return self.call(x, training=training)

    def call(self, x: Any, training: bool = False) -> Any:
        for layer in self._layers:
            x = layer(x, training=training)
        return x
