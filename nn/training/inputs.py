"""The data `fit` trains on, checked once before the first step and served batch by batch.

Arrays are checked whole, once: numbers (not strings or objects), one row per example with a
feature axis, no NaN or inf (the first bad row is named), labels that fit the model's outputs
under the loss (with the whole data set's shapes in the message). Labels of shape (N,) and
(N, 1) are both accepted where the meaning is plain, as Keras does: class ids of shape (N, 1)
are squeezed for a softmax cross-entropy, and (N,) targets for a model with one output column
get that column (float class ids with whole values become integers). Any other iterable of
`(x, y)` or `(x, y, sample_weight)` batches is served as it comes (an `nn.MiniBatches`, a
list, a generator), each batch's labels adapted the way its first batch's were.

Example:
    >>> import numpy as np
    >>> check_array("X", np.array([[0.0], [np.nan]]), rows_axis=0)
    Traceback (most recent call last):
    ValueError: X contains NaN (first in row 1 of 2); remove or impute those rows before fit
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nn import losses
from nn.data import MiniBatches
from nn.training.resolve import base_loss

Adapt = Callable[[Any], Any]


def _identity(a: Any) -> Any:
    return a


def _squeeze(a: Any) -> Any:
    return a[..., 0]


def _column(a: Any) -> Any:
    return a[..., None]


def check_array(name: str, a: Any, rows_axis: int) -> np.ndarray:
    """`a` as an array of numbers with no NaN or inf, else a `TypeError`/`ValueError` naming
    `name`, its shape and dtype, and (for NaN/inf) the first bad example along `rows_axis`.

    Example:
        >>> check_array("y", [[1, 2], [3, 4]], 0).shape
        (2, 2)
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, but it has dtype {arr.dtype} (shape "
                        f"{arr.shape}); convert it first, e.g. {name}.astype(np.float32) "
                        f"(parse or encode strings and categories before fit)")
    # min and max propagate NaN and show inf: two passes, no temporary array
    if arr.dtype.kind == "f" and arr.size and not (np.isfinite(arr.min())
                                                   and np.isfinite(arr.max())):
        rows = np.moveaxis(arr, rows_axis, 0).reshape(arr.shape[rows_axis], -1)
        bad_nan = np.isnan(rows).any(axis=1)
        what = "NaN" if bad_nan.any() else "inf"
        first = int(np.flatnonzero(bad_nan if bad_nan.any() else ~np.isfinite(rows).all(axis=1))[0])
        raise ValueError(f"{name} contains {what} (first in row {first} of {len(rows)}); remove "
                         f"or impute those rows before fit")
    return arr


def check_features(name: str, X: np.ndarray, population: bool) -> None:
    """Inputs need one row per example and a feature axis; a population checks its own.

    Example:
        >>> check_features("X", np.zeros(3), population=False)
        Traceback (most recent call last):
        ValueError: X has shape (3,) (dtype float64), but fit needs one row per example and ...
    """
    if not population and X.ndim < 2:
        raise ValueError(f"{name} has shape {X.shape} (dtype {X.dtype}), but fit needs one row "
                         f"per example and a feature axis, shape (examples, features); for one "
                         f"feature per example use {name}.reshape(-1, 1)")


# -- labels against the model's outputs ---------------------------------------------------------
def label_adapter(loss: Callable[..., Any], out: tuple[int, ...], lab: tuple[int, ...],
                  integer: bool) -> Adapt:
    """How to reshape labels whose per-example shape is `lab` for per-example outputs `out`:
    class ids of shape (1,) squeezed for a softmax cross-entropy, (N,) targets given a (N, 1)
    column, (N, 1) targets squeezed for (N,) outputs; otherwise unchanged.

    Example:
        >>> label_adapter(losses.mean_squared_error, (1,), (), False)(np.zeros(3)).shape
        (3, 1)
    """
    if base_loss(loss) is losses.softmax_cross_entropy and out:
        if integer and out[-1] > 1 and lab == out[:-1] + (1,):
            return _squeeze
        return _identity
    if out == lab + (1,) and not lab:
        return _column
    if lab == out + (1,) and not out:
        return _squeeze
    return _identity


