"""`Babysitter`: train one model epoch by epoch, checkpointing after each epoch, with changes of
hyperparameters mid-run, rollbacks, learning-curve plots and exact resumption in a new process.

The course's "panda" strategy: with one big model and little compute, watch its learning curve,
nudge the learning rate, and go back to yesterday's model when a change made things worse.

A run directory holds:

- `epoch-NNNN.npz`, one per kept epoch (N counts completed epochs, from 1): the model's
  variables (`model/<path>`, trainable and not), the optimizer's `state_dict` (`optimizer/...`)
  and a JSON `meta` entry with the run's settings, the optimizer's hyperparameters, the event
  log up to that epoch and the list of the other entries (`nn.runs.checkpoints`). Written with
  `tape.utils.npz.save_arrays` (temporary file, fsync, rename), so a crash leaves the previous
  checkpoint intact.
- `log.json`: the whole event log (epochs with their metrics, `set` changes, rollbacks and the
  abandoned branches, resumes), rewritten atomically after every event.
- `.lock`: held with `fcntl.flock` while a `Babysitter` is open, so a second process gets a
  clear error; the OS drops it when the process dies, so a killed run never blocks its resume
  (`nn.runs.lock`).

The files are data, never code: arrays are read with `allow_pickle=False`, a schedule's class
name is looked up in an allow-list (`tape.registry`: the classes of `optim.schedules`, those
registered with `optim.schedules.register`, and `custom_objects=`) and never imported, and
checkpoints and `log.json` are read only as regular files inside the directory (a symbolic
link, to anywhere, is refused and never followed). On resume a checkpoint that cannot be used
(unreadable, or not fitting the model and optimizer: a missing or misshapen variable or
optimizer slot, a NaN or inf value) is skipped with a warning naming it and the reason, and the
previous one is used.

Example:
    >>> import numpy as np, nn, optim, tempfile
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((64, 2)); y = (X[:, 0] > 0).astype(int)
    >>> run = nn.Babysitter(nn.Dense(2, seed=0), loss=nn.softmax_cross_entropy,
    ...                     optimizer=optim.Adam(0.01), train=(X, y), validation=(X, y),
    ...                     batch_size=16, directory=tempfile.mkdtemp())
    >>> _ = run.train(epochs=2); run.set(learning_rate=0.05); _ = run.train(epochs=1)
    >>> run.rollback(epoch=2); run.epoch, run.checkpoints
    (2, [1, 2])
    >>> run.close()
"""

from __future__ import annotations

import copy
import io
import json
import os
import time
import warnings
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nn.data import MiniBatches
from nn.layers.module import Module
from nn.runs import plot
from nn.runs.checkpoints import (
    CHECKPOINT,
    FORMAT,
    Checkpoint,
    checkpoint_epochs,
    checkpoint_name,
    load_into,
    read_checkpoint,
    write_checkpoint,
)
from nn.runs.fingerprint import fingerprint
from nn.runs.lock import lock_directory
from nn.runs.runlog import (
    METRICS,
    Classes,
    Event,
    RunHistory,
    UnknownClassError,
    change_summary,
    check_events,
    check_hyperparameters,
    decode,
    encode,
    replay,
)
from nn.training.callbacks import Monitor
from nn.training.loop import Callback, History, Metric, TrainingState, fit
from tape import registry
from tape.utils import checks
from tape.utils.files import atomic_write
from tape.utils.npz import open_regular

__all__ = ["Babysitter", "RunHistory"]

LOG = "log.json"


