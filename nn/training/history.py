"""`History`: what `nn.fit` returns, one list per logged quantity, printed as a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn.training.tables import format_value, member_row
from tape.utils.tables import format_table

_STANDARD = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(repr=False)
class History:
    """Per-epoch results, as lists a user can plot: `history.val_accuracy[-1]`.

    `history.history` maps every logged name to its list, Keras' form: `loss`, each metric
    under its own name (`accuracy`, a custom `top3`...), their `val_` twins, and whatever a
    callback added to the epoch's logs (e.g. `learning_rate`). Each name is also an attribute
    (`history.top3`); `loss`, `accuracy`, `val_loss` and `val_accuracy` are `[]` when not
    logged. `epoch` holds the 0-based epoch indices (Keras' `history.epoch`); `stop_reason` says
    why training ended early (None if it ran all epochs). For an `nn.Population` each value is
    an array with one entry per member, and `frozen` maps each member that diverged to when and
    why (training went on without it). `print(history)` shows a table (`table()`).

    Example:
        >>> h = History(); h.record({"loss": 0.5, "top3": 0.9}, epoch=0); h.loss, h.top3
        ([0.5], [0.9])
        >>> print(h)
        epoch  loss  top3
        1      0.5   0.9
    """

    history: dict[str, list[Any]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)
    stop_reason: str | None = None
    frozen: dict[int, str] = field(default_factory=dict)

    def record(self, logs: dict[str, Any], epoch: int | None = None) -> None:
        """Append one epoch's logs (any names); `epoch` is its 0-based index. Every list keeps
        one entry per epoch: a name missing from some epochs' logs has None there.

        Example:
            >>> h = History(); h.record({"loss": 0.5}); h.record({"loss": 0.4, "lr": 0.1})
            >>> h.lr
            [None, 0.1]
        """
        n = len(self)
        for key, value in logs.items():
            self.history.setdefault(key, [None] * n).append(value)
        for key, values in self.history.items():
            if key not in logs:
                values.append(None)
        if epoch is not None:
            self.epoch.append(int(epoch))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("history", "epoch"):
            raise AttributeError(name)
        logged = self.__dict__.get("history", {})
        if name in logged:
            return logged[name]
        if name in _STANDARD:
            return []
        raise AttributeError(f"the history has no {name!r}; it logged {sorted(logged)}")

    def __len__(self) -> int:
        return max((len(v) for v in self.history.values()), default=0)

    def table(self) -> str:
        """Every epoch as a fixed-width table (`summary` with no row limit)."""
        return self.summary(max_rows=None)

    def summary(self, max_rows: int | None = 20) -> str:
        """The epochs as a fixed-width table, one column per logged name (`print(history)`).

        With more than `max_rows` epochs (None: no limit) the middle ones are left out and
        a `...` row marks where. For a population each row shows one member, the epoch's best
        (lowest `val_loss`, else `loss`), in a `best` column (`#5`): its values belong
        together; `history.<name>[e]` holds every member's.
        """
        n = len(self)
        names = list(self.history)
        epochs = self.epoch if len(self.epoch) == n else list(range(n))
        members = next((np.size(v[0]) for v in self.history.values()
                        if v and np.ndim(v[0]) == 1), None)
        shown: list[int | None] = list(range(n))
        if max_rows is not None and n > max_rows:
            head = max_rows // 2
            shown = [*range(head), None, *range(n - (max_rows - head), n)]
        rows = [["epoch", *(["best"] if members is not None else []), *names]]
        for i in shown:
            if i is None:
                rows.append(["...", *[""] * (len(rows[0]) - 1)])
                continue
            k, values = member_row({name: self.history[name][i] for name in names
                                    if self.history[name][i] is not None})
            best = [] if members is None else ["-" if k is None else f"#{k}"]
            rows.append([str(epochs[i] + 1), *best, *(
                format_value(name, values[name]) if name in values else "" for name in names)])
        notes = []
        if members is not None:
            notes.append(f"population of {members}: each row is the epoch's best member (by "
                         f"val_loss, else loss); history.<name>[e] holds every member's value")
        if self.frozen:
            notes.append(f"frozen (diverged): members {sorted(self.frozen)}")
        if self.stop_reason:
            notes.append(f"stopped: {self.stop_reason}")
        return "\n".join([format_table(rows), *notes])

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"<History: {len(self)} epochs of {', '.join(self.history) or 'nothing'}"
                f"{'; stopped: ' + self.stop_reason if self.stop_reason else ''}>")
