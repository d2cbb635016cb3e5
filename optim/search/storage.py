"""A study on disk, held by the search that runs it (the file format: ``optim.search.journal``).

The file is append-only and only the driver process writes it: each trial is one ``write`` of
a complete line followed by ``os.fsync``. A crash can therefore leave at most a truncated last
line, which is ignored with a warning and cut off before appending again.

Locking: while a search runs it holds an OS lock (``fcntl.flock``) on the file, so a second
search on the same file fails at once, and a process killed even with SIGKILL leaves no stale
lock behind. No other process ever holds that lock: the descriptor is close-on-exec (spawned
workers, ``subprocess`` children never see it) and a forked child closes it at once
(``tape.utils.locks``), since a flock belongs to the open file and a forked copy that lived on
would keep it after the search died. So a killed search can be resumed at once.

Read-only studies: a file that cannot be opened for writing (read-only file, directory or file
system) is opened for reading under a shared lock. That serves a call with nothing to write
(all its trials are stored); a call with trials left to run gets a ``PermissionError`` before
its first trial. Nothing besides the study file is ever created.

Paths: the storage must be a regular file. A symbolic link is refused (it could send the writes
elsewhere), as are devices and FIFOs.

>>> import os, tempfile
>>> from optim.search import Uniform, random_search
>>> path = os.path.join(tempfile.mkdtemp(), "study.jsonl")
>>> _ = random_search(lambda p: p["x"], {"x": Uniform(0, 1)}, 3, seed=0, storage=path,
...                   progress=False)
>>> len(load_study(path))
3
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import warnings
from typing import Any

from tape.utils import locks

from .journal import Journal, Report, header_line, parse, report_line, trial_line
from .study import Study, Trial

__all__ = ["TrialStore", "load_study"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO would block open() until a writer came
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def _symlink_error(path: str) -> ValueError:
    return ValueError(f"storage {path!r} is a symbolic link (to {os.readlink(path)!r}); a study "
                      f"is only read from and written to a regular file: pass that file's own "
                      f"path ({os.path.realpath(path)!r}) or a new path")


def _open(path: str, write: bool) -> tuple[int, OSError | None]:
    """A descriptor of the regular file ``path`` (created if ``write``), and why it could only
    be opened for reading (``None`` if it is open for writing, or ``write`` is false)."""
    if os.path.islink(path):
        raise _symlink_error(path)
    why: OSError | None = None
    if write:
        try:
            return _open_regular(path, os.O_RDWR | os.O_CREAT), None
        except OSError as e:
            if e.errno not in _READ_ONLY:
                raise
            why = e
    try:
        return _open_regular(path, os.O_RDONLY), why
    except FileNotFoundError:
        if why is None:
            raise
        raise PermissionError(f"cannot create storage {path!r} ({why.strerror}); pass a path in "
                              "a writable directory") from None


def _open_regular(path: str, flags: int) -> int:
    """``os.open`` that refuses a symbolic link (even one put there since the check), a
    device or a FIFO, without blocking on the FIFO."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP and os.path.islink(path):
            raise _symlink_error(path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"storage {path!r} is not a regular file; pass the path of a study "
                         "file (.jsonl) or a new path")
    if _NONBLOCK:
        os.set_blocking(fd, True)
    return fd


