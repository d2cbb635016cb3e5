"""The training loop: `fit`, `evaluate`, `train_step`, `History` and callbacks."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn import losses
from nn.data import MiniBatches, accuracy
from nn.module import Module
from nn.population import Population
from tape import Tape, Variable

Metric = Callable[[Any, Any], float]


@dataclass
class History:
    """Per-epoch results, as lists a user can plot: `history.val_accuracy[-1]`.

    `history.history` is the same as a dict of lists (Keras' form); `stop_reason` says why a
    callback ended training early (None if it ran all epochs). For an `nn.Population` each
    value is an array with one entry per member, and `frozen` maps each member that diverged
    to when and why (training went on without it).

    Example:
        >>> h = History(); h.record({"loss": 0.5}); h.loss
        [0.5]
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    stop_reason: str | None = None
    frozen: dict[int, str] = field(default_factory=dict)

    def record(self, logs: dict[str, float]) -> None:
        """Append one epoch's logs (keys: loss, accuracy, val_loss, val_accuracy)."""
        for key, value in logs.items():
            getattr(self, key).append(value)

    @property
    def history(self) -> dict[str, list[float]]:
        return {k: getattr(self, k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}

    def __len__(self) -> int:
        return len(self.loss)


@dataclass
class TrainingState:
    """What a callback sees after each epoch; set `stop_training` (or call `stop`) to end.

    `epoch` is 0-based; `logs` holds this epoch's loss/metrics; `model`, `optimizer` and
    `history` are the live objects (so a callback can save or restore weights).

    Example:
        >>> s = TrainingState(model=None, optimizer=None, history=History(), epochs=3)
        >>> s.stop("enough"); s.stop_training
        True
    """

    model: Any
    optimizer: Any
    history: History
    epochs: int
    epoch: int = -1
    logs: dict[str, float] = field(default_factory=dict)
    stop_training: bool = False
    stop_reason: str | None = None

    def stop(self, reason: str = "requested by a callback") -> None:
        """Ask `fit` to stop after this epoch."""
        self.stop_training = True
        self.stop_reason = reason


class Callback:
    """Hooks around training; override any of them. A plain function `f(state)` also works
    as a callback: it is called after each epoch.

    Example:
        >>> class StopBelow(Callback):
        ...     def on_epoch_end(self, state):
        ...         if state.logs["loss"] < 0.1:
        ...             state.stop("loss below 0.1")
    """

    def on_train_begin(self, state: TrainingState) -> None:
        """Before the first epoch."""

    def on_epoch_end(self, state: TrainingState) -> None:
        """After each epoch (and its validation)."""

    def on_train_end(self, state: TrainingState) -> None:
        """After the last epoch, or after a callback stopped training."""


class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[[TrainingState], Any]) -> None:
        self.on_epoch_end = fn  # type: ignore[method-assign, assignment]


def _resolve_metric(metric: Metric | str | None, loss: Callable[..., Any]) -> Metric | None:
    if metric == "auto":
        base = loss.func if isinstance(loss, functools.partial) else loss
        classifier = base in (losses.softmax_cross_entropy, losses.sigmoid_binary_cross_entropy)
        return accuracy if classifier else None
    if metric == "accuracy":
        return accuracy
    if metric is not None and not callable(metric):
        raise ValueError(f"metric must be 'auto', 'accuracy', None or a callable, got {metric!r}")
    return metric


def train_step(model: Module, x: Any, y: Any, loss: Callable[..., Any], optimizer: Any,
               variables: list[Variable] | None = None) -> tuple[float | np.ndarray, Any]:
    """One step: forward (`training=True`) and loss on a tape, gradients, `apply_gradients`.

    Returns `(loss value, model outputs)`. A NaN or infinite loss raises `FloatingPointError`
    before any variable changes. For an `nn.Population` this is `Population.train_step` (one
    loss value per member; diverged members are frozen instead).

    Example:
        >>> import nn, optim
        >>> model = nn.Dense(1, seed=0)
        >>> value, _ = train_step(model, np.ones((4, 2)), np.zeros((4, 1)),
        ...                       nn.mean_squared_error, optim.SGD(0.1))
    """
    if isinstance(model, Population):
        return model.train_step(x, y, loss, optimizer)
    with Tape() as t:
        outputs = model(x, training=True)
        value = loss(outputs, y)
    if np.ndim(value) != 0:
        raise ValueError(f"the loss must be a scalar (use reduction='mean'); got shape "
                         f"{np.shape(value)}")
    v = float(value)
    if not np.isfinite(v):
        raise FloatingPointError(f"the loss is {v}; no update was applied")
    if variables is None:
        variables = model.trainable_variables
    grads = t.gradient(value, variables)
    optimizer.apply_gradients(zip(grads, variables, strict=True))
    return v, outputs


def evaluate(model: Module, X: Any, y: Any, *, loss: Callable[..., Any],
             batch_size: int | None = None, metric: Metric | str | None = "auto"
             ) -> dict[str, float]:
    """Loss (and accuracy) of `model` on `(X, y)` in inference mode (`training=False`).

    Batches of `batch_size` (all at once by default) are averaged weighted by their size, which
    is the mean over all examples for a mean-reduced loss. For an `nn.Population`, one value
    per member.

    Example:
        >>> import nn
        >>> model = nn.Dense(2, seed=0)
        >>> sorted(evaluate(model, np.ones((4, 3)), np.array([0, 1, 0, 1]),
        ...                 loss=nn.softmax_cross_entropy))
        ['accuracy', 'loss']
    """
    loss, metric_fn, axis = _per_member(model, X, loss, _resolve_metric(metric, loss))
    batches = MiniBatches(X, y, batch_size or max(np.shape(X)[axis], 1), shuffle=False,
                          axis=axis)
    totals: dict[str, Any] = {}
    for xb, yb in batches:
        outputs = model(xb, training=False)
        value = loss(outputs, yb)
        logs = {"loss": np.asarray(value) if isinstance(model, Population) else float(value)}
        if metric_fn is not None:
            logs["accuracy"] = metric_fn(outputs, yb)
        for key, value in logs.items():
            totals[key] = totals.get(key, 0.0) + value * xb.shape[axis]
    return {key: total / batches.num_examples for key, total in totals.items()}


def _per_member(model: Module, X: Any, loss: Callable[..., Any],
                metric_fn: Callable[..., Any] | None
                ) -> tuple[Callable[..., Any], Callable[..., Any] | None, int]:
    """(loss, metric, examples' axis) for `model` on data like `X`: for a Population, one
    value per member, and axis 1 when `X` has one slice per member."""
    if not isinstance(model, Population):
        return loss, metric_fn, 0
    shared = model.is_shared(X)
    loss = functools.partial(model.member_losses, loss, shared=shared)
    if metric_fn is not None:
        metric_fn = functools.partial(model.member_metric, metric_fn, shared=shared)
    return loss, metric_fn, 0 if shared else 1


def _show(v: Any) -> str:
    return f"{v:.4f}" if np.ndim(v) == 0 else f"{np.nanmin(v):.4f}..{np.nanmax(v):.4f}"


def fit(model: Module, X: Any, y: Any, *, loss: Callable[..., Any], optimizer: Any,
        epochs: int = 1, batch_size: int = 32,
        validation_data: tuple[Any, Any] | None = None, seed: int | None = 0,
        callbacks: Iterable[Callback | Callable[[TrainingState], Any]] = (),
        shuffle: bool = True, drop_last: bool = False, verbose: int = 0,
        metric: Metric | str | None = "auto", initial_epoch: int = 0) -> History:
    """Train `model` on mini-batches of `(X, y)` for `epochs` epochs; return the `History`.

    Each step records `loss(model(xb, training=True), yb)` on a fresh tape and calls
    `optimizer.apply_gradients(zip(grads, model.trainable_variables))`. Batches are reshuffled
    each epoch from `seed`. After each epoch: validation on `validation_data` (inference
    mode), then every callback (a `Callback` or a function of the `TrainingState`), any of
    which may stop training. `metric='auto'` reports accuracy for the classification losses.
    A NaN/inf loss raises `FloatingPointError` naming the epoch and step, before that step's
    update. For an `nn.Population`, `(X, y)` is shared by every member, or has one slice per
    member (X of shape (K, N, ...)); logs hold one value per member, and a member that
    diverges is frozen and listed in `history.frozen` while the others go on (training stops
    when all have). `verbose=1` prints one line per epoch. `initial_epoch` (Keras' meaning)
    resumes at that 0-based epoch index: epochs `initial_epoch .. epochs - 1` run, with the data
    order of those epochs, so the history holds `epochs - initial_epoch` entries.

    Example:
        >>> import nn, optim
        >>> X = np.random.default_rng(0).standard_normal((64, 2)); y = (X[:, 0] > 0).astype(int)
        >>> model = nn.Dense(2, seed=0)
        >>> h = fit(model, X, y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.5),
        ...         epochs=5, batch_size=16)
        >>> len(h.loss), h.accuracy[-1] > 0.9
        (5, True)
    """
    if not isinstance(initial_epoch, (int, np.integer)) or isinstance(initial_epoch, bool) \
            or initial_epoch < 0:
        raise ValueError(f"initial_epoch must be an integer >= 0, got {initial_epoch!r}")
    metric_fn = _resolve_metric(metric, loss)
    _, step_metric, axis = _per_member(model, X, loss, metric_fn)
    batches = MiniBatches(X, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
                          axis=axis)
    if len(batches) == 0:
        raise ValueError(f"no batches: {batches.num_examples} examples with "
                         f"batch_size={batch_size} and drop_last=True")
    if validation_data is not None and len(validation_data) != 2:
        raise ValueError("validation_data must be a pair (X_val, y_val)")
    hooks = [cb if isinstance(cb, Callback) else _FunctionCallback(cb) for cb in callbacks]
    history = History()
    state = TrainingState(model=model, optimizer=optimizer, history=history, epochs=epochs)
    for cb in hooks:
        cb.on_train_begin(state)
    variables = None
    for epoch in range(int(initial_epoch), epochs):
        start = time.perf_counter()
        totals = {"loss": 0.0, "accuracy": 0.0}
        for step, (xb, yb) in enumerate(batches.epoch(epoch)):
            try:
                value, outputs = train_step(model, xb, yb, loss, optimizer, variables)
            except FloatingPointError as e:
                raise FloatingPointError(f"training diverged at epoch {epoch + 1}/{epochs}, "
                                         f"step {step + 1}/{len(batches)}: {e}") from None
            variables = variables or model.trainable_variables
            totals["loss"] += value * xb.shape[axis]
            if step_metric is not None:
                totals["accuracy"] += step_metric(outputs, yb) * xb.shape[axis]
            if isinstance(model, Population) and model.last_frozen.size:
                assert isinstance(value, np.ndarray)  # one loss value per member
                for k in model.last_frozen:
                    why = f"the loss is {value[k]}" if not np.isfinite(value[k]) else \
                        "non-finite gradients"
                    history.frozen[int(k)] = (f"training diverged at epoch {epoch + 1}/{epochs}"
                                              f", step {step + 1}/{len(batches)}: {why}")
                if model.frozen.all():
                    state.stop("every member of the population diverged")
                    break
        seen = len(batches) * batches.batch_size if drop_last else batches.num_examples
        logs = {"loss": totals["loss"] / seen}
        if metric_fn is not None:
            logs["accuracy"] = totals["accuracy"] / seen
        if validation_data is not None:
            val = evaluate(model, *validation_data, loss=loss, metric=metric_fn)
            logs.update({f"val_{k}": v for k, v in val.items()})
        history.record(logs)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k} {_show(v)}" for k, v in
                  logs.items()) + f" - {time.perf_counter() - start:.2f}s", flush=True)
        state.epoch, state.logs = epoch, logs
        for cb in hooks:
            cb.on_epoch_end(state)
        if state.stop_training:
            history.stop_reason = state.stop_reason
            break
    for cb in hooks:
        cb.on_train_end(state)
    return history
