"""Fixed-width text tables, and numbers written short for them.

Example:
    >>> print(format_table([["epoch", "loss"], ["1", short(0.5)], ["2", short(0.25)]]))
    epoch  loss
    1      0.5
    2      0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_table", "short"]


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells as left-aligned columns two spaces apart (the first row is the header;
    a shorter row leaves its last columns blank); trailing blanks are stripped.

    Example:
        >>> print(format_table([["a", "bb"], ["ccc", "d"]]))
        a    bb
        ccc  d
    """
    if not rows:
        return ""
    widths = [max(len(r[k]) if k < len(r) else 0 for r in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def short(value: Any, digits: int = 6) -> str:
    """A table cell: a float with `digits` significant digits, None as blank, anything else
    as `str`.

    Example:
        >>> short(0.123456789), short(0.123456789, 3), short(None), short(7)
        ('0.123457', '0.123', '', '7')
    """
    if value is None:
        return ""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)