def _whole_class_ids(y: np.ndarray) -> bool:
    return y.dtype.kind == "f" and y.size > 0 and bool(np.all(np.mod(y, 1) == 0) and y.min() >= 0)


@dataclass
class Labels:
    """The decision for one `fit` call: how labels are reshaped (and cast) to fit the outputs.

    Example:
        >>> Labels(_squeeze, to_int=True)(np.array([[1.0], [2.0]]))
        array([1, 2])
    """

    adapt: Adapt
    to_int: bool = False

    def __call__(self, y: Any) -> Any:
        y = self.adapt(y)
        return y.astype(np.int64) if self.to_int else y


def fit_labels(model: Any, loss: Callable[..., Any], x_probe: Any, y: np.ndarray, *,
               population: bool, shared: bool) -> tuple[Labels, np.ndarray]:
    """Run the model once on a few rows (inference mode; it builds an unbuilt model) and
    decide how labels `y` (the whole set, or one batch) are adapted to its outputs; returns
    that decision and the outputs.

    Example:
        >>> import nn
        >>> labels, out = fit_labels(nn.Dense(3, seed=0), losses.softmax_cross_entropy,
        ...                          np.zeros((2, 4)), np.array([[0], [2]]), population=False,
        ...                          shared=True)
        >>> labels(np.array([[0], [2]])), out.shape
        (array([0, 2]), (2, 3))
    """
    out = np.asarray(model(x_probe, training=False))
    per_out = out.shape[2:] if population else out.shape[1:]
    per_lab = y.shape[1:] if shared else y.shape[2:]
    softmax = base_loss(loss) is losses.softmax_cross_entropy
    if softmax and out.ndim >= 2 and out.shape[-1] > 1 and np.all(out >= 0) and \
            np.allclose(out.sum(axis=-1), 1.0, atol=1e-5):
        raise ValueError("the model's outputs look like probabilities (non-negative rows that "
                         "sum to 1), but the cross-entropy losses here take logits (Keras' "
                         "from_logits=True): remove the final softmax layer and apply "
                         "nn.softmax(model(x)) when you need probabilities")
    to_int = softmax and per_out and per_lab in (per_out[:-1], per_out[:-1] + (1,)) and \
        _whole_class_ids(y)
    adapt = label_adapter(loss, per_out, per_lab, y.dtype.kind in "iu" or bool(to_int))
    return Labels(adapt, bool(to_int)), out


def check_labels(loss: Callable[..., Any], model_out: np.ndarray, y: np.ndarray,
                 name: str, y_name: str) -> None:
    """Evaluate `loss` once on outputs of the whole data set's shape (one example's output
    repeated, a view) against all of `y`, so that a mismatch or a bad class id is reported
    with the data set's shapes rather than one batch's.

    Example:
        >>> check_labels(losses.mean_squared_error, np.zeros((1, 1)), np.zeros((5, 2)), "mse", "y")
        Traceback (most recent call last):
        ValueError: y (shape (5, 2), dtype float64) does not fit the model's outputs ...
    """
    full = np.broadcast_to(model_out[:1], (len(y), *model_out.shape[1:]))
    try:
        with np.errstate(all="ignore"):
            loss(full, y)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{y_name} (shape {y.shape}, dtype {y.dtype}) does not fit the model's "
                         f"outputs (shape {full.shape} for the whole data set) under the loss "
                         f"{name}: {e}") from None


