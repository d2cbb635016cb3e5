"""Callbacks for `nn.fit` with Keras' semantics that watch one logged quantity:
`EarlyStopping`, `RestoreBest` (and `TerminateOnNaN`, which watches the loss).

They watch one entry of the epoch logs (`monitor`, e.g. `'val_loss'`); `mode='auto'` maximizes
names containing `'acc'` or `'auc'` and minimizes the rest. They are ordinary callbacks, so a
search objective can pass them to `nn.fit` too. A monitored name missing from the logs (say
`'val_loss'` without `validation_data`) is a `ValueError` listing the names there are, rather
than Keras' warning and a callback that silently never acts.

On an `nn.Population` the monitored value has one entry per member, and `population` says
what it means: `'each'` (the default) follows every member on its own, as if each trained
alone (its own best value, best epoch and patience; training stops when every member has run
out of patience, and `RestoreBest` gives each member back its own best weights);
`'best'` follows the best member's value only (the population is one candidate, its score its
best member's).

Example:
    >>> import numpy as np, nn, optim
    >>> X = np.random.default_rng(0).standard_normal((64, 2)); y = (X[:, 0] > 0).astype(int)
    >>> model = nn.Dense(2, seed=0)
    >>> stop = nn.EarlyStopping(patience=2, min_delta=0.01, restore_best_weights=True)
    >>> h = nn.fit(model, X, y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.5),
    ...            epochs=50, validation_data=(X, y), callbacks=[stop], verbose=0)
    >>> len(h) < 50, h.stop_reason.startswith("early stopping")
    (True, True)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from nn.training.loop import Callback, TrainingState
from nn.training.tables import best_member, better, format_value
from tape.utils import checks

__all__ = ["EarlyStopping", "Monitor", "RestoreBest", "TerminateOnNaN"]

_POPULATION = ("each", "best")


class Monitor:
    """The best value of `monitor` so far and whether a new one improves on it by `min_delta`.

    Values are numbers, or for a population one per member: with `population='each'` every
    member keeps its own best (`best` and `best_epoch` become arrays), with `'best'` the best
    member's value is watched.

    Example:
        >>> m = Monitor("val_loss", "auto", 0.0)
        >>> m.improves(0.5), m.mode
        (True, 'min')
    """

    def __init__(self, monitor: str, mode: str, min_delta: float,
                 population: str = "each") -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not (isinstance(min_delta, numbers.Real) and math.isfinite(min_delta)):
            raise ValueError(f"min_delta must be a finite number, got {min_delta!r}")
        if population not in _POPULATION:
            raise ValueError(f"population must be one of {_POPULATION}, got {population!r}")
        self.monitor: str = monitor
        self.mode: str = better(monitor) if mode == "auto" else mode
        self.min_delta: float = abs(float(min_delta))
        self.population: str = population
        self.reset()

    def reset(self) -> None:
        """Forget the best value (at the start of training)."""
        self.best: Any = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: Any = None

    def check(self, state: TrainingState) -> None:
        """Before training: a `val_` quantity without validation data is an error now rather
        than after the first epoch (other names may still be added by callbacks).

        Example:
            >>> s = TrainingState(None, None, None, 1, log_names=["loss"])
            >>> Monitor("val_loss", "auto", 0.0).check(s)
            Traceback (most recent call last):
            ValueError: the monitored quantity 'val_loss' needs validation_data or ...
        """
        names, name = state.log_names, self.monitor
        if names is not None and name not in names and name[4:] in names and \
                name.startswith("val_"):
            raise ValueError(f"the monitored quantity {name!r} needs validation_data or "
                             f"validation_split in fit; without them the logs are {names}")

    def value(self, state: TrainingState) -> Any:
        """This epoch's value: a float, or one per member (population `'each'`)."""
        if self.monitor not in state.logs:
            raise ValueError(f"the monitored quantity {self.monitor!r} is not in the epoch logs; "
                             f"they have {sorted(state.logs)} (val_* needs validation_data)")
        v = state.logs[self.monitor]
        if np.ndim(v) == 0:
            return float(v)
        v = np.asarray(v, dtype=float)
        if self.population == "best":
            k = best_member(v, self.mode)
            return math.nan if k is None else float(v[k])
        if np.ndim(self.best) and np.shape(self.best) != v.shape:
            raise ValueError(f"{self.monitor!r} had {np.size(self.best)} members and now has "
                             f"{v.size}: population='each' cannot follow members across "
                             f"Population.select; use population='best'")
        return v

    def improves(self, value: Any, reference: Any = None) -> Any:
        """True where `value` beats `reference` (default: the best) by more than `min_delta`;
        NaN never does. A bool, or one per member."""
        ref = self.best if reference is None else reference
        if self.mode == "min":
            out = np.less(value + self.min_delta, ref)
        else:
            out = np.greater(value - self.min_delta, ref)
        return bool(out) if np.ndim(out) == 0 else out

    def update(self, value: Any, epoch: int, improved: Any) -> None:
        """Take `value` as the new best where it `improved`, at `epoch`."""
        if np.ndim(improved) == 0:
            self.best, self.best_epoch = value, epoch
            return
        previous = np.full(np.shape(value), -1) if self.best_epoch is None else self.best_epoch
        self.best = np.where(improved, value, self.best)
        self.best_epoch = np.where(improved, epoch, previous)

    def describe(self) -> str:
        """The best value as text (`0.3412`, or for members the best of them and its index)."""
        return format_value(self.monitor, self.best, 6)




