"""Atomic `.npz` files of named arrays: write to a temporary name in the same folder, rename.

Reading is data only: `allow_pickle=False` (a pickled object array is refused with a message
naming the file and the entry), and only regular files are opened (a FIFO or a device could
block a reader or never end); `follow_symlinks=False` also refuses a symbolic link, for files
that must lie inside a directory, such as a run's checkpoints.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np

from tape.utils.files import atomic_write


def save_arrays(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` to the `.npz` file `path` (exactly that name), atomically.

    A crash leaves either the old file or the new one, never half of one.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> save_arrays(path, {"a/b": np.arange(3)})
        >>> load_arrays(path)["a/b"]
        array([0, 1, 2])
    """
    # mypy checks the `**` values against savez's `allow_pickle: bool` keyword too
    atomic_write(path, lambda f: np.savez(
        f, **{k: np.asarray(v) for k, v in arrays.items()}))  # type: ignore[arg-type]


def open_regular(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> BinaryIO:
    """Open `path` for reading in binary mode if it is a regular file; otherwise a
    `ValueError` naming it: a FIFO, a device or a directory (opened without blocking, so a FIFO
    cannot hang the reader), or with `follow_symlinks=False` a symbolic link (never followed).

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp(); path = os.path.join(d, "a.bin")
        >>> with open(path, "wb") as f: _ = f.write(b"data")
        >>> os.symlink(path, os.path.join(d, "link.bin"))
        >>> open_regular(os.path.join(d, "link.bin"), follow_symlinks=False)
        Traceback (most recent call last):
        ValueError: '.../link.bin' is a symbolic link; refusing to follow it ...
    """
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
        if os.path.islink(path):  # also where O_NOFOLLOW is missing
            raise ValueError(f"{path!r} is a symbolic link; refusing to follow it (files of "
                             f"this kind must be regular files in their directory)")
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_symlinks:
            raise ValueError(f"{path!r} is a symbolic link; refusing to follow it (files of "
                             f"this kind must be regular files in their directory)") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ValueError(f"{path!r} is not a regular file (it is a "
                         f"{'directory' if stat.S_ISDIR(mode) else 'FIFO, socket or device'}); "
                         f"refusing to read it")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def load_arrays(path: str | os.PathLike[str], *,
                follow_symlinks: bool = True) -> dict[str, np.ndarray]:
    """Read every array of an `.npz` file, refusing pickled objects (`allow_pickle=False`): a
    `ValueError` names the file and the entry. `path` must be a regular file (`open_regular`;
    `follow_symlinks=False` refuses a symbolic link).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> save_arrays(path, {"x": np.zeros(2)})
        >>> sorted(load_arrays(path))
        ['x']
        >>> np.savez(path, x=np.array([print], dtype=object))   # a pickle inside
        >>> load_arrays(path)
        Traceback (most recent call last):
        ValueError: '.../w.npz': the entry 'x' is a pickled object array; refusing to load it ...
    """
    refused = (f"{os.fspath(path)!r}: %s; refusing to load it (pickles can run code, so files "
               f"are read with allow_pickle=False): save plain numeric or string arrays only")
    with open_regular(path, follow_symlinks=follow_symlinks) as f:
        try:
            data = np.load(f, allow_pickle=False)
        except ValueError as e:
            if "pickle" in str(e):  # a bare pickle, not an .npz
                raise ValueError(refused % "the file is a pickle, not an .npz archive") from None
            raise
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{os.fspath(path)!r} holds a single .npy array, not an .npz "
                             f"archive of named arrays")
        with data:
            if len(set(data.files)) < len(data.files):  # a corrupt directory: one would hide
                twice = sorted({n for n in data.files if data.files.count(n) > 1})
                raise ValueError(f"{os.fspath(path)!r} is corrupt: its zip directory lists "
                                 f"the entries {twice} more than once")
            arrays = {}
            for name in data.files:
                try:
                    arrays[name] = data[name]
                except ValueError as e:
                    if "allow_pickle" in str(e):
                        raise ValueError(refused % f"the entry {name!r} is a pickled object "
                                                   f"array") from None
                    raise
            return arrays
