"""Indexing: `x[index]` (basic and advanced) and its adjoint, a scatter-add; `one_hot`."""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops._util import raw, shape_of
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


def take(x: Any, index: Any) -> Tensor:
    """`x[index]` as a function (indices may be tensors; they are not differentiated).

    An index out of range raises `IndexError` naming the index, the axis and its size.

    Example:
        >>> take(np.arange(4.0), [3, 3]).numpy()
        array([3., 3.])
    """
    index = _plain_index(index)
    try:
        return getitem(x, index=index)
    except IndexError as e:
        raise _index_error(x, index, e) from None


def _index_error(x: Any, index: Any, err: IndexError) -> IndexError:
    rule = ("; along an axis of size n, an index i must satisfy -n <= i < n"
            if "out of bounds" in str(err) else "")
    return IndexError(f"take: {err}, in x[{_show_index(index)}] with x of shape "
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
