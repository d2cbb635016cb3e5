"""Atomic `.npz` files of named arrays: write to a temporary name in the same folder, rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping

import numpy as np


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
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of an `.npz` file, refusing pickled objects (`allow_pickle=False`).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> save_arrays(path, {"x": np.zeros(2)})
        >>> sorted(load_arrays(path))
        ['x']
    """
    with np.load(os.fspath(path), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
