"""The run directory's OS lock: one open `Babysitter` per directory, never blocking a resume.

`.lock` is held with `fcntl.flock` (`tape.utils.locks`) while a run is open, so a second process
gets a clear error; the OS drops it when the process dies, and forked children never keep it.
Taking the lock also removes the temporary files of a write that was killed.

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> release = lock_directory(d)
    >>> lock_directory(d)
    Traceback (most recent call last):
    RuntimeError: the run directory ... is in use by another Babysitter ...
    >>> release(); lock_directory(d)()
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable

from tape.utils import locks

__all__ = ["LOCK", "lock_directory"]

LOCK = ".lock"
TEMPORARY = re.compile(r"^\.(epoch-\d{4,}\.npz|log\.json|curves\.png)\..*\.tmp$")


def lock_directory(directory: str) -> Callable[[], None]:
    """Take the directory's OS lock (released on close or when the process dies, and never
    held by forked children); returns the function that releases it. A lock held elsewhere is
    a `RuntimeError` naming the directory; the lock file must not be a symbolic link.

    Example:
        >>> import tempfile
        >>> lock_directory(tempfile.mkdtemp())()
    """
    path = os.path.join(directory, LOCK)
    try:  # never through a symbolic link: that could create or open a file elsewhere
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        raise RuntimeError(f"cannot open the lock file {path!r} ({e.strerror}); it must be a "
                           f"regular file (a symbolic link is refused): remove it") from None
    if not locks.flock(fd):
        os.close(fd)
        raise RuntimeError(f"the run directory {directory!r} is in use by another "
                           f"Babysitter (it holds an OS lock on {path!r}); close that one "
                           f"(or wait for its process to end) or use another directory")
    try:
        for name in os.listdir(directory):  # temporary files of a write that was killed
            if TEMPORARY.match(name):
                os.unlink(os.path.join(directory, name))
    except BaseException:
        locks.release(fd)
        raise
    return functools.partial(locks.release, fd)
