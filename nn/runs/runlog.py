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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn.training.loop import History
from tape import registry
from tape.utils.tables import format_table, short

__all__ = ["RunHistory"]

Event = dict[str, Any]


# -- hyperparameters as JSON (schedules by description) -----------------------------------------
Classes = Iterable[type] | Mapping[str, type] | None  # a `custom_objects=` argument

_NUMERIC_KINDS = "biufc"  # the dtypes a stored array may have: no objects, no strings


class UnknownClassError(ValueError):
    """A file names a schedule class that is not on the allow-list (`tape.registry`).

    Example:
        >>> issubclass(UnknownClassError, ValueError)
        True
    """


def encode(value: Any) -> Any:
    """A JSON form of a hyperparameter: numbers, None, arrays, and schedules described by their
    class and fields (dataclasses, as in `optim.schedules`) or `get_config()`.

    Example:
        >>> encode(np.array([0.1, 0.2]))
        {'__array__': [0.1, 0.2], 'dtype': '<f8'}
        >>> encode(lambda step: 0.1)
        Traceback (most recent call last):
        ValueError: cannot checkpoint the schedule <function <lambda> at ...>: ...
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
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
        return {"__schedule__": registry.qualified_name(cls), "config": encode(config)}
    raise ValueError(f"cannot checkpoint the hyperparameter value {value!r} "
                     f"({type(value).__name__})")


def decode(value: Any, custom_objects: Mapping[str, type] | None = None) -> Any:
    """The inverse of `encode`. A schedule is rebuilt only from a class on the allow-list
    (`tape.registry`, or `custom_objects`, from `tape.registry.by_name`); any other name is an
    `UnknownClassError`, and nothing is imported. Arrays must have a numeric dtype.

    Example:
        >>> decode({"__array__": [1, 2], "dtype": "<i8"})
        array([1, 2])
        >>> decode({"__schedule__": "os:system", "config": {"command": "ls"}})
        Traceback (most recent call last):
        nn.runs.runlog.UnknownClassError: the schedule 'os:system' is not an allowed ...
    """
    if isinstance(value, list):
        return [decode(v, custom_objects) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        dtype = np.dtype(str(value["dtype"]))
        if dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"a stored hyperparameter array has dtype {dtype}; only numeric "
                             f"dtypes are read back")
        return np.asarray(value["__array__"], dtype=dtype)
    if "__schedule__" in value:
        name = str(value["__schedule__"])
        cls = registry.lookup(name, custom_objects)
        if cls is None:
            short = name.rpartition(":")[2] or name
            raise UnknownClassError(
                f"the schedule {name!r} is not an allowed schedule class, so it was not "
                f"rebuilt (names in files are looked up in an allow-list, never imported). If "
                f"it is your own schedule, import the module that defines it and register it "
                f"first: optim.schedules.register({short}), or pass "
                f"custom_objects=[{short}] (or {{{name!r}: {short}}}) to the Babysitter")
        config = decode(value.get("config"), custom_objects)
        if not isinstance(config, dict):
            raise ValueError(f"the schedule {name!r} has no settings dict, got {config!r}")
        try:
            return cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
        except (TypeError, ValueError) as e:
            raise ValueError(f"cannot rebuild the schedule {name!r} from {config!r}: {e}"
                             ) from None
    return {k: decode(v, custom_objects) for k, v in value.items()}


def check_hyperparameters(values: Mapping[str, Any],
                          custom_objects: Mapping[str, type] | None = None) -> dict[str, Any]:
    """Encode `values`, and check that schedules come back from their description.

    Example:
        >>> check_hyperparameters({"learning_rate": 0.1, "clipnorm": None})
        {'learning_rate': 0.1, 'clipnorm': None}
    """
    encoded = encode(dict(values))
    decode(encoded, custom_objects)
    return encoded


def _change_text(value: Any) -> str:
    if isinstance(value, dict) and "__schedule__" in value:
        return value["__schedule__"].rpartition(":")[2].rpartition(".")[2] + "(...)"
    if isinstance(value, dict) and "__array__" in value:
        return f"[{len(value['__array__'])} values]"
    return short(value, 3)


def change_summary(event: Event) -> str:
    """A `set` event's changes, short.

    Example:
        >>> change_summary({"changes": {"learning_rate": 0.003, "beta_1": 0.95}})
        'learning_rate=0.003, beta_1=0.95'
    """
    return ", ".join(f"{k}={_change_text(v)}" for k, v in event["changes"].items())


# -- the event log ------------------------------------------------------------------------------
_EVENT_FIELDS: dict[str, dict[str, type]] = {
    "epoch": {"logs": dict}, "set": {"changes": dict}, "rollback": {"from": int}, "resume": {}}


def check_events(events: Any) -> list[Event]:
    """`events` if it is a well-formed event log (read from a file), else a `ValueError`
    naming the first bad event.

    Example:
        >>> check_events([{"event": "epoch", "epoch": "1", "logs": {}}])
        Traceback (most recent call last):
        ValueError: event 0 is malformed: {'event': 'epoch', 'epoch': '1', 'logs': {}}
    """
    if not isinstance(events, list):
        raise ValueError(f"the event log is a {type(events).__name__}, not a list")
    for i, ev in enumerate(events):
        kind = ev.get("event") if isinstance(ev, dict) else None
        fields = _EVENT_FIELDS.get(kind) if isinstance(kind, str) else None
        if (fields is None or type(ev.get("epoch")) is not int or ev["epoch"] < 0
                or not all(isinstance(ev.get(k), t) for k, t in fields.items())):
            raise ValueError(f"event {i} is malformed: {str(ev)[:200]}")
    return events


@dataclass
class Timeline:
    """The event log replayed (`replay`): the live branch, the abandoned ones, and which
    changes hold."""

    live: list[Event] = field(default_factory=list)
    branches: list[list[Event]] = field(default_factory=list)
    live_sets: list[Event] = field(default_factory=list)
    dead_sets: list[Event] = field(default_factory=list)
    rollbacks: list[Event] = field(default_factory=list)
    anchor: int = -1  # index of the last event that fixed the state (an epoch or a rollback)

    @property
    def head(self) -> int:
        """The live branch's last epoch (0 before any)."""
        return self.live[-1]["epoch"] if self.live else 0


