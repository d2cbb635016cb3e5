"""The Babysitter's event log: hyperparameters as JSON, the log replayed into branches, and
`RunHistory`, the history a user reads.

A log is a list of JSON-ready events in the order they happened: `epoch` (a completed epoch and
its metrics), `set` (hyperparameters changed after that many epochs), `rollback` (back to an
epoch's checkpoint) and `resume`. Replaying it gives the live branch, the abandoned ones and
which changes still hold; nothing else is stored, so the log is the single source of truth.

Example:
    >>> events = [{"event": "epoch", "epoch": 1, "logs": {"loss": 0.9}},
    ...           {"event": "epoch", "epoch": 2, "logs": {"loss": 0.7}},
    ...           {"event": "rollback", "epoch": 1, "from": 2}]
    >>> RunHistory(events=events).loss
    [0.9]
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn.training import History

__all__ = ["RunHistory"]

Event = dict[str, Any]


# -- hyperparameters as JSON (schedules by description) -----------------------------------------
def _encode(value: Any) -> Any:
    """A JSON form of a hyperparameter: numbers, None, arrays, and schedules described by their
    class and fields (dataclasses, as in `optim.schedules`) or `get_config()`."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if callable(value):
        cls = type(value)
        if dataclasses.is_dataclass(value):
            config = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
        elif callable(getattr(value, "get_config", None)):
            config = value.get_config()
        else:
            config = None
        if config is None or "<locals>" in cls.__qualname__:
            raise ValueError(
                f"cannot checkpoint the schedule {value!r}: a checkpoint stores a schedule by "
                f"its class and settings, so it must be an instance of a module-level class "
                f"that is a dataclass (like those of optim.schedules) or has get_config(); "
                f"a plain function or lambda cannot be saved")
        return {"__schedule__": f"{cls.__module__}:{cls.__qualname__}", "config": _encode(config)}
    raise ValueError(f"cannot checkpoint the hyperparameter value {value!r} "
                     f"({type(value).__name__})")


def _decode(value: Any) -> Any:
    """The inverse of `_encode` (a schedule is rebuilt from its class and settings)."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return np.asarray(value["__array__"], dtype=np.dtype(value["dtype"]))
    if "__schedule__" in value:
        module, _, qualname = value["__schedule__"].partition(":")
        try:
            cls: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"cannot rebuild the schedule {value['__schedule__']}: {e}") from None
        if not (isinstance(cls, type) and (dataclasses.is_dataclass(cls)
                                           or hasattr(cls, "get_config"))):
            raise ValueError(f"{value['__schedule__']} is not a schedule class (a dataclass or "
                             f"a class with get_config); refusing to call it")
        config = _decode(value["config"])
        return cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    return {k: _decode(v) for k, v in value.items()}


def _checked(values: Mapping[str, Any]) -> dict[str, Any]:
    """Encode `values`, and check that schedules come back from their description."""
    encoded = _encode(dict(values))
    _decode(encoded)
    return encoded


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict) and "__schedule__" in value:
        return value["__schedule__"].rpartition(":")[2].rpartition(".")[2] + "(...)"
    if isinstance(value, dict) and "__array__" in value:
        return f"[{len(value['__array__'])} values]"
    return str(value)


def _changes(event: Event) -> str:
    """A `set` event's changes, short: `learning_rate=0.003, beta_1=0.95`."""
    return ", ".join(f"{k}={_short(v)}" for k, v in event["changes"].items())


# -- the event log ------------------------------------------------------------------------------
@dataclass
class _Timeline:
    """The event log replayed: the live branch, the abandoned ones, and which changes hold."""

    live: list[Event] = field(default_factory=list)
    branches: list[list[Event]] = field(default_factory=list)
    live_sets: list[Event] = field(default_factory=list)
    dead_sets: list[Event] = field(default_factory=list)
    rollbacks: list[Event] = field(default_factory=list)
    anchor: int = -1  # index of the last event that fixed the state (an epoch or a rollback)

    @property
    def head(self) -> int:
        return self.live[-1]["epoch"] if self.live else 0


def _replay(events: list[Event]) -> _Timeline:
    tl = _Timeline()
    for i, ev in enumerate(events):
        kind = ev["event"]
        if kind == "epoch":
            tl.live.append(ev)
            tl.anchor = i
        elif kind == "set":
            tl.live_sets.append(ev)
        elif kind == "rollback":
            e = ev["epoch"]
            kept = [x for x in tl.live if x["epoch"] <= e]
            cut = tl.live[len(kept):]
            if cut:
                tl.branches.append(kept[-1:] + cut)  # starts where it left the live branch
            tl.live = kept
            # a checkpoint holds the hyperparameters of its epoch: later changes are undone
            tl.dead_sets += [s for s in tl.live_sets if s["epoch"] >= e]
            tl.live_sets = [s for s in tl.live_sets if s["epoch"] < e]
            tl.rollbacks.append(ev)
            tl.anchor = i
    return tl


_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass
class RunHistory(History):
    """A `History` of the live branch (`run.history.val_loss[-1]`), with `epochs` (the epoch
    numbers, from 1) and `events`, the whole log: `{"event": "epoch", "epoch", "logs",
    "time"}`, `{"event": "set", "epoch", "changes", "before"}` (took effect after that many
    epochs), `{"event": "rollback", "epoch", "from"}` and `{"event": "resume", "epoch"}`,
    abandoned branches included. `print(history)` shows them as a table.

    Example:
        >>> h = RunHistory(events=[{"event": "epoch", "epoch": 1, "logs": {"loss": 0.5}},
        ...                        {"event": "set", "epoch": 1,
        ...                         "changes": {"learning_rate": 0.1}, "before": {}}])
        >>> print(h)
        epoch  loss  note
        1      0.5
        1            set learning_rate=0.1
    """

    epochs: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.events and not self.epochs:
            for ev in _replay(self.events).live:
                self.epochs.append(ev["epoch"])
                self.record({k: v for k, v in ev["logs"].items() if k in _METRICS})

    def table(self) -> str:
        """The event log as a fixed-width table, abandoned epochs marked."""
        live = {id(ev) for ev in _replay(self.events).live}
        keys = [k for k in _METRICS if any(k in ev.get("logs", {}) for ev in self.events)]
        rows = [["epoch", *keys, "note"]]
        for ev in self.events:
            kind, note = ev["event"], ""
            cells = [""] * len(keys)
            if kind == "epoch":
                cells = [f"{ev['logs'][k]:.4g}" if k in ev["logs"] else "" for k in keys]
                note = "" if id(ev) in live else "(abandoned)"
            elif kind == "set":
                note = "set " + _changes(ev)
            elif kind == "rollback":
                note = f"rollback from epoch {ev['from']}" + (f": {ev['reason']}"
                                                             if ev.get("reason") else "")
            else:
                note = kind
            rows.append([str(ev["epoch"]), *cells, note])
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)

    def __str__(self) -> str:
        return self.table()


