"""OS locks on open files (`fcntl.flock`) that only the process that took them ever holds.

A flock belongs to the open file, so a process killed even with SIGKILL leaves no stale lock
behind. A forked child (a process-pool worker, say) would share the parent's open file and so
keep its lock after the parent died: every descriptor registered here is therefore closed in a
forked child at once (`os.register_at_fork`; closing the child's copy leaves the parent's lock
held). Descriptors are opened close-on-exec by Python, so spawned processes never see them.
On a platform without `fcntl` (Windows) nothing is locked.

Example:
    >>> import os, tempfile
    >>> fd = os.open(os.path.join(tempfile.mkdtemp(), "lock"), os.O_RDWR | os.O_CREAT)
    >>> flock(fd), is_held(fd)
    (True, True)
    >>> release(fd); is_held(fd)
    False
"""

from __future__ import annotations

import os

__all__ = ["flock", "is_held", "release"]

_HELD: set[int] = set()  # the descriptors whose locks this process holds


def _forget_in_child() -> None:
    """In a forked child: close its copies of the locked descriptors."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def flock(fd: int, *, exclusive: bool = True) -> bool:
    """Take an exclusive (or shared) OS lock on the open file `fd` without waiting, and have
    forked children close their copy of `fd`. False (and `fd` left as it was, not registered)
    when another open file holds a conflicting lock; True once locked (or where there is no
    `fcntl`). Release with `release(fd)`, which closes `fd`.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "lock")
        >>> a, b = (os.open(path, os.O_RDWR | os.O_CREAT) for _ in range(2))
        >>> flock(a), flock(b)
        (True, False)
        >>> release(a); os.close(b)
    """
    try:
        import fcntl
    except ImportError:  # no flock on this platform: the file is not guarded
        _HELD.add(fd)
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    _HELD.add(fd)
    return True


def is_held(fd: int) -> bool:
    """Whether this process holds `fd`'s lock (False after `release`, and in a forked child).

    Example:
        >>> is_held(-1)
        False
    """
    return fd in _HELD


def release(fd: int) -> None:
    """Close `fd`, releasing its lock. Nothing happens for a descriptor this process does not
    hold (already released, or closed by a fork): by then its number may name another file.

    Example:
        >>> release(-1)
    """
    if fd in _HELD:
        _HELD.discard(fd)
        os.close(fd)
