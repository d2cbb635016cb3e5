"""A study on disk: one JSON line per finished trial after a header line.

The file is append-only and only the driver process writes it: each trial is one
``write`` of a complete line followed by ``os.fsync``. A crash can therefore leave at most a
truncated last line, which is ignored with a warning and cut off before appending again.
While a search runs it holds an OS lock (``fcntl.flock``) on the file, so a second search on
the same file fails at once, and a process killed with SIGKILL leaves no stale lock behind.

>>> import os, tempfile
>>> from optim.search import Uniform, random_search
>>> path = os.path.join(tempfile.mkdtemp(), "study.jsonl")
>>> _ = random_search(lambda p: p["x"], {"x": Uniform(0, 1)}, 3, seed=0, storage=path,
...                   progress=False)
>>> len(load_study(path))
3
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict
from typing import Any

from .spaces import space_from_dict
from .study import Study, Trial

__all__ = ["TrialStore", "load_study"]

_FORMAT = 1
_HEADER_START = b'{"kind": "header"'


def _dumps(record: dict[str, Any]) -> str:
    # default=repr keeps non-JSON values (odd Choice options) comparable and readable
    return json.dumps(record, default=repr)


def _parse(data: bytes, path: str) -> tuple[dict[str, Any] | None, list[Trial], int]:
    """(header, trials, length of the complete part) of a study file's bytes."""
    *lines, tail = data.split(b"\n")
    if tail and not (lines or _HEADER_START.startswith(tail[: len(_HEADER_START)])):
        raise ValueError(f"{path!r} is not a study file (it does not start with a header line); "
                         "pass a new path or an existing study's .jsonl file")
    if not lines:
        return None, [], 0
    records = []
    for k, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError as e:
            raise ValueError(f"{path!r} line {k} is corrupt ({e}); only a truncated last line "
                             "is repaired automatically") from None
    header, rows = records[0], records[1:]
    if header.get("kind") != "header":
        raise ValueError(f"{path!r} is not a study file (line 1 is not a header)")
    trials = [Trial(**{k: v for k, v in r.items() if k != "kind"}) for r in rows]
    for t in trials:
        t.intermediate = [tuple(p) for p in t.intermediate]  # type: ignore[misc]
    return header, trials, len(data) - len(tail)


def _lock(fd: int, path: str) -> None:
    try:
        import fcntl
    except ImportError:  # no flock on this platform (Windows): the file is not guarded
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RuntimeError(f"storage {path!r} is in use by another running search (it holds an "
                           "OS lock on the file); wait for it to finish or use another path"
                           ) from None


class TrialStore:
    """The open, locked study file of a running search; ``trials`` holds those already stored.

    Raises ``ValueError`` (leaving the file untouched) when the file's header differs from
    ``header``, and ``RuntimeError`` when another search holds the file.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "s.jsonl")
    >>> with TrialStore(path, {"search": "demo", "seed": 0}) as store:
    ...     store.append(Trial(0, {"x": 1.0}, 2.0, "ok"))
    >>> TrialStore(path, {"search": "demo", "seed": 0}).trials[0].value
    2.0
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any]) -> None:
        self.path = os.fspath(path)
        header = json.loads(_dumps({"kind": "header", "format": _FORMAT, **header}))
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(self._fd, self.path)
            with open(self._fd, "rb", closefd=False) as f:
                data = f.read()
            stored, self.trials, good = _parse(data, self.path)
            if stored is not None:
                self._check(stored, header)
            if good < len(data):
                warnings.warn(f"{self.path!r}: ignoring a truncated last line (a crash while "
                              f"writing?); {len(self.trials)} complete trials kept",
                              RuntimeWarning, stacklevel=3)
                os.ftruncate(self._fd, good)
            os.lseek(self._fd, 0, os.SEEK_END)
            if stored is None:
                self._write(header)
        except BaseException:
            os.close(self._fd)
            raise

    def _check(self, stored: dict[str, Any], header: dict[str, Any]) -> None:
        for key in dict.fromkeys([*stored, *header]):
            if stored.get(key) != header.get(key):
                raise ValueError(
                    f"storage {self.path!r} was written by a different search: {key} is "
                    f"{stored.get(key)!r} in the file but {header.get(key)!r} in this call. "
                    "Resume with the original arguments or use a new storage path; the file "
                    "was not changed.")

    def _write(self, record: dict[str, Any]) -> None:
        data = (_dumps(record) + "\n").encode()
        while data:
            data = data[os.write(self._fd, data):]
        os.fsync(self._fd)

    def append(self, trial: Trial) -> None:
        """Append one finished trial and fsync."""
        self._write({"kind": "trial", **asdict(trial)})

    def close(self) -> None:
        """Close the file, releasing the lock."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_study(path: str | os.PathLike) -> Study:
    """Read a stored study (for reports and plots) without running or locking anything.

    >>> load_study("study.jsonl").table(top=5)  # doctest: +SKIP
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        header, trials, _ = _parse(f.read(), path)
    if header is None:
        raise ValueError(f"{path!r} holds no study yet (no header line)")
    return Study(space_from_dict(header["space"]), direction=header["direction"],
                 seed=header["seed"], trials=trials)