def replay(events: list[Event]) -> Timeline:
    """Replay an event log into its live branch, abandoned branches and changes.

    Example:
        >>> tl = replay([{"event": "epoch", "epoch": 1, "logs": {}},
        ...              {"event": "epoch", "epoch": 2, "logs": {}},
        ...              {"event": "rollback", "epoch": 1, "from": 2}])
        >>> tl.head, [[ev["epoch"] for ev in b] for b in tl.branches]
        (1, [[1, 2]])
    """
    tl = Timeline()
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


METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


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
            for ev in replay(self.events).live:
                self.epochs.append(ev["epoch"])
                self.record({k: v for k, v in ev["logs"].items() if k in METRICS})

    def table(self) -> str:
        """The event log as a fixed-width table, abandoned epochs marked."""
        live = {id(ev) for ev in replay(self.events).live}
        keys = [k for k in METRICS if any(k in ev.get("logs", {}) for ev in self.events)]
        rows = [["epoch", *keys, "note"]]
        for ev in self.events:
            kind, note = ev["event"], ""
            cells = [""] * len(keys)
            if kind == "epoch":
                cells = [f"{ev['logs'][k]:.4g}" if k in ev["logs"] else "" for k in keys]
                note = "" if id(ev) in live else "(abandoned)"
            elif kind == "set":
                note = "set " + change_summary(ev)
            elif kind == "rollback":
                note = f"rollback from epoch {ev['from']}" + (f": {ev['reason']}"
                                                             if ev.get("reason") else "")
            else:
                note = kind
            rows.append([str(ev["epoch"]), *cells, note])
        return format_table(rows)

    def __str__(self) -> str:
        return self.table()


