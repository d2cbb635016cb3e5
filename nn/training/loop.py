"""The training loop: `fit`, `train_step`, and the callback protocol.

`fit`'s arguments are resolved and checked first (`nn.training.plan`), what it prints is
`nn.training.progress`, what it returns is a `History` (`nn.training.history`), validation is
`nn.training.evaluation`; this module is the loop itself.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tape
from nn.layers.module import Module
from nn.training import inputs
from nn.training.evaluation import evaluate, evaluate_arrays, weighted_loss
from nn.training.history import History
from nn.training.metrics import Metric
from nn.training.plan import Plan, plan
from nn.training.progress import Progress
from tape import Variable

__all__ = ["Callback", "History", "Metric", "TrainingState", "evaluate", "fit", "train_step",
           "weighted_loss"]


@dataclass
class TrainingState:
    """What callbacks see; set `stop_training` (or call `stop`) to end after this epoch.

    `epoch` is 0-based; `logs` holds this epoch's loss and metrics (a callback may add values,
    such as the learning rate: they are kept in the `History` and printed); `step` and
    `batch_logs` are the current batch's (0-based index, loss and metrics) in
    `on_batch_end`. `model`, `optimizer` and `history` are the live objects (so a callback can
    save or restore weights). `nonfinite` says what a NaN/inf loss does: `'raise'` a
    `FloatingPointError` (the default), or `'stop'` training, keeping the history
    (`nn.TerminateOnNaN` sets it). `log_names` are the names `fit` will log each epoch
    (callbacks may add more), so a callback can check what it watches before training.

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
    logs: dict[str, Any] = field(default_factory=dict)
    stop_training: bool = False
    stop_reason: str | None = None
    step: int = -1
    batch_logs: dict[str, Any] = field(default_factory=dict)
    nonfinite: str = "raise"
    log_names: list[str] | None = None

    def stop(self, reason: str = "requested by a callback") -> None:
        """Ask `fit` to stop after this epoch."""
        self.stop_training = True
        self.stop_reason = reason


class Callback:
    """Hooks around training (Keras' names); override any of them. A plain function `f(state)`
    also works as a callback: it is called after each epoch.

    `on_batch_end` is only called for callbacks that override it, so the others cost nothing
    per step.

    Example:
        >>> class StopBelow(Callback):
        ...     def on_epoch_end(self, state):
        ...         if state.logs["loss"] < 0.1:
        ...             state.stop("loss below 0.1")
    """

    def on_train_begin(self, state: TrainingState) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, state: TrainingState) -> None:
        """Before each epoch (`state.epoch` is the one starting)."""

    def on_batch_end(self, state: TrainingState) -> None:
        """After each training step (`state.step`, `state.batch_logs`)."""

    def on_epoch_end(self, state: TrainingState) -> None:
        """After each epoch and its validation, before it is recorded and printed."""

    def on_train_end(self, state: TrainingState) -> None:
        """After the last epoch, or after a callback stopped training."""


class _FunctionCallback(Callback):
    def __init__(self, fn: Callable[[TrainingState], Any]) -> None:
        self.on_epoch_end = fn  # type: ignore[method-assign, assignment]


def _hooks(callbacks: Iterable[Any]) -> list[Callback]:
    hooks = []
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback) and not callable(cb):
            raise TypeError(f"callbacks[{i}] is a {type(cb).__name__}; a callback is an "
                            f"nn.Callback or a function f(state) called after each epoch")
        hooks.append(cb if isinstance(cb, Callback) else _FunctionCallback(cb))
    return hooks


def train_step(model: Module, x: Any, y: Any, loss: Callable[..., Any], optimizer: Any,
               variables: list[Variable] | None = None) -> tuple[float | np.ndarray, Any]:
    """One step: forward (`training=True`) and loss on a tape, gradients, `apply_gradients`.
    The loss includes the model's `regularization_losses()` (weight penalties), as Keras'.

    Returns `(loss value, model outputs)`. A NaN or infinite loss raises `FloatingPointError`
    before any variable changes. The model's `training_policy()` takes the step: for an
    `nn.Population`, `Population.train_step` (one loss value per member; diverged members are
    frozen instead).

    Example:
        >>> import nn, optim
        >>> model = nn.Dense(1, seed=0)
        >>> value, _ = train_step(model, np.ones((4, 2)), np.zeros((4, 1)),
        ...                       nn.mean_squared_error, optim.SGD(0.1))
    """
    return model.training_policy().train_step(model, x, y, loss, optimizer, variables)


def _frozen(members: np.ndarray, value: np.ndarray, history: History, where: str) -> None:
    for k in members:
        why = f"the loss is {value[k]}" if not np.isfinite(value[k]) else "non-finite gradients"
        history.frozen[int(k)] = f"training diverged at {where}: {why}"