def _read(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    with open(fd, "rb", closefd=False) as f:
        return f.read()


def _lock(fd: int, path: str, exclusive: bool) -> None:
    if not locks.flock(fd, exclusive=exclusive):
        os.close(fd)
        raise RuntimeError(f"storage {path!r} is in use by another running search (it holds an "
                           "OS lock on the file); wait for it to finish or use another path"
                           ) from None


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _warn(message: str) -> None:
    """A RuntimeWarning attributed to the first caller outside ``optim.search``."""
    level, frame = 1, sys._getframe()
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    warnings.warn(message, RuntimeWarning, stacklevel=level)


class TrialStore:
    """The open, locked study file of a running search; ``trials`` holds those already stored
    (only those numbered below ``n_trials`` when it is given; the others stay in the file and
    are named in a warning), ``reports`` the pruner's stored decisions by ``(number, step)``.

    Raises ``ValueError`` (leaving the file untouched) when the file's header differs from
    ``header`` or the file is not a valid study, ``RuntimeError`` when another search holds
    the file, ``TypeError`` when ``header``'s space holds values a study file cannot keep, and
    ``PermissionError`` when the file is read-only and trials below ``n_trials`` are missing.

    >>> import os, tempfile
    >>> from optim.search.spaces import Uniform, space_to_dict
    >>> path = os.path.join(tempfile.mkdtemp(), "s.jsonl")
    >>> header = {"search": "demo", "space": space_to_dict({"x": Uniform(0, 1)}), "seed": 0,
    ...           "direction": "minimize"}
    >>> with TrialStore(path, header) as store:
    ...     store.append(Trial(0, {"x": 1.0}, 2.0, "ok"))
    >>> with TrialStore(path, header) as store:
    ...     store.trials[0].value
    2.0
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any],
                 n_trials: int | None = None) -> None:
        self.path = os.fspath(path)
        record = header_line(header)
        self._fd, self.read_only_because = _open(self.path, write=True)
        try:
            _lock(self._fd, self.path, exclusive=self.read_only_because is None)
            data = _read(self._fd)
            journal = parse(data, self.path)
            for note in journal.notes:
                _warn(note)
            if journal.header is not None:
                self._check(journal.header, record)
            self.trials = self._within(journal, n_trials)
            self.reports = journal.reports
            if self.read_only_because is not None and journal.header is None:
                raise self._read_only("a header to write")
            if self.read_only_because is not None and n_trials is not None and \
                    len(self.trials) < n_trials:
                raise self._read_only(f"{n_trials - len(self.trials)} of its {n_trials} "
                                      "trials to run")
            if journal.complete < len(data):
                _warn(f"{self.path!r}: ignoring a truncated last line (a crash while writing?); "
                      f"{len(journal.trials)} complete trials kept")
                if self.read_only_because is None:
                    os.ftruncate(self._fd, journal.complete)
            os.lseek(self._fd, 0, os.SEEK_END)
            if journal.header is None:
                self._write(json.dumps(record))
        except BaseException:
            self.close()
            raise

    def _check(self, stored: dict[str, Any], header: dict[str, Any]) -> None:
        for key in dict.fromkeys([*stored, *header]):
            if stored.get(key) != header.get(key):
                raise ValueError(
                    f"storage {self.path!r} was written by a different search: {key} is "
                    f"{stored.get(key)!r} in the file but {header.get(key)!r} in this call. "
                    "Resume with the original arguments or use a new storage path; the file "
                    "was not changed.")

    def _within(self, journal: Journal, n_trials: int | None) -> list[Trial]:
        if n_trials is None:
            return journal.trials
        beyond = [t for t in journal.trials if t.number >= n_trials]
        if beyond:
            shown = ", ".join(f"trial {t.number} on line {journal.line[t.number]}"
                              for t in beyond[:3]) + (", ..." if len(beyond) > 3 else "")
            _warn(f"{self.path!r} holds {len(beyond)} trial(s) numbered beyond this search's "
                  f"{n_trials} ({shown}); they stay in the file but not in this study (a "
                  f"search with n_trials > {max(t.number for t in beyond)} includes them)")
        return [t for t in journal.trials if t.number < n_trials]

    def _read_only(self, todo: str) -> PermissionError:
        why = self.read_only_because
        assert why is not None  # only called for a read-only store
        return PermissionError(
            f"storage {self.path!r} cannot be written ({why.strerror}) and this search has "
            f"{todo}; make the file and its directory writable, or copy the study to a "
            "writable place and pass that path")

    def _write(self, line: str) -> None:
        if not locks.is_held(self._fd):  # closed, or a forked child's copy
            raise RuntimeError(f"storage {self.path!r} is closed")
        if self.read_only_because is not None:
            raise self._read_only("a trial to write")
        data = (line + "\n").encode()
        while data:
            data = data[os.write(self._fd, data):]
        os.fsync(self._fd)

    def append(self, trial: Trial) -> None:
        """Append one finished trial and fsync."""
        self._write(trial_line(trial))

    def append_report(self, report: Report) -> None:
        """Append a running trial's report and the pruner's decision, and fsync."""
        self._write(report_line(report))

    def close(self) -> None:
        """Close the file, releasing the lock."""
        if locks.is_held(self._fd):
            locks.release(self._fd)
        self._fd = -1

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_study(path: str | os.PathLike) -> Study:
    """Read a stored study (for reports and plots) without running or locking anything;
    duplicated trial lines are ignored with a warning (see ``optim.search.journal``).

    >>> load_study("study.jsonl").table(top=5)  # doctest: +SKIP
    """
    path = os.fspath(path)
    fd, _ = _open(path, write=False)
    try:
        journal = parse(_read(fd), path)
    finally:
        os.close(fd)
    for note in journal.notes:
        _warn(note)
    if journal.header is None or journal.space is None:
        raise ValueError(f"{path!r} holds no study yet (no header line)")
    return Study(journal.space, direction=journal.header["direction"],
                 seed=journal.header["seed"], trials=journal.trials)
