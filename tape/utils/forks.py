"""Descriptors that forked children must not keep: each registered one is closed in a forked
child at once (`os.register_at_fork`).

A forked process-pool worker shares its parent's open files. A lock file it keeps open keeps
the lock after the parent died; a listening socket it keeps open keeps accepting connections
nobody answers. Closing the child's copy leaves the parent's file as it was. Python opens
descriptors close-on-exec, so spawned processes never see them.

Example:
    >>> import os
    >>> r, w = os.pipe()
    >>> close_in_forked_children(r); owned_here(r)
    True
    >>> forget(r); owned_here(r); os.close(r); os.close(w)
    False
"""

from __future__ import annotations

import os

__all__ = ["close_in_forked_children", "forget", "owned_here"]

_OWNED: set[int] = set()  # descriptors closed in every forked child


def close_in_forked_children(fd: int) -> None:
    """Have every process forked from now on close its copy of `fd` at once."""
    _OWNED.add(fd)


def forget(fd: int) -> None:
    """Stop closing `fd` in forked children (call it before closing `fd`: its number may be
    reused for another file)."""
    _OWNED.discard(fd)


def owned_here(fd: int) -> bool:
    """Whether `fd` is registered in this process (never in a forked child)."""
    return fd in _OWNED


def _close_in_child() -> None:
    for fd in _OWNED:
        try:
            os.close(fd)
        except OSError:
            pass
    _OWNED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)
