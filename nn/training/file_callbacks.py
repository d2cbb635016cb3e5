"""Callbacks that write files after each epoch: `ModelCheckpoint` and `CSVLogger`.

Every file is written whole or not at all (`tape.utils.files.atomic_write`: a temporary file, then a
rename), so a run killed mid-write leaves the previous file intact.

Example:
    >>> import numpy as np, nn, optim, os, tempfile
    >>> X = np.random.default_rng(0).standard_normal((32, 2)); y = (X[:, 0] > 0).astype(int)
    >>> d = tempfile.mkdtemp()
    >>> h = nn.fit(nn.Dense(2, seed=0), X, y, loss=nn.softmax_cross_entropy,
    ...            optimizer=optim.Adam(0.01), epochs=2, verbose=0,
    ...            callbacks=[ModelCheckpoint(os.path.join(d, "e{epoch}.npz"), monitor="loss"),
    ...                       CSVLogger(os.path.join(d, "log.csv"))])
    >>> sorted(os.listdir(d))
    ['e1.npz', 'e2.npz', 'log.csv']
    >>> open(os.path.join(d, "log.csv")).readline().strip()
    'epoch,loss,accuracy'
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nn.training.callbacks import Monitor
from nn.training.loop import Callback, TrainingState
from nn.training.saving import save_checkpoint
from nn.training.tables import best_member, better
from tape.utils.files import atomic_write

__all__ = ["CSVLogger", "ModelCheckpoint"]


def _scalars(logs: dict[str, Any]) -> dict[str, float]:
    """Logs with a population's values reduced to the best member's (for file names)."""
    out = {}
    for name, v in logs.items():
        if np.ndim(v) == 0:
            out[name] = float(v)
        else:
            k = best_member(v, better(name))
            out[name] = float("nan") if k is None else float(np.asarray(v)[k])
    return out


class ModelCheckpoint(Callback):
    """Save the model (and the optimizer's state, unless `save_optimizer=False`) after each
    epoch, or with `save_best_only=True` only when `monitor` improved (Keras'
    `ModelCheckpoint`). The file is `nn.save_checkpoint`'s: `nn.load_checkpoint(path, model,
    optimizer)` loads it into fresh objects and returns the epoch to pass to `fit` as
    `initial_epoch`.

    `filepath` may hold `{epoch}` (1-based, as in Keras: `'ck-{epoch:03d}.npz'`) and any
    logged name (`'{val_loss:.3f}'`); without them each save replaces the previous file. On a
    population the best member's value decides what is best and is what a name in `filepath`
    shows; the file holds every member. `last_saved` is the path of the latest file.

    Example:
        >>> cb = ModelCheckpoint("best.npz", save_best_only=True)
        >>> cb.save_best_only, cb.last_saved is None
        (True, True)
    """

    def __init__(self, filepath: str | os.PathLike[str], monitor: str = "val_loss", *,
                 save_best_only: bool = False, mode: str = "auto", min_delta: float = 0.0,
                 save_optimizer: bool = True) -> None:
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)
        self.save_optimizer = bool(save_optimizer)
        self._watch = Monitor(monitor, mode, min_delta, population="best")
        self.last_saved: str | None = None

    @property
    def best(self) -> float:
        """The best value of `monitor` saved so far (inf or -inf before)."""
        return float(self._watch.best)

    def on_train_begin(self, state: TrainingState) -> None:
        if self.save_best_only:
            self._watch.check(state)
        self._watch.reset()

    def on_epoch_end(self, state: TrainingState) -> None:
        if self.save_best_only:
            value = self._watch.value(state)
            if not self._watch.improves(value):
                return
            self._watch.update(value, state.epoch, True)
        try:
            path = self.filepath.format(epoch=state.epoch + 1, **_scalars(state.logs))
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} "
                             f"({type(e).__name__}: {e}); it may use {{epoch}} and "
                             f"{sorted(state.logs)}") from None
        save_checkpoint(path, state.model, state.optimizer if self.save_optimizer else None,
                        epoch=state.epoch + 1)
        self.last_saved = path


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file, one row per epoch (Keras' `CSVLogger`): a column
    `epoch` (0-based, as Keras writes it), then every logged name in the order it first
    appeared. A population's value gets one column per member, `loss/0`, `loss/1`, ...

    The file is rewritten whole after each epoch (atomically); `append=True` keeps the rows
    already in it. Values a callback adds to the logs appear when that callback comes before
    this one in `callbacks`.

    Example:
        >>> CSVLogger("log.csv", separator=";").separator
        ';'
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",",
                 append: bool = False) -> None:
        self.filename = os.fspath(filename)
        self.separator, self.append = separator, bool(append)
        self._kept = ""
        self._rows: list[dict[str, str]] = []
        self._columns: list[str] = []

    def on_train_begin(self, state: TrainingState) -> None:
        self._rows, self._columns = [], ["epoch"]
        self._kept = ""
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self._kept = f.read()
            if self._kept and not self._kept.endswith("\n"):
                self._kept += "\n"

    def on_epoch_end(self, state: TrainingState) -> None:
        row = {"epoch": str(state.epoch)}
        for name, v in state.logs.items():
            cells = ({name: v} if np.ndim(v) == 0 else
                     {f"{name}/{k}": x for k, x in enumerate(np.asarray(v))})
            for column, x in cells.items():
                if column not in self._columns:
                    self._columns.append(column)
                row[column] = repr(float(x))
        self._rows.append(row)
        sep = self.separator
        lines = [] if self._kept else [sep.join(self._columns)]
        lines += [sep.join(r.get(c, "") for c in self._columns) for r in self._rows]
        atomic_write(self.filename, (self._kept + "\n".join(lines) + "\n").encode("utf-8"))
