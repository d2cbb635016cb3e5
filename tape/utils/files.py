"""Files written whole or not at all: every checkpoint, log, study and plot goes through here.

Example:
    >>> import tempfile, os
    >>> p = atomic_write(os.path.join(tempfile.mkdtemp(), "b.txt"), lambda f: f.write(b"ok"))
    >>> open(p).read()
    'ok'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], Any]) -> str:
    """Write `data` (bytes, or a function writing to a binary file) to a temporary file next
    to `path`, fsync it and rename it over `path`: readers see the old file or the new one,
    never half of one. Returns `path` as a string.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
        >>> atomic_write(p, b"hi") == p, open(p).read()
        (True, 'hi')
    """
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
