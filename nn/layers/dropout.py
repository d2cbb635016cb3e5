"""`Dropout`: inverted dropout with a random generator the layer owns."""

from __future__ import annotations

from typing import Any

import numpy as np

import tape
from nn.layers.module import Module


class Dropout(Module):
    """Inverted dropout: with `training=True`, each value is zeroed with probability `rate` and
    the others are scaled by `1 / (1 - rate)`, so inference (`training=False`: `x` is returned
    as given) needs no rescaling. As Keras' `Dropout(rate, seed=...)`.

    The masks come from the layer's own `np.random.Generator` (`seed`, or `rng`; neither: a
    fresh OS-seeded one), drawn in a `tape.kernel`, so a `tape.function` step draws fresh masks
    on every replay: a traced run equals the eager run with the same seed, bit for bit.

    Example:
        >>> layer = Dropout(0.5, seed=0)
        >>> y = layer(np.ones((2, 4)), training=True)
        >>> sorted(set(y.numpy().ravel().tolist()))
        [0.0, 2.0]
        >>> layer(np.ones(3))                             # inference: x itself
        array([1., 1., 1.])
    """

    def __init__(self, rate: float, seed: int | None = None,
                 rng: np.random.Generator | None = None, name: str | None = None) -> None:
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must lie in [0, 1) (the fraction of values "
                             f"dropped), got {rate}")
        if seed is not None and rng is not None:
            raise ValueError("pass either seed or rng, not both")
        self.rate = float(rate)
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.built = True

    @tape.kernel  # a fresh draw on every replay of a tape.function program
    def _mask(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        keep = self.rng.random(shape) >= self.rate
        return keep.astype(dtype) * dtype.type(1 / (1 - self.rate))

    def call(self, x: Any, training: bool = False) -> Any:
        if not training or self.rate == 0.0:
            return x
        dtype = x.dtype if hasattr(x, "dtype") and x.dtype.kind == "f" else np.dtype(np.float64)
        return tape.multiply(x, self._mask(tuple(np.shape(x)), np.dtype(dtype)))