class RestoreBest(Callback):
    """Keep a copy of the model's variables (trainable and not) at the epoch where `monitor`
    was best, and load them back when training ends; `best` and `best_epoch` (0-based) say
    which. Only the model is restored, not the optimizer (as Keras' `restore_best_weights`).
    On a population with `population='each'` every member gets its own best epoch's variables
    back (`best` and `best_epoch` are then arrays); see the module docstring.

    Example:
        >>> import numpy as np, nn, optim
        >>> X = np.random.default_rng(0).standard_normal((32, 2)); y = (X[:, 0] > 0).astype(int)
        >>> model, best = nn.Dense(2, seed=0), nn.RestoreBest(monitor="loss")
        >>> h = nn.fit(model, X, y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.1),
        ...            epochs=3, callbacks=[best], verbose=0)
        >>> best.best_epoch, best.best == min(h.loss)
        (2, True)
    """

    def __init__(self, monitor: str = "val_loss", *, mode: str = "auto",
                 min_delta: float = 0.0, population: str = "each") -> None:
        self._watch = Monitor(monitor, mode, min_delta, population)
        self._weights: dict[str, np.ndarray] | None = None

    @property
    def best(self) -> Any:
        """The best value of `monitor` seen (inf or -inf before the first epoch)."""
        return self._watch.best

    @property
    def best_epoch(self) -> Any:
        """The 0-based epoch whose variables are kept (None before the first epoch)."""
        return self._watch.best_epoch

    def on_train_begin(self, state: TrainingState) -> None:
        self._watch.check(state)
        self._watch.reset()
        self._weights = None

    def on_epoch_end(self, state: TrainingState) -> None:
        self.consider(state)

    def consider(self, state: TrainingState) -> bool:
        """Copy the model's variables where this epoch is the best; returns whether it was
        (for any member)."""
        value = self._watch.value(state)
        improved = self._watch.improves(value)
        if not np.any(improved):
            return False
        self._watch.update(value, state.epoch, improved)
        current = state.model.state_dict()
        if self._weights is None or np.ndim(improved) == 0:
            self._weights = current
        else:  # one row per member: copy the rows of the members that improved
            for name, array in current.items():
                self._weights[name][improved] = array[improved]
        return True

    def on_train_end(self, state: TrainingState) -> None:
        if self._weights is not None:
            state.model.load_state_dict(self._weights)


