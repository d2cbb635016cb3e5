"""What `nn.fit` prints: a progress bar per epoch, one line per epoch, or nothing (Keras).

- `verbose=1` (the default) on a terminal: a bar per epoch with the running loss and metrics
  of the epoch so far, redrawn at most ten times a second, left on screen as the epoch's
  summary line with validation results and time. It is a tqdm bar when tqdm is installed
  (the `progress` extra), else one plain line rewritten in place.
- `verbose=1` when standard output is not a terminal (a log file, a pipe, a notebook's
  captured cell, CI), and `verbose=2` anywhere: one line per epoch, printed when it ends
  (what Keras does too; a bar's carriage returns would garble a log).
- `verbose=0`: nothing.

For an `nn.Population` the line shows one member's values, the best one's (lowest
`val_loss`, else `loss`; see `nn.training.tables.member_row`): `best of 16: #5 - loss 0.3412 - ...`,
and how many members are frozen.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress(2, epochs=3, stream=out)
    >>> p.epoch_begin(0, steps=4); p.epoch_end({"loss": 0.5, "accuracy": 0.75}, 0.012, 4)
    >>> out.getvalue()
    'epoch 1/3 - 4 steps - 0.01s - loss 0.5 - accuracy 0.75\\n'
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

import numpy as np

from nn.training.tables import format_value, member_row

_REDRAW = 0.1  # seconds between two redraws of a bar


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def summary(logs: dict[str, Any]) -> str:
    """Logs as `loss 0.3412 - accuracy 0.912`; for a population, the best member's.

    Example:
        >>> summary({"loss": 0.25, "accuracy": 0.5})
        'loss 0.25 - accuracy 0.5'
        >>> summary({"loss": np.array([0.5, 0.4]), "accuracy": np.array([0.9, 0.8])})
        'best of 2: #1 - loss 0.4 - accuracy 0.8'
    """
    k, values = member_row(logs)
    text = " - ".join(f"{n} {format_value(n, v)}" for n, v in values.items())
    members = next((np.size(v) for v in logs.values() if np.ndim(v) == 1), None)
    if members is None:
        return text
    return (f"best of {members}: #{k} - " if k is not None else
            f"all {members} members NaN - ") + text


class Progress:
    """Prints the epochs of one `fit` call as `verbose` says (see the module docstring).

    Example:
        >>> import io
        >>> Progress(1, epochs=2, stream=io.StringIO()).mode  # not a terminal: lines
        'lines'
    """

    def __init__(self, verbose: int, epochs: int, stream: IO[str] | None = None) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.epochs = epochs
        self.mode = ("off" if not verbose else
                     "bar" if verbose == 1 and _is_terminal(self.stream) else "lines")
        self._tqdm: Any = None
        if self.mode == "bar":
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            self._tqdm = tqdm
        self._bar: Any = None
        self._width = 0
        self._next = 0.0
        self.epoch: int = 0
        self.steps: int | None = None

    @property
    def live(self) -> bool:
        """Whether `update` should be called after every step (a bar is shown)."""
        return self.mode == "bar"

    def _title(self) -> str:
        return f"epoch {self.epoch + 1}/{self.epochs}"

    def epoch_begin(self, epoch: int, steps: int | None) -> None:
        """An epoch of `steps` steps (None: unknown) starts."""
        self.epoch, self.steps = epoch, steps
        self._next = 0.0
        if self.mode == "bar" and self._tqdm is not None:
            self._bar = self._tqdm(total=steps, desc=self._title(), file=self.stream,
                                   unit="step", leave=True, dynamic_ncols=True)

    def update(self, step: int, totals: dict[str, Any], seen: int) -> None:
        """`step` steps of this epoch are done; `totals / seen` are the running values.
        Redraws at most every 0.1 s, so it is cheap to call after every step."""
        now = time.perf_counter()
        if now < self._next or not seen:
            return
        self._next = now + _REDRAW
        running = summary({k: v / seen for k, v in totals.items()})
        if self._bar is not None:
            self._bar.n = step
            self._bar.set_postfix_str(running, refresh=False)
            self._bar.refresh()
            return
        if self.steps:
            done = int(20 * step / self.steps)
            arrow = "=" * done + (">" if done < 20 else "") + "." * (19 - done)
            bar = f" [{arrow}] {step}/{self.steps}"
        else:
            bar = f" {step} steps"
        self._rewrite(f"{self._title()}{bar} - {running}")

    def _rewrite(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def epoch_end(self, logs: dict[str, Any], seconds: float, steps: int,
                  note: str = "") -> None:
        """The epoch is over: its final logs (validation and callbacks' values included)."""
        if self.mode == "off":
            return
        values = summary(logs)
        tail = f" - {note}" if note else ""
        if self._bar is not None:
            self._bar.n = steps
            self._bar.set_postfix_str(f"{values}{tail}", refresh=False)
            self._bar.close()
            self._bar = None
            return
        line = f"{self._title()} - {steps} steps - {seconds:.2f}s - {values}{tail}"
        if self.mode == "bar":
            self._rewrite(line)
            self.stream.write("\n")
            self._width = 0
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Close a bar left open by an epoch that raised."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
