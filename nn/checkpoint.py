"""Atomic `.npz` files of named arrays: write to a temporary name in the same folder, rename."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from tape.io import atomic_write


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