# -- the Babysitter -----------------------------------------------------------------------------
class Babysitter:
    """Train one model epoch by epoch; watch, nudge, roll back and resume it.

    Every completed epoch is checkpointed in `directory` (see the module docstring for the
    files). `train(epochs=n)` trains n more epochs with `nn.fit`; epoch `e`'s data order comes
    from `(seed, e)` as in `nn.MiniBatches`, so it is the same after a rollback or a resume.
    `set(**hyperparameters)` changes optimizer hyperparameters between epochs (a number, K
    numbers, or a schedule); `rollback(epoch)` restores the model and the optimizer (its slots,
    step count and hyperparameters: changes made after that epoch are undone) from that
    epoch's checkpoint, removes the later checkpoints and keeps their metrics in the log as an
    abandoned branch. `history` is the live branch with the whole log, `plot()` draws it.

    `keep="all"` keeps every checkpoint; `keep=k` keeps the last k plus the best by `monitor`
    (`"auto"`: `val_loss` with validation data, else `loss`; accuracies are maximized). A
    schedule is saved by its description (its class and fields, as for `optim.schedules`, or
    `get_config()`), so a plain function or lambda as learning rate is refused with a
    `ValueError` at construction or in `set`. Reading it back looks its class up in an
    allow-list, never by import: the classes of `optim.schedules`, those registered with
    `optim.schedules.register(cls)`, and `custom_objects` (classes, or a mapping from the name
    a file stores, `"module:Class"`, to a class; as in Keras), given here or to `resume`.
    If training raises (a divergence, Ctrl-C), the model and optimizer go back to the last
    checkpoint (if any) before the error propagates. The directory is locked while the
    Babysitter is open: `close()` it (or use `with`).

    Resuming in a new process needs the objects the checkpoint cannot hold, freshly built with
    the same architecture: `Babysitter.resume(directory, model, loss=..., optimizer=...,
    train=..., validation=...)`. Everything else (variables, optimizer state and
    hyperparameters, epoch, seed, batch size, history and log) comes from the checkpoint. A
    newest checkpoint that is corrupt or does not fit (see the module docstring) is skipped
    with a warning, and the previous one is used.

    Example:
        >>> import numpy as np, nn, optim, tempfile
        >>> X = np.random.default_rng(0).standard_normal((64, 2)); y = (X[:, 0] > 0).astype(int)
        >>> d = tempfile.mkdtemp()
        >>> with nn.Babysitter(nn.Dense(2, seed=0), loss=nn.softmax_cross_entropy,
        ...                    optimizer=optim.Adam(0.01), train=(X, y), directory=d) as run:
        ...     _ = run.train(epochs=3)
        >>> with nn.Babysitter.resume(d, nn.Dense(2, seed=5), loss=nn.softmax_cross_entropy,
        ...                           optimizer=optim.Adam(), train=(X, y)) as run:
        ...     run.epoch, run.optimizer.learning_rate
        (3, 0.01)
    """

    def __init__(self, model: Module, *, loss: Callable[..., Any], optimizer: Any,
                 train: tuple[Any, Any], directory: str | os.PathLike[str],
                 validation: tuple[Any, Any] | None = None, batch_size: int = 32,
                 seed: int | None = 0, keep: int | str = "all", monitor: str = "auto",
                 shuffle: bool = True, drop_last: bool = False,
                 metric: Metric | str | None = "auto", verbose: int = 0,
                 custom_objects: Classes = None) -> None:
        if keep != "all" and not (checks.is_integer(keep) and int(keep) >= 1):
            raise ValueError(f"keep must be 'all' or an integer >= 1, got {keep!r}")
        if monitor == "auto":
            monitor = "loss" if validation is None else "val_loss"
        if monitor not in METRICS or (monitor.startswith("val_") and validation is None):
            raise ValueError(f"monitor must be one of {METRICS} (val_* needs validation data), "
                             f"got {monitor!r}")
        if seed is None:  # a fresh seed, then stored like a given one
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        config = {"batch_size": batch_size, "seed": int(seed), "keep": keep, "monitor": monitor,
                  "shuffle": bool(shuffle), "drop_last": bool(drop_last),
                  "optimizer": type(optimizer).__name__, "train": fingerprint(train),
                  "validation": fingerprint(validation)}
        self.custom_objects = registry.by_name(custom_objects)
        self._open(directory)
        try:
            self._setup(model, loss, optimizer, train, validation, config, metric, verbose)
            if self.checkpoints:
                raise FileExistsError(f"{self.directory!r} already holds a run (checkpoints of "
                                      f"epochs {self.checkpoints}); continue it with "
                                      f"Babysitter.resume(...) or use another directory")
            check_hyperparameters(optimizer.hyperparameters, self.custom_objects)
            self._events: list[Event] = []
        except BaseException:
            self.close()
            raise

    def _open(self, directory: str | os.PathLike[str]) -> None:
        """Take the directory's lock (first: nothing in it is read before)."""
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self._release = weakref.finalize(self, lock_directory(self.directory))

    def _setup(self, model: Module, loss: Callable[..., Any], optimizer: Any,
               train: tuple[Any, Any], validation: tuple[Any, Any] | None,
               config: dict[str, Any], metric: Metric | str | None, verbose: int) -> None:
        """What `__init__` and `resume` share: check the data, keep the run's objects."""
        for name, data in (("train", train), ("validation", validation)):
            if data is not None and (not isinstance(data, (tuple, list)) or len(data) != 2):
                raise ValueError(f"{name} must be a pair (X, y), got {type(data).__name__}")
        batches = MiniBatches(*train, config["batch_size"], seed=config["seed"])  # checks them
        config["batch_size"] = batches.batch_size
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.train_data, self.validation_data = tuple(train), validation
        self.metric, self.verbose, self.config = metric, verbose, config

    # -- what there is ------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """The number of completed epochs on the live branch (what the next `train` continues)."""
        return replay(self._events).head

    @property
    def history(self) -> RunHistory:
        """Per-epoch metrics of the live branch, plus every event (`RunHistory`)."""
        return RunHistory(events=copy.deepcopy(self._events))

    @property
    def checkpoints(self) -> list[int]:
        """The epochs that have a checkpoint file (what `rollback` accepts), ascending."""
        return checkpoint_epochs(self.directory)

    @property
    def best_epoch(self) -> int | None:
        """The checkpointed live epoch with the best `monitor` value (None before training)."""
        watch, best, kept = Monitor(self.config["monitor"], "auto", 0.0), None, set()
        kept.update(self.checkpoints)
        for ev in replay(self._events).live:
            value = ev["logs"].get(self.config["monitor"])
            if ev["epoch"] in kept and value is not None and watch.improves(value):
                watch.best, best = value, ev["epoch"]
        return best

    def _path(self, epoch: int) -> str:
        return os.path.join(self.directory, checkpoint_name(epoch))

    # -- training -----------------------------------------------------------------------------
    def train(self, epochs: int = 1,
              callbacks: Iterable[Callback | Callable[[TrainingState], Any]] = ()) -> History:
        """Train `epochs` more epochs, checkpointing after each; returns their `History`.

        `callbacks` are passed to `nn.fit` and run after the checkpoint; `nn.EarlyStopping`
        fits here, while to restore the best weights use `rollback(run.best_epoch)`, which
        restores the optimizer too (a `RestoreBest` would leave the model off its checkpoint).
        """
        checks.integer("epochs", epochs, 1)
        self._check_open()
        c, start = self.config, self.epoch
        try:
            return fit(self.model, *self.train_data, loss=self.loss, optimizer=self.optimizer,
                       epochs=start + epochs, initial_epoch=start, batch_size=c["batch_size"],
                       validation_data=self.validation_data, seed=c["seed"],
                       shuffle=c["shuffle"], drop_last=c["drop_last"], metric=self.metric,
                       verbose=self.verbose,
                       callbacks=[lambda s: self._checkpoint(s.epoch + 1, s.logs), *callbacks])
        except BaseException:
            if self.epoch > 0:  # an epoch cut short leaves the model between checkpoints
                self._restore(read_checkpoint(self._path(self.epoch)))
            raise

    def _checkpoint(self, epoch: int, logs: dict[str, float]) -> None:
        event = {"event": "epoch", "epoch": epoch, "logs": encode(logs), "time": time.time()}
        write_checkpoint(self._path(epoch), self.model, self.optimizer, config=self.config,
                         hyperparameters=encode(self.optimizer.hyperparameters),
                         events=[*self._events, event])
        self._log(event)
        self._prune()

    def _log(self, event: Event) -> None:
        self._events.append(event)
        data = {"format": FORMAT, "config": self.config, "events": self._events}
        atomic_write(os.path.join(self.directory, LOG), json.dumps(data, indent=1).encode())

    def _prune(self) -> None:
        k = self.config["keep"]
        if k == "all":
            return
        files = self.checkpoints
        for epoch in set(files[:-k]) - {self.best_epoch}:
            os.unlink(self._path(epoch))

    # -- changes ------------------------------------------------------------------------------
    def set(self, **hyperparameters: Any) -> None:
        """Change optimizer hyperparameters from the next epoch on; the change is logged.

        Any hyperparameter of the optimizer (`learning_rate` may be a schedule). An unknown
        name, an invalid value or a schedule that cannot be saved is a `ValueError`, and then
        nothing changes.

        Example:
            >>> import numpy as np, nn, optim, tempfile
            >>> X = np.zeros((8, 2)); y = np.zeros(8, int)
            >>> with nn.Babysitter(nn.Dense(2), loss=nn.softmax_cross_entropy,
            ...                    optimizer=optim.Adam(), train=(X, y),
            ...                    directory=tempfile.mkdtemp()) as run:
            ...     run.set(learning_rate=optim.schedules.ExponentialDecay(0.01, 0.9))
            ...     run.set(beta_1=1.5)
            Traceback (most recent call last):
            ValueError: beta_1 must be in [0, 1), got 1.5
        """
        if not hyperparameters:
            raise ValueError("set() needs at least one hyperparameter, e.g. "
                             "set(learning_rate=1e-3)")
        self._check_open()
        check_hyperparameters(hyperparameters, self.custom_objects)
        before = self.optimizer.hyperparameters
        try:
            self.optimizer.set_hyperparameters(**hyperparameters)
        except TypeError as e:
            raise ValueError(str(e)) from None
        after = self.optimizer.hyperparameters
        self._log({"event": "set", "epoch": self.epoch,
                   "changes": encode({k: after[k] for k in hyperparameters}),
                   "before": encode({k: before.get(k) for k in hyperparameters})})

    def rollback(self, epoch: int) -> None:
        """Go back to the model and optimizer state after `epoch` (hyperparameters included).

        Later checkpoints are removed; their epochs stay in the log as an abandoned branch
        (shown by `plot` and `print(run.history)`). An epoch without a checkpoint (never
        trained, or pruned by `keep`) is a `ValueError` listing the available ones.
        """
        self._check_open()
        available = self.checkpoints
        if epoch not in available:
            raise ValueError(f"no checkpoint of epoch {epoch!r} in {self.directory!r}; "
                             f"available epochs: {available}"
                             + ("" if self.config["keep"] == "all" else
                                f" (keep={self.config['keep']} prunes the others)"))
        self._restore(read_checkpoint(self._path(epoch)))
        head = self.epoch
        for later in available:  # removed before the log says so: see `resume`
            if later > epoch:
                os.unlink(self._path(later))
        self._log({"event": "rollback", "epoch": epoch, "from": head})

    def _restore(self, ck: Checkpoint) -> None:
        """Load the checkpoint into the model and the optimizer, all or nothing
        (`nn.runs.checkpoints.load_into`)."""
        load_into(ck, self.model, self.optimizer, self.custom_objects)

    # -- resuming -----------------------------------------------------------------------------
    @classmethod
    def resume(cls, directory: str | os.PathLike[str], model: Module, *,
               loss: Callable[..., Any], optimizer: Any, train: tuple[Any, Any],
               validation: tuple[Any, Any] | None = None,
               metric: Metric | str | None = "auto", verbose: int = 0,
               custom_objects: Classes = None) -> Babysitter:
        """Continue a run from its newest usable checkpoint, in this process.

        `model` and `optimizer` are fresh objects of the run's architecture and optimizer
        class (their values are replaced); `loss`, `train` and `validation` must be the run's
        (the data is checked against a hash: other data is an error). A newest checkpoint that
        is corrupt or does not fit the model and optimizer (a missing or misshapen variable or
        slot, a NaN or inf value) is skipped with a warning naming it and the reason, set aside
        as `*.corrupt`, and the previous one is used (its lost epochs stay in the log as an
        abandoned branch); `set` changes made after the checkpoint are re-applied. No
        checkpoint, or none usable, is an error naming the directory or each file and reason.
        A schedule class that is not allowed (see the class docstring; `custom_objects` adds
        classes) is an error naming it, never a fallback.
        """
        directory = os.fspath(directory)
        if not (os.path.isdir(directory) and any(map(CHECKPOINT.match, os.listdir(directory)))):
            raise FileNotFoundError(f"no checkpoint (epoch-NNNN.npz) in {directory!r}: "
                                    f"nothing to resume")
        self = cls.__new__(cls)
        self.custom_objects = registry.by_name(custom_objects)
        self._open(directory)
        try:
            ck = self._newest_usable(model, loss, optimizer, train, validation, metric, verbose)
            self._events = self._resumed_events(ck)
            tl = replay(self._events)
            for ev in self._events[tl.anchor + 1:]:  # changes made after the checkpoint
                if ev["event"] == "set":
                    self._reapply(ev)
            for name in self.checkpoints:  # set aside what the fallback skipped
                if name > ck.meta["epoch"]:
                    os.replace(self._path(name), self._path(name) + ".corrupt")
            self._log({"event": "resume", "epoch": ck.meta["epoch"]})
        except BaseException:
            self.close()
            raise
        return self

    def _newest_usable(self, model: Module, loss: Callable[..., Any], optimizer: Any,
                       train: tuple[Any, Any], validation: tuple[Any, Any] | None,
                       metric: Metric | str | None, verbose: int) -> Checkpoint:
        """Set the run up from its newest checkpoint that reads and fits, newest first."""
        given = {"optimizer": type(optimizer).__name__, "train": fingerprint(train),
                 "validation": fingerprint(validation)}
        epochs, problems = self.checkpoints[::-1], []
        for k, epoch in enumerate(epochs):
            try:
                ck = read_checkpoint(self._path(epoch))
            except ValueError as e:
                problems.append(str(e))
            else:
                config = ck.meta["config"]
                for key, value in given.items():  # another run's data: an error, not a fallback
                    if config[key] != value:
                        raise ValueError(f"{ck.path!r}: the run was trained with {key} "
                                         f"{config[key]!r}, got {value!r}; resume with the "
                                         f"run's own {key}")
                self._setup(model, loss, optimizer, train, validation, config, metric, verbose)
                if not model.variables:  # build it, so that its variables can be loaded
                    model(np.asarray(train[0])[:1], training=False)
                try:
                    self._restore(ck)
                    return ck
                except UnknownClassError:
                    raise
                except ValueError as e:
                    problems.append(str(e))
            if k + 1 < len(epochs):
                warnings.warn(f"{problems[-1]}; falling back to the previous checkpoint",
                              RuntimeWarning, stacklevel=3)
        raise ValueError(f"no usable checkpoint in {self.directory!r}: " + "; ".join(problems))

    def _reapply(self, event: Event) -> None:
        """Re-apply a `set` change that `log.json` holds after the last checkpoint."""
        where = f"{os.path.join(self.directory, LOG)!r}"
        try:
            self.optimizer.set_hyperparameters(**decode(event["changes"], self.custom_objects))
        except UnknownClassError as e:
            raise UnknownClassError(f"{where}: {e}") from None
        except (ValueError, TypeError) as e:
            raise ValueError(f"{where}: the change {change_summary(event)} made after epoch "
                             f"{event['epoch']} cannot be re-applied ({e}); correct the file, "
                             f"or delete it to resume from the log saved in the checkpoint"
                             ) from None

    def _resumed_events(self, ck: Checkpoint) -> list[Event]:
        """The checkpoint's log, continued by `log.json` when that agrees with it (so changes
        and rollbacks after the checkpoint are kept), ending on the checkpoint's epoch."""
        events, epoch = ck.meta["events"], ck.meta["epoch"]
        path = os.path.join(self.directory, LOG)
        try:
            with open_regular(path, follow_symlinks=False) as f:
                logged = check_events(json.load(f)["events"])
        except FileNotFoundError:
            logged = None
        except (ValueError, KeyError, TypeError, RecursionError) as e:  # a symbolic link too
            warnings.warn(f"{path!r} is unusable ({e}); using the log saved in {ck.path!r}",
                          RuntimeWarning, stacklevel=3)
            logged = None
        if logged is not None and json.dumps(logged[:len(events)]) == json.dumps(events):
            events = logged
        tl = replay(events)
        if epoch not in [ev["epoch"] for ev in tl.live]:  # should not happen: trust the file
            events, tl = ck.meta["events"], replay(ck.meta["events"])
        if tl.head != epoch:  # the checkpoints of the later epochs are lost
            events = [*events, {"event": "rollback", "epoch": epoch, "from": tl.head,
                                "reason": f"resumed from {os.path.basename(ck.path)}, the "
                                          f"newest usable checkpoint"}]
        return events

    # -- plots --------------------------------------------------------------------------------
    def figure(self) -> Any:
        """The learning curves as a matplotlib `Figure` (object API, no pyplot state): loss
        (and accuracy) per epoch, abandoned branches dashed grey, `set` changes as green dotted
        lines labelled with the new values (grey and "undone" once a rollback undid them),
        rollbacks as red dash-dotted lines (`nn.runs.plot.figure`)."""
        name = os.path.basename(os.path.abspath(self.directory))
        return plot.figure(self._events, f"{name}: epoch {self.epoch}")

    def plot(self, path: str | os.PathLike[str] | None = None) -> str:
        """Draw `figure()` to the PNG file `path` (default `<directory>/curves.png`)
        atomically; returns the path. Needs matplotlib (extra `plot`)."""
        path = os.path.join(self.directory, "curves.png") if path is None else os.fspath(path)
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png", dpi=100)
        atomic_write(path, buf.getvalue())
        return path

    # -- the lock -----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the directory's lock (the Babysitter should not be used afterwards)."""
        release = getattr(self, "_release", None)
        if release is not None:
            release()

    def _check_open(self) -> None:
        if not self._release.alive:
            raise RuntimeError(f"this Babysitter of {self.directory!r} is closed; continue the "
                               f"run with Babysitter.resume(...)")

    def __enter__(self) -> Babysitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<nn.Babysitter {self.directory!r} at epoch {self.epoch}>"