def _where(epoch: int, epochs: int, step: int, steps: int | None) -> str:
    return f"epoch {epoch + 1}/{epochs}, step {step + 1}" + (f"/{steps}" if steps else "")


def _diverged(e: FloatingPointError, xb: Any, yb: Any, where: str) -> Exception:
    """The error for a non-finite loss: NaN or inf in the batch's data says so (iterable data
    is not checked up front), else the training diverged."""
    for name, a in (("x", xb), ("y", yb)):
        try:
            inputs.check_array(f"{name} of the batch at {where}", a, 0)
        except (ValueError, TypeError) as bad:
            return bad
    return FloatingPointError(f"training diverged at {where}: {e}")


def fit(model: Module, X: Any = None, y: Any = None, *, loss: Any, optimizer: Any,
        epochs: int = 1, batch_size: int | None = None,
        validation_data: tuple[Any, ...] | None = None, validation_split: float = 0.0,
        seed: int | None = None,
        callbacks: Iterable[Callback | Callable[[TrainingState], Any]] = (),
        shuffle: bool = True, drop_last: bool = False, verbose: int = 1, metric: Any = "auto",
        metrics: Iterable[Any] | None = None, sample_weight: Any = None,
        class_weight: Mapping[Any, float] | None = None, steps_per_epoch: int | None = None,
        initial_epoch: int = 0, compile: bool = True) -> History:
    """Train `model` on mini-batches of `(X, y)` for `epochs` epochs; return the `History`.

    Each step records `loss(model(xb, training=True), yb)` on a fresh tape and calls
    `optimizer.apply_gradients(zip(grads, model.trainable_variables))`.

    - Data: arrays `X`, `y` (checked once before the first step: numbers, a feature axis, no
      NaN/inf, labels that fit the outputs; labels (N,) or (N, 1) both work), cut into batches
      of `batch_size` (32) reshuffled each epoch from `seed` (`seed=None`: the global seed of
      `nn.set_seed` when set, else 0, so a run is reproducible by default; `shuffle=False`
      keeps the order; `drop_last` drops a short last batch). Or any iterable of `(x, y)` or
      `(x, y, sample_weight)` batches as `X`, with `y` left out: an `nn.MiniBatches`, a list,
      or a generator (with `steps_per_epoch` to draw that many batches per epoch from it;
      `shuffle` and `seed` then do not apply).
    - `loss`: a function or a Keras name (`'sparse_categorical_crossentropy'`,
      `'categorical_crossentropy'`, `'binary_crossentropy'`, `'mse'`; all from logits).
      `optimizer`: an object, or `'adam'`, `'sgd'`, `'rmsprop'`, `'adamw'` (which imports
      `optim` when it is called; see `nn.training.resolve.optimizer`). Metrics:
      `metrics=[...]` of names and functions `f(outputs, labels)`, each logged under its name,
      or one `metric` (`'auto'`: accuracy for the classification losses).
    - `sample_weight` (one per example) and `class_weight` (`{class: weight}`) weight the loss
      (Keras' `mean(w * loss)`); not for populations.
    - Validation: `validation_data=(X_val, y_val[, w_val])`, or `validation_split` (the last
      fraction of the examples, before shuffling), evaluated in inference mode after each
      epoch and logged as `val_<name>`.
    - Callbacks (`nn.Callback`s, or functions called after each epoch) get
      `on_train_begin/end`, `on_epoch_begin/end` and `on_batch_end`, and may stop training.
    - `verbose`: 1 a progress bar per epoch on a terminal and one line per epoch otherwise, 2
      one line per epoch, 0 nothing (see `nn.training.progress`).
    - A NaN/inf loss raises `FloatingPointError` naming the epoch and step, before that step's
      update (or stops training with `nn.TerminateOnNaN`).
    - `initial_epoch` (Keras' meaning) resumes at that 0-based epoch: epochs
      `initial_epoch .. epochs - 1` run, with those epochs' data order.
    - `compile=True` (the default; Keras' `run_eagerly=False`) runs each training step under
      `tape.function`: traced once, then replayed as straight-line NumPy code, with the same
      results bit for bit (the loss check, the optimizer's schedule and non-finite checks and
      batch-norm statistics run on every step). A short last batch has another shape, so it
      is traced once more (`drop_last=True` avoids it); a model not yet built takes its first
      step eagerly. Python code in the model or loss runs at the traces only (a loss that
      counts its calls or prints counts and prints once per batch shape; see
      `tape.function`). A step that cannot be traced (a `float()` or `if` on a traced value
      in the model or loss) runs eagerly on every call after one `RuntimeWarning` naming the
      line, as TensorFlow's AutoGraph runs what it cannot convert as it is. Batches of more
      than 4 shapes (iterable data of varying sizes) would trace on and on: after the fifth
      shape, fit warns once and runs the remaining steps eagerly. A callback that replaces
      the trainable Variables (`Population.select`) makes the step trace again for them.
      `compile=False` (Keras' `run_eagerly=True`) runs every step eagerly: for a loss or
      model whose Python must run on every step, or to debug one.

    For an `nn.Population`, `(X, y)` is shared by every member, or has one slice per member
    (X of shape (K, N, ...)); logs hold one value per member, and a member that diverges is
    frozen and listed in `history.frozen` while the others go on (training stops when all
    have).

    Example:
        >>> import nn, optim
        >>> X = np.random.default_rng(0).standard_normal((64, 2)); y = (X[:, 0] > 0).astype(int)
        >>> model = nn.Dense(2, seed=0)
        >>> h = fit(model, X, y, loss="sparse_categorical_crossentropy", optimizer=optim.SGD(0.5),
        ...         epochs=5, batch_size=16, verbose=0)
        >>> len(h.loss), h.accuracy[-1] > 0.9
        (5, True)
    """
    if not isinstance(compile, bool):
        raise TypeError(f"compile must be True or False, got {compile!r}")
    p = plan(model, X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
             validation_data=validation_data, validation_split=validation_split, seed=seed,
             shuffle=shuffle, drop_last=drop_last, verbose=verbose, metric=metric,
             metrics=metrics, sample_weight=sample_weight, class_weight=class_weight,
             steps_per_epoch=steps_per_epoch, initial_epoch=initial_epoch)
    hooks = _hooks(callbacks)
    model.training_policy().check_optimizer(p.optimizer)
    history = History()
    names = ["loss", *(name for name, _ in p.metrics)]
    state = TrainingState(model=model, optimizer=p.optimizer, history=history, epochs=p.epochs,
                          log_names=names + [f"val_{n}" for n in names] * bool(p.validation))
    progress = Progress(p.verbose, p.epochs)
    for cb in hooks:
        cb.on_train_begin(state)
    try:
        _loop(model, p, hooks, state, progress, _step_function(model, p, compile))
    finally:
        progress.close()
    history.stop_reason = state.stop_reason
    for cb in hooks:
        cb.on_train_end(state)
    return history


