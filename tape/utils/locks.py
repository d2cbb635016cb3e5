"""OS locks on open files (`fcntl.flock`) that only the process that took them ever holds.

A flock belongs to the open file, so a process killed even with SIGKILL leaves no stale lock
behind. A forked child (a process-pool worker, say) would share the parent's open file and so
keep its lock after the parent died: every locked descriptor is therefore closed in a forked
child at once (`tape.utils.forks`; closing the child's copy leaves the parent's lock held).
Descriptors are opened close-on-exec by Python, so spawned processes never see them.
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

from tape.utils.forks import close_in_forked_children, forget, owned_here

__all__ = ["flock", "is_held", "release"]

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
        close_in_forked_children(fd)
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    close_in_forked_children(fd)
    return True


def is_held(fd: int) -> bool:
    """Whether this process holds `fd`'s lock (False after `release`, and in a forked child).

    Example:
        >>> is_held(-1)
        False
    """
    return owned_here(fd)


def release(fd: int) -> None:
    """Close `fd`, releasing its lock. Nothing happens for a descriptor this process does not
    hold (already released, or closed by a fork): by then its number may name another file.

    Example:
        >>> release(-1)
    """
    if owned_here(fd):
        forget(fd)
        os.close(fd)
