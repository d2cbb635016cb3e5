"""Reports of trials: a fixed-width table, CSV, a progress line, and atomic file writes.

>>> print(trials_table([], ["lr"]))  # doctest: +NORMALIZE_WHITESPACE
trial status value lr duration_s error
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from tape.io import atomic_write

__all__ = ["trials_table", "to_csv_text", "Progress", "atomic_write", "short"]


def short(x: Any) -> str:
    """A table cell: floats to 6 significant digits, ``None`` empty.

    >>> short(1 / 3), short(None), short(7)
    ('0.333333', '', '7')
    """
    return "" if x is None else f"{x:.6g}" if isinstance(x, float) else str(x)


def _exact(x: Any) -> str:
    return "" if x is None else repr(x) if isinstance(x, float) else str(x)


def _rows(trials: Sequence[Any], names: list[str], *, with_round: bool,
          fmt: Callable[[Any], str]) -> list[list[str]]:
    head = ["trial", "status", "value", *names, "duration_s"] + ["round"] * with_round + ["error"]
    rows = [head]
    for t in trials:
        rows.append([str(t.number), t.status, fmt(t.value), *(fmt(t.params.get(n)) for n in names),
                     f"{t.duration:.3f}"] + [str(t.round)] * with_round + [t.error or ""])
    return rows


def trials_table(trials: Sequence[Any], names: list[str], max_error: int = 60) -> str:
    """Fixed-width text table of ``trials`` in the given order (``round`` column only when a
    trial came from coarse-to-fine; errors shortened to ``max_error`` characters).

    >>> from optim.search import Trial
    >>> print(trials_table([Trial(3, {"lr": 0.01}, 0.25, "ok")], ["lr"]))
    trial  status  value  lr    duration_s  error
    3      ok      0.25   0.01  0.000
    """
    rows = _rows(trials, names, with_round=any(t.box is not None for t in trials), fmt=short)
    for r in rows[1:]:
        if len(r[-1]) > max_error:
            r[-1] = r[-1][: max_error - 3] + "..."
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def to_csv_text(trials: Sequence[Any], names: list[str]) -> str:
    """CSV text of ``trials`` with full-precision values and full error texts.

    >>> to_csv_text([], ["lr"])
    'trial,status,value,lr,duration_s,round,error\\n'
    """
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        _rows(trials, names, with_round=True, fmt=_exact))
    return buf.getvalue()


class Progress:
    """Trials done and best value so far: a tqdm bar when tqdm is installed (extra
    ``progress``), else one updating line on stderr; silent when ``enabled`` is false.

    >>> p = Progress(total=2, enabled=False)
    >>> p.update(0.5); p.close()
    """

    def __init__(self, total: int, done: int = 0, *, enabled: bool = True,
                 stream: IO[str] | None = None) -> None:
        self.total, self.done, self.enabled = total, done, enabled
        self.stream = stream if stream is not None else sys.stderr
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self._bar = tqdm(total=total, initial=done, unit="trial", desc="search",
                                 file=self.stream)

    def update(self, best: float | None) -> None:
        """One more trial finished; ``best`` is the best value so far (``None`` if none)."""
        self.done += 1
        shown = "-" if best is None else f"{best:.6g}"
        if self._bar is not None:
            self._bar.set_postfix_str(f"best={shown}", refresh=False)
            self._bar.update(1)
        elif self.enabled:
            self.stream.write(f"\rsearch: {self.done}/{self.total} trials, best {shown}")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self.stream.write("\n")
            self.stream.flush()