# -- serving batches ----------------------------------------------------------------------------
@dataclass
class Source:
    """Batches for each epoch: `epoch(e)` yields `(xb, yb, wb)` (wb None when unweighted);
    `steps` is the number per epoch when known (for the progress bar).

    Example:
        >>> s = Source(lambda e: iter([(1, 2, None)]), steps=1)
        >>> list(s.epoch(0))
        [(1, 2, None)]
    """

    epoch: Callable[[int], Iterator[tuple[Any, Any, Any]]]
    steps: int | None
    one_shot: bool = False  # a generator: `epoch` continues the same iterator


def _triples(batches: Any) -> Iterator[tuple[Any, Any, Any]]:
    for b in batches:
        if not isinstance(b, (tuple, list)) or len(b) not in (2, 3):
            raise TypeError(f"each batch must be a pair (x, y) or a triple (x, y, "
                            f"sample_weight), got {type(b).__name__}"
                            f"{f' of length {len(b)}' if isinstance(b, (tuple, list)) else ''}")
        yield b[0], b[1], (b[2] if len(b) == 3 else None)


def _stream(make: Callable[[int], Any], start: int) -> Iterator[Any]:
    """Epochs `start, start + 1, ...` of a re-iterable source, one after another."""
    for e in itertools.count(start):
        empty = True
        for b in make(e):
            empty = False
            yield b
        if empty:
            return


def array_source(batches: MiniBatches) -> Source:
    """Arrays served by `MiniBatches` (already checked).

    Example:
        >>> s = array_source(MiniBatches(np.zeros((5, 2)), np.zeros(5), 2, shuffle=False))
        >>> s.steps, [xb.shape[0] for xb, _, _ in s.epoch(0)]
        (3, [2, 2, 1])
    """
    weighted = batches.sample_weight is not None

    def epoch(e: int) -> Iterator[tuple[Any, Any, Any]]:
        if weighted:
            return iter(batches.epoch(e))
        return ((xb, yb, None) for xb, yb in batches.epoch(e))

    return Source(epoch, len(batches))


def iterable_source(data: Any, epochs: int, initial_epoch: int) -> Source:
    """Any iterable of batches: `nn.MiniBatches` (epoch e is its `epoch(e)`), a re-iterable
    (a new pass each epoch) or a one-shot iterator such as a generator (one epoch only).

    Example:
        >>> s = iterable_source([(np.zeros((2, 1)), np.zeros(2))] * 3, epochs=2, initial_epoch=0)
        >>> s.steps, len(list(s.epoch(1)))
        (3, 3)
    """
    if isinstance(data, MiniBatches):
        if data.y is None:
            raise ValueError("the MiniBatches passed to fit have no labels: build them as "
                             "MiniBatches(X, y, ...)")
        return array_source(data)
    try:
        one_shot = iter(data) is data
    except TypeError:
        raise TypeError(f"fit takes arrays X, y or an iterable of (x, y) batches, got "
                        f"{type(data).__name__}") from None
    if one_shot and epochs - initial_epoch > 1:
        raise ValueError("a generator or iterator can be gone through only once, but fit was "
                         "asked for several epochs: pass steps_per_epoch (batches are then "
                         "drawn from it continuously), or a re-iterable such as a list or "
                         "nn.MiniBatches")
    steps = len(data) if hasattr(data, "__len__") else None
    return Source(lambda e: _triples(data), steps, one_shot)


def limit_steps(source: Source, steps: int, initial_epoch: int) -> Source:
    """Each epoch takes the next `steps` batches of one continuous stream (Keras'
    `steps_per_epoch`): a re-iterable source is gone through again when it ends.

    Example:
        >>> s = limit_steps(iterable_source([(0, 0), (1, 1)], 1, 0), 3, 0)
        >>> [x for x, _, _ in s.epoch(0)], [x for x, _, _ in s.epoch(1)]
        ([0, 1, 0], [1, 0, 1])
    """
    stream = (source.epoch(initial_epoch) if source.one_shot
              else _stream(source.epoch, initial_epoch))
    return Source(lambda e: itertools.islice(stream, steps), steps, source.one_shot)
