"""Mini-batches and accuracy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import numpy as np

from nn import seeding
from tape.utils import checks


class MiniBatches:
    """Mini-batches of `(X, y)` pairs along the first axis, reshuffled every epoch.

    Epoch `e`'s order is drawn from `numpy.random.default_rng((seed, e))`, so it is the same
    whether the run started at epoch 0 or resumed at `e`. Iterating the object goes through one
    epoch and advances to the next; `epoch(e)` gives a given one. The last batch is smaller
    when `batch_size` does not divide the data, or dropped with `drop_last=True`.

    `axis=1` takes the examples along the second axis instead, for data with one slice per
    member of an `nn.Population`: X of shape (K, N, ...), y of shape (K, N, ...).
    With `sample_weight` (one weight per example, shape (N,)) the batches are
    `(xb, yb, wb)` triples. `seed=None` takes the next stream of the global seed
    (`nn.set_seed`), or fresh OS entropy when none is set.

    Example:
        >>> batches = MiniBatches(np.arange(10.0), np.arange(10), batch_size=4, seed=0)
        >>> [len(xb) for xb, yb in batches]
        [4, 4, 2]
        >>> len(batches), batches.num_examples
        (3, 10)
    """

    def __init__(self, X: Any, y: Any = None, batch_size: int = 32, *, shuffle: bool = True,
                 seed: int | None = 0, drop_last: bool = False, axis: int = 0,
                 sample_weight: Any = None) -> None:
        self.X = np.asarray(X)
        self.y = None if y is None else np.asarray(y)
        self.axis = int(axis)
        if self.X.ndim <= self.axis:
            raise ValueError(f"MiniBatches needs an array of examples along axis {self.axis}, "
                             f"got shape {self.X.shape}")
        self.num_examples = self.X.shape[self.axis]
        if self.y is not None and (self.y.ndim <= self.axis
                                   or self.y.shape[self.axis] != self.num_examples):
            raise ValueError(f"X holds {self.num_examples} examples (shape {self.X.shape}) but "
                             f"y holds {self.y.shape[self.axis] if self.y.ndim > self.axis else 0}"
                             f" (shape {self.y.shape})")
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        if self.sample_weight is not None and (self.y is None or self.sample_weight.shape != (
                self.num_examples,)):
            raise ValueError(f"sample_weight needs labels y and one weight per example, shape "
                             f"({self.num_examples},); got shape {self.sample_weight.shape}")
        # an integer, as for range() and NumPy sizes: 3.0 is refused (checks.integer says so)
        self.batch_size = checks.integer("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        if seed is None:
            seed = seeding.next_seed()
        self.seed = (int(cast(int, np.random.SeedSequence().entropy)) if seed is None
                     else int(seed))
        self.drop_last = bool(drop_last)
        self._next_epoch = 0

    def __len__(self) -> int:
        n, b = self.num_examples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def epoch(self, e: int) -> Iterator[Any]:
        """The batches of epoch `e`: `(xb, yb)` pairs, `(xb, yb, wb)` triples with
        `sample_weight`, or `xb` alone when there is no `y`."""
        n = self.num_examples
        order = np.random.default_rng((self.seed, e)).permutation(n) if self.shuffle else None
        axis = self.axis
        for k in range(len(self)):
            rows: Any = slice(k * self.batch_size, (k + 1) * self.batch_size)
            if order is not None:  # copies of the rows (`take`: fancy indexing, faster)
                rows = order[rows]
                x, y = self.X.take(rows, axis), None if self.y is None else self.y.take(rows, axis)
            else:  # views
                index = (slice(None),) * axis + (rows,) if axis else rows
                x, y = self.X[index], None if self.y is None else self.y[index]
            if y is None:
                yield x
            elif self.sample_weight is None:
                yield x, y
            else:
                yield x, y, self.sample_weight[rows]

    def __iter__(self) -> Iterator[Any]:
        e, self._next_epoch = self._next_epoch, self._next_epoch + 1
        return self.epoch(e)


def accuracy(predictions: Any, labels: Any, *, threshold: float = 0.0,
             per_member: bool = False) -> Any:
    """The fraction of examples predicted right.

    Multi-class (`predictions` of shape (..., C), C > 1): the arg-max class against class ids
    of shape (...,) or against the arg-max of one-hot/probability rows. Binary (`predictions`
    and `labels` of the same shape with one column, or 1-D): `predictions > threshold` against
    `labels > 0.5`; the default threshold 0 suits logits, use 0.5 for probabilities.
    `per_member=True` (a population's outputs and labels, both with a leading member axis K)
    gives K fractions, one per member.

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.ndim >= 1 and p.shape[-1] > 1 and y.shape == p.shape[:-1]:
        hits = p.argmax(axis=-1) == y
    elif p.ndim >= 2 and p.shape[-1] > 1 and y.shape == p.shape:
        hits = np.argmax(p, axis=-1) == np.argmax(y, axis=-1)
    elif p.shape == y.shape:
        hits = (p > threshold) == (y > 0.5)
    else:
        raise ValueError(f"accuracy: predictions of shape {p.shape} and labels of shape "
                         f"{y.shape} do not fit (expected class ids of shape {p.shape[:-1]}, "
                         f"rows of shape {p.shape}, or binary labels of shape {p.shape})")
    if per_member:
        return hits.reshape(len(hits), -1).mean(axis=1)
    # the exact count over the size: the bits of np.mean(hits), without its Python layers
    return int(np.count_nonzero(hits)) / hits.size if hits.size else float("nan")
