"""Indexing: `x[index]` (basic and advanced) and its adjoint, a scatter-add; `one_hot`."""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops._util import raw, shape_of
from tape.ops.shapes import reshape
from tape.primitive import Primitive
from tape.tensor import Tensor


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice))
               for i in items)


def _scatter_add_forward(g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    out = np.zeros(shape, dtype=np.result_type(g))
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)  # repeated indices accumulate
    return out


_scatter_add: Primitive = Primitive("scatter_add", _scatter_add_forward, uses_inputs=False).defvjp(
    lambda g, ans, x, index, shape: g[index],
).defjvp(
    lambda t, ans, x, index, shape: scatter_add(t, index, shape),
)


def scatter_add(g: Any, index: Any, shape: Any) -> Any:
    """Zeros of `shape` with `g` added at `index` (repeats accumulate): the adjoint of `x[index]`.

    Works on arrays (returns an array) and on tensors (recorded).

    Example:
        >>> scatter_add(np.ones(3), np.array([0, 0, 2]), (4,))
        array([2., 0., 1., 0.])
    """
    if isinstance(g, Tensor):
        return _scatter_add(g, index=index, shape=tuple(shape))
    return _scatter_add_forward(g, index, tuple(shape))


getitem: Primitive = Primitive("getitem", lambda x, index: x[index], uses_inputs=False).defvjp(
    lambda g, ans, x, index: scatter_add(g, index, shape_of(x)),
).defjvp(
    lambda t, ans, x, index: t[index],
)


def _plain_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(raw(i) for i in index)
    return raw(index)


def index(x: Any, index: Any) -> Tensor:
    """`x[index]` as a function (indices may be tensors; they are not differentiated). This is
    what `Tensor.__getitem__` runs.

    An index out of range raises `IndexError` naming the index, the axis and its size.

    Example:
        >>> index(np.arange(4.0), [3, 3]).numpy()
        array([3., 3.])
    """
    index = _plain_index(index)
    try:
        return getitem(x, index=index)
    except IndexError as e:
        raise _index_error(x, index, e, "getitem") from None


_TAKE_MODES = ("raise", "wrap", "clip")


def take(a: Any, indices: Any, axis: int | None = None, mode: str = "raise") -> Tensor:
    """Elements of `a` at `indices` along `axis`, as `np.take`: with `axis=None` (the default)
    `a` is read flattened; with an axis, `take(a, i, axis=k)` is `a[:, ..., i]` (i on axis k).
    `mode` as NumPy's: `'raise'` (out of range raises `IndexError`), `'wrap'`, `'clip'`.
    Differentiable with respect to `a` for every axis (repeated indices accumulate).

    Example:
        >>> a = np.arange(6.0).reshape(2, 3)
        >>> take(a, [4, 0]).numpy()                   # flattened
        array([4., 0.])
        >>> take(a, [2, 0], axis=1).numpy()
        array([[2., 0.],
               [5., 3.]])
    """
    if mode not in _TAKE_MODES:
        raise ValueError(f"take: mode must be one of {_TAKE_MODES}, got {mode!r}")
    shape = np.shape(raw(a))
    if axis is None:
        a, shape, axis = reshape(a, (-1,)), (int(np.prod(shape)),), 0
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"take: axis {axis} is out of range for an array of shape {shape}")
    axis %= len(shape)
    idx = np.asarray(raw(indices))
    if idx.dtype.kind not in "iu":
        raise IndexError(f"take: indices must be integers, got dtype {idx.dtype}")
    if mode == "wrap":
        idx = idx % shape[axis]
    elif mode == "clip":
        idx = np.clip(idx, 0, shape[axis] - 1)
    where = (slice(None),) * axis + (idx,)
    try:
        return getitem(a, index=where)
    except IndexError as e:
        raise _index_error(a, where, e, "take") from None


def _index_error(x: Any, index: Any, err: IndexError, who: str) -> IndexError:
    rule = ("; along an axis of size n, an index i must satisfy -n <= i < n"
            if "out of bounds" in str(err) else "")
    return IndexError(f"{who}: {err}, in x[{_show_index(index)}] with x of shape "
                      f"{np.shape(raw(x))}{rule}")


def _show_index(index: Any) -> str:
    """An index as written between brackets: `:, 7`, `..., None`, `<array of shape (100,)>`."""
    def one(i: Any) -> str:
        if isinstance(i, slice):
            text = ":".join("" if v is None else str(v) for v in (i.start, i.stop))
            return text if i.step is None else f"{text}:{i.step}"
        if i is Ellipsis:
            return "..."
        if np.size(i) > 8:
            return f"<array of shape {np.shape(i)}>"
        return str(np.asarray(i).tolist()) if isinstance(i, (np.ndarray, list)) else str(i)
    items = index if isinstance(index, tuple) else (index,)
    return ", ".join(one(i) for i in items)


def one_hot(indices: Any, depth: int, dtype: Any = np.float32) -> Tensor:
    """Rows of the identity: `one_hot([2, 0], 3)` (not differentiable; float32 by default).

    Example:
        >>> one_hot([2, 0], 3).numpy()
        array([[0., 0., 1.],
               [1., 0., 0.]], dtype=float32)
    """
    idx = np.asarray(raw(indices))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot needs integer class indices, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= depth):
        raise ValueError(f"one_hot indices must lie in [0, {depth}), got values from "
                         f"{idx.min()} to {idx.max()}")
    return Tensor(np.eye(depth, dtype=dtype)[idx])
