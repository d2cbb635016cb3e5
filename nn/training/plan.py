"""Everything `fit` needs, resolved and checked before the first step: a `Plan`.

Names become objects (`nn.training.resolve`), arrays are checked and adapted
(`nn.training.inputs`), weights and the validation split are worked out, and every mistake is
reported here, before any variable changes, naming the argument, its shape or dtype, and what to
pass instead.

Example:
    >>> import numpy as np, nn
    >>> X, y = np.ones((10, 3)), np.zeros(10, int)
    >>> p = plan(nn.Dense(2, seed=0), X, y, loss="sparse_categorical_crossentropy",
    ...          optimizer="sgd", epochs=2, batch_size=4, validation_split=0.2)
    >>> p.source.steps, p.metrics[0][0], len(p.validation[0])
    (2, 'accuracy', 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nn import seeding
from nn.data import MiniBatches
from nn.training import inputs, resolve
from nn.training.metrics import Metric

Arrays = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


@dataclass
class Plan:
    """A resolved `fit` call (see `plan`; the module docstring has an example)."""

    loss: Callable[..., Any]
    loss_name: str
    optimizer: Any
    metrics: list[tuple[str, Metric]]
    source: inputs.Source
    validation: Arrays | None
    epochs: int
    initial_epoch: int
    verbose: int
    batch_labels: Callable[[Any, Any], Any] | None  # per-batch label fix (iterable data only)


def _name(loss: Any, fn: Callable[..., Any]) -> str:
    return loss if isinstance(loss, str) else getattr(resolve.base_loss(fn), "__name__", "loss")


def _axis(model: Any, X: np.ndarray) -> int:
    """The examples' axis of `X`: 1 for a population's per-member data (K, N, ...)."""
    return int(model.training_policy().examples_axis(X))


def labelled(model: Any, loss: Callable[..., Any], loss_name: str, X: np.ndarray,
             y: np.ndarray, axis: int, names: tuple[str, str]) -> np.ndarray:
    """`y` adapted to the model's outputs (see `nn.training.inputs`), checked whole with the loss.

    Example:
        >>> import nn
        >>> labelled(nn.Dense(1, seed=0), nn.mean_squared_error, "mse", np.zeros((3, 2)),
        ...          np.zeros(3), 0, ("X", "y")).shape
        (3, 1)
    """
    population = model.training_policy().per_member
    probe = X[:8] if axis == 0 else X[:, :8]
    labels, out = inputs.fit_labels(model, loss, probe, y, population=population,
                                    shared=axis == 0)
    y = labels(y)
    if population:
        out, y_check = out[0], (y if axis == 0 else y[0])
    else:
        y_check = y
    if resolve.is_builtin(loss):  # a custom loss reports its own errors, when training
        inputs.check_labels(loss, out, y_check, loss_name, names[1])
    return y


def _weights(sample_weight: Any, class_weight: Mapping[Any, float] | None, y: np.ndarray,
             n: int) -> np.ndarray | None:
    """Per-example weights: `sample_weight` times `class_weight[class of the example]`."""
    w = None
    if sample_weight is not None:
        w = inputs.check_array("sample_weight", sample_weight, 0).astype(float)
        if w.shape != (n,) or (w < 0).any():
            raise ValueError(f"sample_weight must hold one non-negative weight per example, "
                             f"shape ({n},); got shape {w.shape}"
                             f"{' with negative values' if w.shape == (n,) else ''}")
    if class_weight is not None:
        if not isinstance(class_weight, Mapping):
            raise TypeError(f"class_weight must be a dict {{class id: weight}}, got "
                            f"{type(class_weight).__name__}")
        ids = (np.argmax(y, axis=-1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(n))
        ids = ids.astype(np.int64)
        missing = sorted(set(np.unique(ids).tolist()) - {int(k) for k in class_weight})
        if missing:
            raise ValueError(f"class_weight has no weight for classes {missing} found in y; "
                             f"give every class a weight (1.0 leaves it as it is)")
        table = np.zeros(max(int(k) for k in class_weight) + 1)
        for k, v in class_weight.items():
            table[int(k)] = float(v)
        cw = table[ids]
        w = cw if w is None else w * cw
    return w


def _split(arrays: list[Any], fraction: float, axis: int, n: int
           ) -> tuple[list[Any], list[Any]]:
    """Keras' `validation_split`: the last `fraction` of the examples, before any shuffling."""
    if not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ValueError(f"validation_split must be a fraction in [0, 1), got {fraction!r}")
    cut = int(math.floor(n * (1.0 - fraction)))
    if cut == 0 or cut == n:
        raise ValueError(f"validation_split={fraction} leaves {cut} of {n} examples for "
                         f"training and {n - cut} for validation; both need at least one")
    take = [np.take(a, np.arange(cut), axis=axis) if a is not None else None for a in arrays]
    rest = [np.take(a, np.arange(cut, n), axis=axis) if a is not None else None for a in arrays]
    return take, rest