_MAX_SHAPES = 4  # batch signatures traced per set of Variables before fit runs eagerly


class _CompiledStep:
    """The training step under `tape.function`, one traced function per set of trainable
    Variables (a callback that replaces them, such as `Population.select`, starts a new one;
    the old programs, which write the old Variables, are dropped). Its signature is the
    batch's arrays only. Batches of more than `_MAX_SHAPES` shapes (iterable data of varying
    sizes) would trace on and on: fit warns once and runs the remaining steps eagerly."""

    def __init__(self, step: Callable[..., Any]) -> None:
        self.step = step
        self.variables: list[Variable] | None = None  # the list last seen
        self.ids: tuple[int, ...] = ()
        self.traced: Any = None
        self.eager = False

    def _function(self, variables: list[Variable]) -> Any:
        step = self.step

        def train_step(xb: Any, yb: Any, wb: Any) -> tuple[Any, Any]:
            return step(xb, yb, wb, variables)  # type: ignore[no-any-return]

        # A step that cannot be traced (a conversion of a traced value in the model or loss)
        # runs eagerly on every call after one RuntimeWarning, which names it and the line.
        train_step.__name__ = train_step.__qualname__ = "nn.fit step (compile=True)"
        return tape.function(train_step, fallback="eager")

    def __call__(self, xb: Any, yb: Any, wb: Any, variables: list[Variable]) -> tuple[Any, Any]:
        if not variables or self.eager:  # building the model (Python that runs once) is eager
            return self.step(xb, yb, wb, variables)  # type: ignore[no-any-return]
        if variables is not self.variables:  # a new list (once per epoch): new Variables?
            ids = tuple(map(id, variables))
            if ids != self.ids:
                self.ids, self.traced = ids, self._function(variables)
            self.variables = variables
        out = self.traced(xb, yb, wb)
        if self.traced.trace_count > _MAX_SHAPES:
            self.eager = True
            warnings.warn(f"nn.fit(compile=True): the batches came in more than {_MAX_SHAPES} "
                          f"shapes (the last: x {np.shape(xb)}), and each new shape traces the "
                          f"training step again; the remaining steps run eagerly. Batches of "
                          f"one shape (drop_last=True, or padded batches) stay compiled; "
                          f"compile=False runs eagerly from the start", RuntimeWarning,
                          stacklevel=5)
        return out  # type: ignore[no-any-return]


