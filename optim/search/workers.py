"""The local process pool of ``n_jobs > 1``: workers that never outlive the search.

A ``ProcessPoolExecutor`` worker waits for work on a pipe whose write end it inherited itself,
so when its parent dies without shutting the pool down (SIGKILL, SIGTERM, a crash) it waits
forever, orphaned. Each worker of ``process_pool`` is instead tied to the process that made
the pool: on Linux the kernel sends it SIGKILL when its parent exits (``PR_SET_PDEATHSIG``),
and on every POSIX system a daemon thread checks twice a second that the search's process is
still alive and ends the worker when it is not. Elsewhere (Windows) the tie is a no-op and the
pool behaves as a plain ``ProcessPoolExecutor``. Workers never hold a study file's lock (see
``optim.search.storage``). Linux ties a worker to the thread that started it, which is the
thread that submits the search's first task and lives until the search ends.

>>> with process_pool(2) as pool:
...     pool.submit(abs, -3).result()
3
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["process_pool", "die_with"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_POLL_SECONDS = 0.5


def process_pool(n_jobs: int) -> ProcessPoolExecutor:
    """A process pool of ``n_jobs`` workers (``-1``: one per CPU) that exit when this process
    does.

    >>> process_pool(2).shutdown()
    """
    return ProcessPoolExecutor(n_jobs if n_jobs > 0 else None, initializer=die_with,
                               initargs=(os.getpid(),))


def die_with(driver: int) -> None:
    """Worker initializer: end this process as soon as process ``driver`` has ended.

    >>> die_with(os.getpid())  # a no-op while the driver lives
    """
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    if sys.platform.startswith("linux"):
        _parent_death_signal()
    if not _alive(driver):  # it died before the tie was made
        os._exit(1)
    threading.Thread(target=_watch, args=(driver,), name="die-with-parent", daemon=True).start()


def _parent_death_signal() -> None:
    """Ask Linux for SIGKILL when the parent exits (for a forkserver worker the parent is the
    fork server, which exits when the driver does)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the watching thread still ties the worker
        pass


def _watch(driver: int) -> None:
    while _alive(driver):
        time.sleep(_POLL_SECONDS)
    os._exit(1)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    if os.getppid() == pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # without /proc, trust os.kill
    except (OSError, IndexError):
        return True
