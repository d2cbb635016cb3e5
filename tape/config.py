"""Process-wide settings that trade memory for speed; each is an explicit opt-in."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30  # the largest mmap threshold glibc accepts on 64-bit is 32 MiB


def keep_freed_memory(mmap_threshold: int = 32 * 2**20, trim_threshold: int = _KEEP_BYTES
                      ) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS.

    Eager training allocates and frees the same large arrays every step; by default glibc
    serves arrays above a dynamic threshold with fresh `mmap`s, so each step pays page faults
    to zero new pages. This raises the mmap threshold (arrays up to `mmap_threshold` bytes come
    from the heap) and the trim threshold (freed heap is kept), through `mallopt`. It affects
    the whole process, for good: call it once at start-up if the memory it keeps is fine for
    you. Returns True if the setting took effect, False where there is no glibc (a no-op).
    `tape.function` replays need it less: they allocate the same sizes in the same order.

    Example:
        >>> import tape
        >>> tape.config.keep_freed_memory() in (True, False)
        True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
