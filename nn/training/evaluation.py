"""Evaluation for `fit` and after it: `evaluate`, metrics per batch, and the weighted loss."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import tape
from nn.data import MiniBatches
from nn.layers.module import Module
from nn.training import inputs, resolve
from nn.training.metrics import Metric
from nn.training.plan import labelled


def weighted_loss(loss: Callable[..., Any], outputs: Any, labels: Any, *, sample_weight: Any
                  ) -> Any:
    """`mean(sample_weight * loss per example)`, Keras' weighted loss (divided by the batch
    size, not by the sum of the weights); `loss` must take `reduction='none'`.

    Example:
        >>> import nn
        >>> float(weighted_loss(nn.mean_squared_error, np.array([1.0, 2.0]), np.zeros(2),
        ...                     sample_weight=np.array([1.0, 0.0])))
        0.5
    """
    per = loss(outputs, labels, reduction="none")
    if per.ndim > 1:
        per = tape.mean(per, axis=tuple(range(1, per.ndim)))
    return tape.mean(per * tape.cast(sample_weight, per.dtype))  # a tensor when traced


def evaluate_arrays(model: Module, X: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                    loss: Callable[..., Any], metrics: list[tuple[str, Metric]],
                    batch_size: int | None) -> dict[str, Any]:
    """`evaluate` on arrays already checked and adapted (what `fit` validates on each epoch).

    Example:
        >>> import nn
        >>> evaluate_arrays(nn.Dense(1, seed=0), np.zeros((4, 2)), np.ones((4, 1)), None,
        ...                 nn.mean_squared_error, [], None)
        {'loss': 1.0}
    """
    policy = model.training_policy()
    axis = policy.examples_axis(X)
    shared = axis == 0
    batches = MiniBatches(X, y, batch_size or max(X.shape[axis], 1), shuffle=False, axis=axis,
                          sample_weight=w)
    totals: dict[str, Any] = {}
    for xb, yb, wb in inputs.array_source(batches).epoch(0):
        outputs = model(xb, training=False)
        if wb is None:
            value = policy.loss_value(loss, outputs, yb, shared=shared)
        else:
            value = weighted_loss(loss, outputs, yb, sample_weight=wb)
            value = np.asarray(value) if policy.per_member else float(value)
        logs = {"loss": value, **policy.metric_values(metrics, outputs, yb, shared=shared)}
        for key, v in logs.items():
            totals[key] = totals.get(key, 0.0) + v * xb.shape[axis]
    return {key: total / batches.num_examples for key, total in totals.items()}


def evaluate(model: Module, X: Any, y: Any, *, loss: Any, batch_size: int | None = None,
             metric: Any = "auto", metrics: Iterable[Any] | None = None,
             sample_weight: Any = None) -> dict[str, Any]:
    """Loss and metrics of `model` on `(X, y)` in inference mode (`training=False`).

    `loss`, `metric` and `metrics` as in `fit` (names or functions); labels of shape (N,) and
    (N, 1) are accepted as there. Batches of `batch_size` (all at once by default) are
    averaged weighted by their size, which is the mean over all examples for a mean-reduced
    loss; `sample_weight` weights the loss. For an `nn.Population`, one value per member.

    Example:
        >>> import nn
        >>> model = nn.Dense(2, seed=0)
        >>> sorted(evaluate(model, np.ones((4, 3)), np.array([0, 1, 0, 1]),
        ...                 loss=nn.softmax_cross_entropy))
        ['accuracy', 'loss']
    """
    loss_fn = resolve.loss_function(loss)
    chosen = resolve.metric_list(metric, metrics, loss_fn)
    X = inputs.check_array("X", X, 0)
    axis = model.training_policy().examples_axis(X)
    y = labelled(model, loss_fn, getattr(loss_fn, "__name__", "loss"), X,
                 inputs.check_array("y", y, axis), axis, ("X", "y"))
    w = None if sample_weight is None else inputs.check_array("sample_weight", sample_weight, 0)
    return evaluate_arrays(model, X, y, w, loss_fn, chosen, batch_size)
