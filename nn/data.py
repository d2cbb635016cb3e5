"""Mini-batches and accuracy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


class MiniBatches:
    """Mini-batches of `(X, y)` pairs along the first axis, reshuffled every epoch.

    Epoch `e`'s order is drawn from `numpy.random.default_rng((seed, e))`, so it is the same
    whether the run started at epoch 0 or resumed at `e`. Iterating the object goes through one
    epoch and advances to the next; `epoch(e)` gives a given one. The last batch is smaller
    when `batch_size` does not divide the data, or dropped with `drop_last=True`.

    Example:
        >>> batches = MiniBatches(np.arange(10.0), np.arange(10), batch_size=4, seed=0)
        >>> [len(xb) for xb, yb in batches]
        [4, 4, 2]
        >>> len(batches)
        3
    """

    def __init__(self, X: Any, y: Any = None, batch_size: int = 32, *, shuffle: bool = True,
                 seed: int | None = 0, drop_last: bool = False) -> None:
        self.X = np.asarray(X)
        self.y = None if y is None else np.asarray(y)
        if self.X.ndim == 0:
            raise ValueError("MiniBatches needs an array of examples along the first axis, "
                             "got a scalar")
        if self.y is not None and (self.y.ndim == 0 or len(self.y) != len(self.X)):
            raise ValueError(f"X holds {len(self.X)} examples (shape {self.X.shape}) but y holds "
                             f"{len(self.y) if self.y.ndim else 0} (shape {self.y.shape})")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self.drop_last = bool(drop_last)
        self._next_epoch = 0

    def __len__(self) -> int:
        n, b = len(self.X), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def epoch(self, e: int) -> Iterator[Any]:
        """The batches of epoch `e`: `(xb, yb)` pairs, or `xb` alone when there is no `y`."""
        n = len(self.X)
        order = np.random.default_rng((self.seed, e)).permutation(n) if self.shuffle else None
        for k in range(len(self)):
            index: Any = slice(k * self.batch_size, (k + 1) * self.batch_size)
            if order is not None:
                index = order[index]
            yield self.X[index] if self.y is None else (self.X[index], self.y[index])

    def __iter__(self) -> Iterator[Any]:
        e, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return self.epoch(e)


def accuracy(predictions: Any, labels: Any, *, threshold: float = 0.0) -> float:
    """The fraction of examples predicted right.

    Multi-class (`predictions` of shape (..., C), C > 1): the arg-max class against class ids
    of shape (...,) or against the arg-max of one-hot/probability rows. Binary (`predictions`
    and `labels` of the same shape with one column, or 1-D): `predictions > threshold` against
    `labels > 0.5`; the default threshold 0 suits logits, use 0.5 for probabilities.

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.ndim >= 1 and p.shape[-1] > 1 and y.shape == p.shape[:-1]:
        hits = np.argmax(p, axis=-1) == y
    elif p.ndim >= 2 and p.shape[-1] > 1 and y.shape == p.shape:
        hits = np.argmax(p, axis=-1) == np.argmax(y, axis=-1)
    elif p.shape == y.shape:
        hits = (p > threshold) == (y > 0.5)
    else:
        raise ValueError(f"accuracy: predictions of shape {p.shape} and labels of shape "
                         f"{y.shape} do not fit (expected class ids of shape {p.shape[:-1]}, "
                         f"rows of shape {p.shape}, or binary labels of shape {p.shape})")
    return float(np.mean(hits)) if hits.size else float("nan")
