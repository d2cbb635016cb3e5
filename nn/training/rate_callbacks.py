"""Callbacks that set the optimizer's learning rate between epochs (Keras' semantics):
`LearningRateScheduler` and `ReduceLROnPlateau`.

Both write `optimizer.learning_rate` (any optimizer with that settable attribute: every
`optim` optimizer) and add the rate the epoch trained with to its logs as `learning_rate`, so
it is kept in the `History` and printed. Both need a number (or one per population member)
as the learning rate, not a per-step schedule: that would be silently replaced, so it is an
error at the start of training.

Example:
    >>> import numpy as np, nn, optim
    >>> X = np.random.default_rng(0).standard_normal((32, 2)); y = (X[:, 0] > 0).astype(int)
    >>> h = nn.fit(nn.Dense(2, seed=0), X, y, loss=nn.softmax_cross_entropy,
    ...            optimizer=optim.SGD(0.1), epochs=3, verbose=0,
    ...            callbacks=[LearningRateScheduler(lambda epoch, lr: lr / 2)])
    >>> h.learning_rate
    [0.05, 0.025, 0.0125]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nn.training.callbacks import Monitor
from nn.training.loop import Callback, TrainingState
from tape.utils import checks, signatures

__all__ = ["LearningRateScheduler", "ReduceLROnPlateau"]


def _rate(state: TrainingState, who: str) -> Any:
    """The optimizer's learning rate: a float, or an array of one per member."""
    lr = getattr(state.optimizer, "learning_rate", None)
    if lr is None or callable(lr):
        raise ValueError(f"{who} sets the optimizer's learning rate between epochs, so it needs "
                         f"a number there, but the optimizer has {lr!r}; pass a number (a "
                         f"schedule per step would be replaced without notice)")
    return float(lr) if np.ndim(lr) == 0 else np.asarray(lr, dtype=float)


def _set_rate(state: TrainingState, value: Any) -> None:
    state.optimizer.learning_rate = float(value) if np.ndim(value) == 0 else np.asarray(value)


def _takes_two(fn: Callable[..., Any]) -> bool:
    """Whether `fn` takes `(epoch, lr)` rather than `(epoch)` (Keras accepts both)."""
    return signatures.takes_positional(fn, 2, default=True)


class LearningRateScheduler(Callback):
    """Before each epoch, set the learning rate to `schedule(epoch, lr)` (0-based epoch, the
    current rate) or `schedule(epoch)` (Keras' `LearningRateScheduler`). A schedule of
    `optim.schedules` evaluated per epoch works as `schedule(epoch)`.

    Example:
        >>> sched = LearningRateScheduler(lambda epoch: 0.1 * 0.5 ** epoch)
        >>> sched.takes_rate
        False
    """

    def __init__(self, schedule: Callable[..., Any]) -> None:
        if not callable(schedule):
            raise TypeError(f"schedule must be a function schedule(epoch, lr) or "
                            f"schedule(epoch), got {schedule!r}")
        self.schedule = schedule
        self.takes_rate = _takes_two(schedule)

    def on_train_begin(self, state: TrainingState) -> None:
        _rate(state, "LearningRateScheduler")

    def on_epoch_begin(self, state: TrainingState) -> None:
        lr = _rate(state, "LearningRateScheduler")
        new = (self.schedule(state.epoch, lr) if self.takes_rate
               else self.schedule(state.epoch))
        if not np.all(np.isfinite(np.asarray(new, dtype=float))):
            raise ValueError(f"the schedule returned {new!r} for epoch {state.epoch}; a "
                             f"learning rate must be a finite number")
        _set_rate(state, new)

    def on_epoch_end(self, state: TrainingState) -> None:
        state.logs["learning_rate"] = _rate(state, "LearningRateScheduler")


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved by more than
    `min_delta` for `patience` epochs, then wait `cooldown` epochs; never below `min_lr`
    (Keras' `ReduceLROnPlateau`). The epoch's rate goes to the logs as `learning_rate`.

    On a population, `population='each'` (the default) gives every member its own plateau
    and its own rate (a single learning rate becomes one per member); `'best'` watches the
    best member's value and scales every member's rate together.

    Example:
        >>> cb = ReduceLROnPlateau("loss", factor=0.5, patience=1)
        >>> cb.factor, cb.patience
        (0.5, 1)
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, *,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0, population: str = "each") -> None:
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must lie in (0, 1) (it multiplies the rate), got {factor}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            checks.integer(name, value, 0)
        if not min_lr >= 0:
            raise ValueError(f"min_lr must be >= 0, got {min_lr!r}")
        self.factor, self.patience, self.cooldown = float(factor), patience, cooldown
        self.min_lr = float(min_lr)
        self._watch = Monitor(monitor, mode, min_delta, population)
        self.wait: Any = 0
        self.cooling: Any = 0

    def on_train_begin(self, state: TrainingState) -> None:
        _rate(state, "ReduceLROnPlateau")
        self._watch.check(state)
        self._watch.reset()
        self.wait, self.cooling = 0, 0

    def on_epoch_end(self, state: TrainingState) -> None:
        lr = _rate(state, "ReduceLROnPlateau")
        state.logs["learning_rate"] = lr
        value = self._watch.value(state)
        improved = self._watch.improves(value)
        if np.any(improved):
            self._watch.update(value, state.epoch, improved)
        # Keras' order: a cooldown epoch counts down and resets the wait; an improvement
        # resets it; otherwise, out of cooldown, it grows and may trigger a reduction.
        cooling = np.asarray(self.cooling)
        self.cooling = np.maximum(cooling - 1, 0)
        wait = np.where(cooling > 0, 0, self.wait)
        still = self.cooling > 0
        self.wait = np.where(improved, 0, np.where(still, wait, wait + 1))
        reduce = ~np.asarray(improved) & ~still & (self.wait >= self.patience) & (
            np.asarray(lr) > self.min_lr)
        if np.any(reduce):
            _set_rate(state, np.where(reduce, np.maximum(np.asarray(lr) * self.factor,
                                                         self.min_lr), lr))
            self.cooling = np.where(reduce, self.cooldown, self.cooling)
            self.wait = np.where(reduce, 0, self.wait)