class EarlyStopping(Callback):
    """Stop training when `monitor` has not improved by more than `min_delta` for `patience`
    epochs (Keras' `EarlyStopping`).

    With a `baseline`, the patience only restarts when `monitor` also beats the baseline
    (Keras 3), so training stops if it does not within `patience` epochs. Epochs before
    `start_from_epoch` are not watched. `restore_best_weights=True` reloads the best epoch's
    variables when training ends (a `RestoreBest` inside).
    `stopped_epoch` is the 0-based epoch where it stopped training (None if it did not).
    On a population, `population='each'` stops when every member has gone `patience` epochs
    without improving, `'best'` when the best member's value has (see the module docstring).

    Example:
        >>> import numpy as np, nn, optim
        >>> X = np.random.default_rng(0).standard_normal((32, 2)); y = np.zeros(32, int)
        >>> stop = nn.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
        >>> h = nn.fit(nn.Dense(2, seed=0), X, y, loss=nn.softmax_cross_entropy,
        ...            optimizer=optim.SGD(0.1), epochs=10, callbacks=[stop], verbose=0)
        >>> len(h), stop.stopped_epoch
        (2, 1)
    """

    def __init__(self, monitor: str = "val_loss", *, patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0,
                 population: str = "each") -> None:
        checks.integer("patience", patience, 0)
        self.patience, self.start_from_epoch, self.baseline = patience, start_from_epoch, baseline
        self._watch = Monitor(monitor, mode, min_delta, population)
        self._restore = (RestoreBest(monitor, mode=mode, min_delta=min_delta,
                                     population=population)
                         if restore_best_weights else None)
        self.wait: Any = 0
        self.stopped_epoch: int | None = None

    @property
    def best(self) -> Any:
        """The best value of `monitor` seen (inf or -inf before the first epoch)."""
        return self._watch.best

    def on_train_begin(self, state: TrainingState) -> None:
        self._watch.check(state)
        self._watch.reset()
        self.wait, self.stopped_epoch = 0, None
        if self._restore is not None:
            self._restore.on_train_begin(state)

    def on_epoch_end(self, state: TrainingState) -> None:
        value = self._watch.value(state)
        if state.epoch < self.start_from_epoch:
            return
        if self._restore is not None:
            self._restore.consider(state)
        self.wait = self.wait + 1
        improved = self._watch.improves(value)
        if np.any(improved):
            self._watch.update(value, state.epoch, improved)
            restart = improved if self.baseline is None else (
                improved & self._watch.improves(value, self.baseline))
            self.wait = np.where(restart, 0, self.wait) if np.ndim(restart) else (
                0 if restart else self.wait)
        done = ~np.asarray(improved) & (np.asarray(self.wait) >= self.patience)
        if np.all(done) and state.epoch > 0:
            self.stopped_epoch = state.epoch
            waited, name = int(np.min(self.wait)), self._watch.monitor
            state.stop(f"early stopping: {name} did not improve on {self._watch.describe()} "
                       f"for {waited} epochs" if np.ndim(improved) == 0 else
                       f"early stopping: no member's {name} improved in the last {waited} "
                       f"epochs (best {self._watch.describe()})")

    def on_train_end(self, state: TrainingState) -> None:
        if self._restore is not None:
            self._restore.on_train_end(state)


class TerminateOnNaN(Callback):
    """Stop training cleanly when the loss turns NaN or infinite (Keras' `TerminateOnNaN`).

    Without it `fit` raises `FloatingPointError`; with it `fit` returns the history, whose
    last epoch has a NaN loss and whose `stop_reason` names the epoch and step. Either way the
    step with the bad loss updates nothing. (A population freezes a diverging member and goes
    on either way; it stops when every member has diverged.)

    Example:
        >>> import numpy as np, nn, optim
        >>> X = np.ones((8, 2)); y = np.zeros((8, 1))
        >>> h = nn.fit(nn.Dense(1, seed=0), X, y, loss=lambda p, t: (p - t).sum() * np.inf,
        ...            optimizer=optim.SGD(0.1), epochs=3, callbacks=[TerminateOnNaN()],
        ...            verbose=0)
        >>> len(h), h.stop_reason.startswith("training diverged at epoch 1/3, step 1")
        (1, True)
    """

    def on_train_begin(self, state: TrainingState) -> None:
        state.nonfinite = "stop"
