"""Callbacks for `nn.fit` with Keras' semantics: `EarlyStopping` and `RestoreBest`.

Both watch one entry of the epoch logs (`monitor`, e.g. `'val_loss'`); `mode='auto'` maximizes
names containing `'acc'` or `'auc'` and minimizes the rest. They are ordinary callbacks, so a
search objective can pass them to `nn.fit` too. A monitored name missing from the logs (say
`'val_loss'` without `validation_data`) is a `ValueError` listing the names there are, rather
than Keras' warning and a callback that silently never acts.

Example:
    >>> import numpy as np, nn, optim
    >>> X = np.random.default_rng(0).standard_normal((64, 2)); y = (X[:, 0] > 0).astype(int)
    >>> model = nn.Dense(2, seed=0)
    >>> stop = nn.EarlyStopping(patience=2, min_delta=0.01, restore_best_weights=True)
    >>> h = nn.fit(model, X, y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.5),
    ...            epochs=50, validation_data=(X, y), callbacks=[stop])
    >>> len(h) < 50, h.stop_reason.startswith("early stopping")
    (True, True)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from nn.training import Callback, TrainingState

__all__ = ["EarlyStopping", "RestoreBest"]


class _Monitor:
    """The best value of `monitor` so far and whether a new one improves on it by `min_delta`."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not (isinstance(min_delta, numbers.Real) and math.isfinite(min_delta)):
            raise ValueError(f"min_delta must be a finite number, got {min_delta!r}")
        if mode == "auto":
            mode = "max" if ("acc" in monitor or "auc" in monitor) else "min"
        self.monitor: str = monitor
        self.mode: str = mode
        self.min_delta: float = abs(float(min_delta))
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None

    def value(self, state: TrainingState) -> float:
        if self.monitor not in state.logs:
            raise ValueError(f"the monitored quantity {self.monitor!r} is not in the epoch logs; "
                             f"they have {sorted(state.logs)} (val_* needs validation_data)")
        return float(state.logs[self.monitor])

    def improves(self, value: float, reference: float | None = None) -> bool:
        """True if `value` beats `reference` (default: the best) by more than `min_delta`;
        NaN never does."""
        ref = self.best if reference is None else reference
        if self.mode == "min":
            return bool(np.less(value + self.min_delta, ref))
        return bool(np.greater(value - self.min_delta, ref))


class RestoreBest(Callback):
    """Keep a copy of the model's variables (trainable and not) at the epoch where `monitor`
    was best, and load them back when training ends; `best` and `best_epoch` (0-based) say
    which. Only the model is restored, not the optimizer (as Keras' `restore_best_weights`).

    Example:
        >>> import numpy as np, nn, optim
        >>> X = np.random.default_rng(0).standard_normal((32, 2)); y = (X[:, 0] > 0).astype(int)
        >>> model, best = nn.Dense(2, seed=0), nn.RestoreBest(monitor="loss")
        >>> h = nn.fit(model, X, y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.1),
        ...            epochs=3, callbacks=[best])
        >>> best.best_epoch, best.best == min(h.loss)
        (2, True)
    """

    def __init__(self, monitor: str = "val_loss", *, mode: str = "auto",
                 min_delta: float = 0.0) -> None:
        self._watch = _Monitor(monitor, mode, min_delta)
        self._weights: dict[str, np.ndarray] | None = None

    @property
    def best(self) -> float:
        """The best value of `monitor` seen (inf or -inf before the first epoch)."""
        return self._watch.best

    @property
    def best_epoch(self) -> int | None:
        """The 0-based epoch whose variables are kept (None before the first epoch)."""
        return self._watch.best_epoch

    def on_train_begin(self, state: TrainingState) -> None:
        self._watch.reset()
        self._weights = None

    def on_epoch_end(self, state: TrainingState) -> None:
        self.consider(state)

    def consider(self, state: TrainingState) -> bool:
        """Copy the model's variables if this epoch is the best; returns whether it was."""
        value = self._watch.value(state)
        if not self._watch.improves(value):
            return False
        self._watch.best, self._watch.best_epoch = value, state.epoch
        self._weights = state.model.state_dict()
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

    Example:
        >>> import numpy as np, nn, optim
        >>> X = np.random.default_rng(0).standard_normal((32, 2)); y = np.zeros(32, int)
        >>> stop = nn.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
        >>> h = nn.fit(nn.Dense(2, seed=0), X, y, loss=nn.softmax_cross_entropy,
        ...            optimizer=optim.SGD(0.1), epochs=10, callbacks=[stop])
        >>> len(h), stop.stopped_epoch
        (2, 1)
    """

    def __init__(self, monitor: str = "val_loss", *, patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        self.patience, self.start_from_epoch, self.baseline = patience, start_from_epoch, baseline
        self._watch = _Monitor(monitor, mode, min_delta)
        self._restore = (RestoreBest(monitor, mode=mode, min_delta=min_delta)
                         if restore_best_weights else None)
        self.wait = 0
        self.stopped_epoch: int | None = None

    @property
    def best(self) -> float:
        """The best value of `monitor` seen (inf or -inf before the first epoch)."""
        return self._watch.best

    def on_train_begin(self, state: TrainingState) -> None:
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
        self.wait += 1
        if self._watch.improves(value):
            self._watch.best, self._watch.best_epoch = value, state.epoch
            if self.baseline is None or self._watch.improves(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and state.epoch > 0:
            self.stopped_epoch = state.epoch
            state.stop(f"early stopping: {self._watch.monitor} did not improve on "
                       f"{self._watch.best:.6g} for {self.wait} epochs")

    def on_train_end(self, state: TrainingState) -> None:
        if self._restore is not None:
            self._restore.on_train_end(state)