def _step_function(model: Module, p: Plan, compile: bool) -> Callable[..., Any]:
    """`step(xb, yb, wb, variables) -> (loss value, outputs)`: the policy's train step with
    `p.loss` (weighted by `wb` when given), traced by `tape.function` when `compile`."""
    policy, loss, optimizer = model.training_policy(), p.loss, p.optimizer

    def step(xb: Any, yb: Any, wb: Any, variables: list[Variable]) -> tuple[Any, Any]:
        step_loss = loss if wb is None else functools.partial(weighted_loss, loss,
                                                              sample_weight=wb)
        return policy.train_step(model, xb, yb, step_loss, optimizer, variables or None)

    return _CompiledStep(step) if compile else step


def _loop(model: Module, p: Plan, hooks: list[Callback], state: TrainingState,
          progress: Progress, step: Callable[..., Any]) -> None:
    """The epochs of `fit` (arguments already checked by `plan`)."""
    policy = model.training_policy()
    for epoch in range(p.initial_epoch, p.epochs):
        state.epoch = epoch
        for cb in hooks:
            cb.on_epoch_begin(state)
        start = time.perf_counter()
        progress.epoch_begin(epoch, p.source.steps)
        totals, seen, steps = _steps(model, p, hooks, state, progress, step)
        if steps == 0:
            raise ValueError(f"epoch {epoch + 1} got no batches: the data is empty or ran out")
        if p.source.steps and steps < p.source.steps and not state.stop_training:
            warnings.warn(f"the data ran out after {steps} of {p.source.steps} steps of epoch "
                          f"{epoch + 1}; training stops here", stacklevel=3)
            state.stop(f"the data ran out at epoch {epoch + 1}, step {steps}")
        logs = {k: v / seen for k, v in totals.items()}
        if p.validation is not None:
            Xv, yv, wv = p.validation
            val = evaluate_arrays(model, Xv, yv, wv, p.loss, p.metrics, None)
            logs.update({f"val_{k}": v for k, v in val.items()})
        state.logs = logs
        for cb in hooks:
            cb.on_epoch_end(state)
        state.history.record(logs, epoch)
        frozen = policy.frozen_count()
        progress.epoch_end(logs, time.perf_counter() - start, steps,
                           f"{frozen} frozen" if frozen else "")
        if state.stop_training:
            break


def _steps(model: Module, p: Plan, hooks: list[Callback], state: TrainingState,
           progress: Progress, train: Callable[..., Any]) -> tuple[dict[str, Any], int, int]:
    """One epoch's training steps (the hot path: per-step work is kept to the minimum);
    returns the loss and metric totals (summed over examples), the examples and the steps."""
    batch_hooks = [cb for cb in hooks if type(cb).on_batch_end is not Callback.on_batch_end]
    policy = model.training_policy()
    metrics, relabel = p.metrics, p.batch_labels
    live, epoch = progress.live, state.epoch
    variables = model.trainable_variables
    totals: dict[str, Any] = {"loss": 0.0, **{name: 0.0 for name, _ in metrics}}
    seen = steps = 0
    for step, (xb, yb, wb) in enumerate(p.source.epoch(epoch)):
        if relabel is not None:
            yb = relabel(xb, yb)
        shared = policy.examples_axis(xb) == 0
        try:
            value, outputs = train(xb, yb, wb, variables)
        except FloatingPointError as e:
            error = _diverged(e, xb, yb, _where(epoch, p.epochs, step, p.source.steps))
            if state.nonfinite == "raise" or not isinstance(error, FloatingPointError):
                raise error from None
            state.stop(str(error))
            totals["loss"] = np.nan
            return totals, seen or 1, steps + 1
        if not variables:  # the model was built by its first step
            variables = model.trainable_variables
        n = len(xb) if shared else np.shape(xb)[1]
        seen, steps = seen + n, step + 1
        batch = policy.metric_values(metrics, outputs, yb, shared=shared) if metrics else {}
        totals["loss"] += value * n
        for name, v in batch.items():
            totals[name] += v * n
        if batch_hooks:
            state.step, state.batch_logs = step, {"loss": value, **batch}
            for cb in batch_hooks:
                cb.on_batch_end(state)
            if state.stop_training:
                break
        if live:
            progress.update(steps, totals, seen)
        frozen = policy.newly_frozen()
        if frozen.size:
            _frozen(frozen, value, state.history, _where(epoch, p.epochs, step, p.source.steps))
            if policy.all_frozen():
                state.stop("every member of the population diverged")
                break
    return totals, seen, steps
