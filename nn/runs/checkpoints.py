"""The Babysitter's checkpoint format, and whether a checkpoint fits a model and optimizer.

`epoch-NNNN.npz` (N counts completed epochs, from 1) holds the model's variables
(`model/<path>`, trainable and not), the optimizer's `state_dict` (`optimizer/...`) and a JSON
`meta` entry: the format, the epoch, the run's settings, the optimizer's hyperparameters, the
event log up to that epoch and the list of the other entries. Files are written with
`tape.utils.npz.save_arrays` (temporary file, fsync, rename) and read as data only
(`allow_pickle=False`, never through a symbolic link).

Example:
    >>> import os, tempfile, nn, optim
    >>> model, opt = nn.Dense(2, seed=0), optim.SGD(0.1)
    >>> _ = model(np.ones((1, 3)))
    >>> config = {"batch_size": 8, "seed": 0, "keep": "all", "monitor": "loss", "shuffle": True,
    ...           "drop_last": False, "optimizer": "SGD", "train": None, "validation": None}
    >>> events = [{"event": "epoch", "epoch": 1, "logs": {"loss": 0.5}}]
    >>> path = os.path.join(tempfile.mkdtemp(), checkpoint_name(1))
    >>> write_checkpoint(path, model, opt, config=config, hyperparameters={}, events=events)
    >>> ck = read_checkpoint(path)
    >>> ck.meta["epoch"], sorted(ck.model)
    (1, ['bias', 'kernel'])
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from nn.runs.runlog import METRICS, Event, UnknownClassError, check_events, decode
from tape.utils.npz import load_arrays, save_arrays

__all__ = ["FORMAT", "Checkpoint", "checkpoint_epochs", "checkpoint_name", "load_into",
           "read_checkpoint", "write_checkpoint"]

FORMAT = 1
CHECKPOINT = re.compile(r"^epoch-(\d{4,})\.npz$")


def checkpoint_name(epoch: int) -> str:
    """The file name of epoch `epoch`'s checkpoint.

    Example:
        >>> checkpoint_name(7)
        'epoch-0007.npz'
    """
    return f"epoch-{epoch:04d}.npz"


def checkpoint_epochs(directory: str) -> list[int]:
    """The epochs that have a checkpoint file in `directory`, ascending.

    Example:
        >>> import tempfile
        >>> checkpoint_epochs(tempfile.mkdtemp())
        []
    """
    found = (CHECKPOINT.match(name) for name in os.listdir(directory))
    return sorted(int(m[1]) for m in found if m)


@dataclass
class Checkpoint:
    """One checkpoint read back: its path, the model's and the optimizer's arrays, its meta.

    Example:
        >>> Checkpoint("epoch-0001.npz", {}, {}, {"epoch": 1}).meta["epoch"]
        1
    """

    path: str
    model: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    meta: dict[str, Any]


def write_checkpoint(path: str, model: Any, optimizer: Any, *, config: dict[str, Any],
                     hyperparameters: dict[str, Any], events: list[Event]) -> None:
    """Write the checkpoint of the epoch that `events` ends with to `path`, atomically.

    `hyperparameters` are already encoded (`nn.runs.runlog.encode`). See the module docstring
    for an example.
    """
    epoch = events[-1]["epoch"]
    meta = {"format": FORMAT, "epoch": epoch, "config": config,
            "hyperparameters": hyperparameters, "events": events}
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    meta["entries"] = sorted(arrays)  # a damaged zip directory can hide an entry
    arrays["meta"] = np.asarray(json.dumps(meta))
    save_arrays(path, arrays)


def check_config(config: Any) -> dict[str, Any]:
    """A stored run config, checked field by field (it comes from a file); `ValueError` if
    malformed.

    Example:
        >>> check_config({"batch_size": 8.0})
        Traceback (most recent call last):
        ValueError: its run settings are malformed: {'batch_size': 8.0}
    """
    ok = (isinstance(config, dict)
          and all(type(config.get(k)) is int for k in ("batch_size", "seed"))
          and (config.get("keep") == "all" or (type(config.get("keep")) is int
                                               and config["keep"] >= 1))
          and config.get("monitor") in METRICS
          and all(type(config.get(k)) is bool for k in ("shuffle", "drop_last"))
          and isinstance(config.get("optimizer"), str)
          and all(config.get(k) is None or isinstance(config[k], str)
                  for k in ("train", "validation")))
    if not ok:
        raise ValueError(f"its run settings are malformed: {str(config)[:200]}")
    return config


def read_checkpoint(path: str) -> Checkpoint:
    """Read and check one checkpoint file; `ValueError` naming it if it is unreadable or
    malformed, a symbolic link, or not a regular file.

    Example:
        >>> import os, tempfile
        >>> read_checkpoint(os.path.join(tempfile.mkdtemp(), "epoch-0001.npz"))
        Traceback (most recent call last):
        ValueError: checkpoint '...epoch-0001.npz' is unreadable or corrupt (FileNotFoundError: ...)
    """
    try:
        arrays = load_arrays(path, follow_symlinks=False)
        meta = json.loads(str(arrays.pop("meta")))
        match = CHECKPOINT.match(os.path.basename(path))
        if (not isinstance(meta, dict) or meta.get("format") != FORMAT or not match
                or meta.get("epoch") != int(match[1])):
            raise ValueError(f"unknown format or epoch {str(meta)[:100]}")
        check_config(meta.get("config"))
        if not isinstance(meta.get("hyperparameters"), dict):
            raise ValueError("it holds no hyperparameters")
        last = check_events(meta.get("events"))[-1:]
        if [(ev["event"], ev["epoch"]) for ev in last] != [("epoch", meta["epoch"])]:
            raise ValueError("its log does not end with its epoch")
        if "entries" in meta and sorted(arrays) != meta["entries"]:  # (older files lack it)
            listed = set(meta["entries"]) if isinstance(meta["entries"], list) else set()
            raise ValueError(f"its archive lacks the entries {sorted(listed - set(arrays))} "
                             f"and has {sorted(set(arrays) - listed)} that its meta does not "
                             f"list")
    except Exception as e:  # a truncated zip, a bad CRC, bad JSON, a missing entry...
        raise ValueError(f"checkpoint {path!r} is unreadable or corrupt "
                         f"({type(e).__name__}: {e})") from None
    split: dict[str, dict[str, np.ndarray]] = {"model/": {}, "optimizer/": {}}
    for key, value in arrays.items():
        prefix = key[: key.index("/") + 1] if "/" in key else ""
        if prefix in split:
            split[prefix][key[len(prefix):]] = value
    return Checkpoint(path, split["model/"], split["optimizer/"], meta)


def nonfinite(ck: Checkpoint) -> list[str]:
    """The checkpoint's arrays holding NaN or inf, described (a diverged model is no restart
    point).

    Example:
        >>> nonfinite(Checkpoint("p", {"w": np.array([1.0, np.nan])}, {}, {}))
        ["'model/w' holds 1 non-finite value (NaN or inf)"]
    """
    found = []
    for prefix, arrays in (("model/", ck.model), ("optimizer/", ck.optimizer)):
        for key, a in arrays.items():
            if a.dtype.kind in "fc" and (n := a.size - int(np.isfinite(a).sum())):
                found.append(f"{prefix + key!r} holds {n} non-finite value{'s' * (n > 1)} "
                             f"(NaN or inf)")
    return found


def load_into(ck: Checkpoint, model: Any, optimizer: Any,
              custom_objects: dict[str, type] | None = None) -> None:
    """Load the checkpoint into the model and the optimizer, all or nothing: a `ValueError`
    naming the file and the reason if it does not fit (then nothing changed); an
    `UnknownClassError` if it names a schedule class that is not allowed.

    Example:
        >>> import nn, optim
        >>> model = nn.Dense(2, seed=0); _ = model(np.ones((1, 3)))
        >>> ck = Checkpoint("epoch-0001.npz", {"w": np.zeros(2)}, {}, {"hyperparameters": {}})
        >>> load_into(ck, model, optim.SGD(0.1))
        Traceback (most recent call last):
        ValueError: checkpoint 'epoch-0001.npz' does not fit this model and optimizer: ...
    """
    try:
        hyperparameters = decode(ck.meta["hyperparameters"], custom_objects)
    except UnknownClassError as e:
        raise UnknownClassError(f"checkpoint {ck.path!r}: {e}") from None
    except (ValueError, TypeError) as e:
        raise ValueError(f"checkpoint {ck.path!r} holds unusable hyperparameters: {e}"
                         ) from None
    if bad := nonfinite(ck):
        raise ValueError(f"checkpoint {ck.path!r} does not fit this model and optimizer: "
                         + "; ".join(bad))
    model_before, before = model.state_dict(), optimizer.hyperparameters
    try:
        optimizer.set_hyperparameters(**hyperparameters)
        model.load_state_dict(ck.model)
        optimizer.load_state_dict(ck.optimizer, model.trainable_variables)
    except (ValueError, TypeError) as e:
        model.load_state_dict(model_before)  # each load is all or nothing
        optimizer.set_hyperparameters(**before)
        raise ValueError(f"checkpoint {ck.path!r} does not fit this model and optimizer: "
                         f"{e}") from None