def _validation(model: Any, data: Any, loss: Callable[..., Any], loss_name: str) -> Arrays:
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError(f"validation_data must be a pair (X_val, y_val) or a triple (X_val, "
                         f"y_val, sample_weight), got {type(data).__name__}"
                         f"{f' of length {len(data)}' if isinstance(data, (tuple, list)) else ''}")
    X = np.asarray(data[0])
    axis = _axis(model, X)
    X = inputs.check_array("validation_data[0] (X_val)", X, axis)
    inputs.check_features("X_val", X, model.training_policy().per_member)
    y = inputs.check_array("validation_data[1] (y_val)", data[1], axis)
    if y.ndim <= axis or y.shape[axis] != X.shape[axis]:
        raise ValueError(f"X_val holds {X.shape[axis]} examples (shape {X.shape}) but y_val "
                         f"has shape {y.shape}")
    y = labelled(model, loss, loss_name, X, y, axis, ("X_val", "y_val"))
    w = None
    if len(data) == 3 and data[2] is not None:
        w = _weights(data[2], None, y, X.shape[axis])
    return X, y, w


def plan(model: Any, data: Any, y: Any, *, loss: Any, optimizer: Any, epochs: Any = 1,
         batch_size: Any = None, validation_data: Any = None, validation_split: float = 0.0,
         seed: int | None = None, shuffle: bool = True, drop_last: bool = False,
         verbose: Any = 1, metric: Any = "auto", metrics: Iterable[Any] | None = None,
         sample_weight: Any = None, class_weight: Mapping[Any, float] | None = None,
         steps_per_epoch: Any = None, initial_epoch: Any = 0) -> Plan:
    """Check and resolve `fit`'s arguments (the same names and meanings); see `nn.fit` and
    the module docstring's example."""
    epochs = resolve.count("epochs", epochs, 1)
    initial_epoch = resolve.count("initial_epoch", initial_epoch, 0)
    verbose = resolve.verbosity(verbose)
    loss_fn = resolve.loss_function(loss)
    loss_name = _name(loss, loss_fn)
    opt = resolve.optimizer(optimizer)
    chosen = resolve.metric_list(metric, metrics, loss_fn)
    population = model.training_policy().per_member
    if population and (sample_weight is not None or class_weight is not None):
        raise ValueError("sample_weight and class_weight are not supported for an "
                         "nn.Population; weight the loss inside a custom loss function instead")
    steps = None if steps_per_epoch is None else resolve.count("steps_per_epoch",
                                                                steps_per_epoch, 1)
    validation = None
    batch_labels = None
    if y is None:  # an iterable of batches
        if isinstance(data, np.ndarray) or data is None:
            raise ValueError("fit needs labels: fit(model, X, y, ...), or an iterable of (x, y) "
                             "batches as X with y left out")
        for name, value in (("batch_size", batch_size), ("sample_weight", sample_weight),
                            ("class_weight", class_weight)):
            if value is not None:
                raise ValueError(f"{name} cannot be used when X is an iterable of batches: "
                                 f"batch the data yourself, and put weights in the batches as "
                                 f"(x, y, sample_weight)")
        if validation_split:
            raise ValueError("validation_split needs arrays X, y; with an iterable of batches "
                             "pass validation_data=(X_val, y_val)")
        source = inputs.iterable_source(data, epochs if steps is None else 1, initial_epoch)
        batch_labels = _LazyLabels(model, loss_fn)
    else:
        batch_size = resolve.count("batch_size", 32 if batch_size is None else batch_size, 1)
        X = np.asarray(data)
        axis = _axis(model, X) if X.dtype.kind in "biuf" else 0
        X = inputs.check_array("X", X, axis)
        inputs.check_features("X", X, population)
        Y = inputs.check_array("y", y, axis)
        n = X.shape[axis]
        if Y.ndim <= axis or Y.shape[axis] != n:
            raise ValueError(f"X holds {n} examples (shape {X.shape}) but y holds "
                             f"{Y.shape[axis] if Y.ndim > axis else 0} (shape {Y.shape})")
        Y = labelled(model, loss_fn, loss_name, X, Y, axis, ("X", "y"))
        W = _weights(sample_weight, class_weight, Y, n)
        if validation_split:
            if validation_data is not None:
                raise ValueError("pass either validation_data or validation_split, not both")
            (X, Y, W), (Xv, Yv, Wv) = _split([X, Y, W], validation_split, axis, n)
            validation = (Xv, Yv, Wv)
        if seed is None:
            seed = seeding.next_seed()
        batches = MiniBatches(X, Y, batch_size, shuffle=shuffle, seed=0 if seed is None else seed,
                              drop_last=drop_last, axis=axis, sample_weight=W)
        if len(batches) == 0:
            raise ValueError(f"no batches: {batches.num_examples} examples with "
                             f"batch_size={batch_size} and drop_last=True")
        source = inputs.array_source(batches)
    if steps is not None:
        source = inputs.limit_steps(source, steps, initial_epoch)
    if validation_data is not None:
        validation = _validation(model, validation_data, loss_fn, loss_name)
    return Plan(loss_fn, loss_name, opt, chosen, source, validation, epochs, initial_epoch,
                verbose, batch_labels)


class _LazyLabels:
    """For iterable data: decide on the first batch how labels are adapted, then apply it."""

    def __init__(self, model: Any, loss: Callable[..., Any]) -> None:
        self.model, self.loss = model, loss
        self.labels: inputs.Labels | None = None

    def __call__(self, xb: Any, yb: Any) -> Any:
        if self.labels is None:
            xb, yb = np.asarray(xb), np.asarray(yb)
            axis = _axis(self.model, xb)
            per_member = self.model.training_policy().per_member
            inputs.check_features("each batch's x", xb, per_member)
            probe = xb[:8] if axis == 0 else xb[:, :8]
            self.labels, _ = inputs.fit_labels(self.model, self.loss, probe, yb,
                                               population=per_member,
                                               shared=axis == 0)
        return self.labels(np.asarray(yb))
