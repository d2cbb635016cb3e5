"""Matrix products (`matmul` for 1-D, 2-D and batched operands) and norms (`norm`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops._util import keep_dims, normalize_axes, raw, shape_of
from tape.ops.shapes import reshape, unbroadcast
from tape.primitive import Primitive
from tape.tensor import Tensor


def _mT(x: Any) -> Any:
    return x.T if len(shape_of(x)) == 2 else np.swapaxes(x, -1, -2)


def _as_matrices(g: Any, a: Any, b: Any) -> tuple[Any, Any, Any]:
    # Give 1-D operands the unit axis matmul gives them, and the gradient that axis back.
    if len(shape_of(a)) == 1:
        a = np.expand_dims(a, 0)
        if len(shape_of(b)) > 1:
            g = np.expand_dims(g, -2)
    if len(shape_of(b)) == 1:
        b = np.expand_dims(b, -1)
        g = np.expand_dims(g, -1)
    if len(shape_of(g)) < 2:
        g = np.reshape(g, (1, 1))
    return g, a, b


def _grad_a(g: Any, ans: Any, a: Any, b: Any) -> Any:
    if len(shape_of(a)) == 2 and len(shape_of(b)) == 2:
        return g @ b.T
    g2, a2, b2 = _as_matrices(g, a, b)
    return np.reshape(unbroadcast(g2 @ _mT(b2), a2), shape_of(a))


def _grad_b(g: Any, ans: Any, a: Any, b: Any) -> Any:
    if len(shape_of(a)) == 2 and len(shape_of(b)) == 2:
        return a.T @ g
    g2, a2, b2 = _as_matrices(g, a, b)
    return np.reshape(unbroadcast(_mT(a2) @ g2, b2), shape_of(b))


def _matmul_forward(a: Any, b: Any) -> Any:
    try:
        return np.matmul(a, b)
    except ValueError:
        raise ValueError(_mismatch(np.shape(a), np.shape(b))) from None


def _mismatch(sa: tuple[int, ...], sb: tuple[int, ...]) -> str:
    """Why NumPy cannot multiply operands of shapes `sa` and `sb`, in words.

    Example:
        >>> _mismatch((32, 64), (32, 10))
        'cannot multiply (32, 64) by (32, 10): inner sizes 64 and 32 differ (...)'
    """
    head = f"cannot multiply {sa} by {sb}"
    for which, s in (("first", sa), ("second", sb)):
        if not s:
            return (f"{head}: the {which} operand is a scalar; matmul needs at least one "
                    f"axis on each side (use * to scale by a number)")
    inner_b = sb[-2] if len(sb) > 1 else sb[0]
    if sa[-1] != inner_b:
        return (f"{head}: inner sizes {sa[-1]} and {inner_b} differ (the last axis of the first "
                f"operand must match the {'first' if len(sb) == 1 else 'second-to-last'} axis of "
                f"the second)")
    return (f"{head}: the batch shapes {sa[:-2]} and {sb[:-2]} (the axes before the last two) "
            f"do not broadcast together")


matmul: Primitive = Primitive("matmul", _matmul_forward).defvjp(_grad_a, _grad_b).defjvp(
    lambda t, ans, a, b: t @ b,
    lambda t, ans, a, b: a @ t,
)
matmul.__doc__ = """Matrix product with NumPy's `@` semantics (1-D, 2-D, batched with broadcasting).

Example:
    >>> matmul(np.eye(2), np.array([1.0, 2.0])).numpy()
    array([1., 2.])
"""


# ---- norms -----------------------------------------------------------------------------------
# Two families, each with one rule: the 2-norm / Frobenius norm, sqrt(sum x^2) over `axes`
# (gradient x / norm, and 0 at 0, a subgradient), and norms built from |x| by a sum and/or a
# max (vector 1 and inf, matrix 1 and inf), whose gradient is sign(x) times a constant share
# of the maximum (ties split evenly).
def _norm_forward(x: Any, *, ord: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    return np.linalg.norm(x, ord=ord, axis=axes if len(axes) > 1 else axes[0], keepdims=keepdims)


def _kind(ord: Any, axes: tuple[int, ...]) -> tuple[Any, Any]:
    """(axis summed, axis maximized) of |x| for the 1/inf norms; (None, None) for the 2-norm."""
    if ord in (None, "fro") or (ord == 2 and len(axes) == 1):
        return None, None
    if len(axes) == 1:
        return (axes[0], None) if ord == 1 else (None, axes[0])
    return (axes[0], axes[1]) if ord == 1 else (axes[1], axes[0])


def _share(x: Any, ans: Any, ord: Any, axes: tuple[int, ...]) -> Any:
    """d norm / d x for the 1/inf norms: sign(x) times the even share of each maximum."""
    x = raw(x)
    summed, maxed = _kind(ord, axes)
    sign = np.sign(x)
    if maxed is None:
        return sign
    s = np.abs(x) if summed is None else np.sum(np.abs(x), axis=summed, keepdims=True)
    hit = s == np.max(s, axis=maxed, keepdims=True)
    return sign * (hit / np.sum(hit, axis=maxed, keepdims=True))


def _norm_vjp(g: Any, ans: Any, x: Any, *, ord: Any, axes: tuple[int, ...], keepdims: bool
              ) -> Any:
    g = keep_dims(g, shape_of(x), axes, keepdims)
    if _kind(ord, axes) != (None, None):
        return g * _share(x, ans, ord, axes)
    n = keep_dims(ans, shape_of(x), axes, keepdims)
    return g * x / np.where(raw(n) == 0, 1, n)


def _norm_jvp(t: Any, ans: Any, x: Any, *, ord: Any, axes: tuple[int, ...], keepdims: bool
              ) -> Any:
    if _kind(ord, axes) != (None, None):
        return np.sum(t * _share(x, ans, ord, axes), axis=axes, keepdims=keepdims)
    return np.sum(x * t, axis=axes, keepdims=keepdims) / np.where(raw(ans) == 0, 1, ans)


_norm: Primitive = Primitive("norm", _norm_forward).defvjp(_norm_vjp).defjvp(_norm_jvp)

_VECTOR_ORDS = (None, 1, 2, np.inf)
_MATRIX_ORDS = (None, "fro", 1, np.inf)


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Vector and matrix norms, as `np.linalg.norm`, differentiable.

    With `axis=None`: the 2-norm of the flattened input when `ord` is None; otherwise `x` must
    be 1-D (vector norm) or 2-D (matrix norm). An int `axis` gives vector norms along it, a
    pair of axes matrix norms. Vector `ord`: None/2, 1, inf; matrix `ord`: None/'fro', 1, inf.
    (The spectral norm, matrix `ord=2`, and negative orders are not provided.) At a zero
    vector the 2-norm's gradient is 0, a subgradient; ties of a max share its gradient.

    Example:
        >>> float(norm(np.array([3.0, 4.0])))
        5.0
        >>> float(norm(np.array([[1.0, -2.0], [3.0, 4.0]]), ord=1))
        6.0
    """
    ndim = len(shape_of(raw(x)))
    if axis is None and ord is None:  # the 2-norm of all elements
        y = _norm(reshape(x, (-1,)), ord=None, axes=(0,), keepdims=False)
        return reshape(y, (1,) * ndim) if keepdims else y
    if axis is None:
        if ndim not in (1, 2):
            raise ValueError(f"norm: ord={ord!r} with axis=None needs a 1-D or 2-D input, got "
                             f"{ndim} dimensions; pass axis=")
        axis = tuple(range(ndim))
    axes = normalize_axes(axis, ndim)
    allowed = _VECTOR_ORDS if len(axes) == 1 else _MATRIX_ORDS
    if len(axes) > 2 or len(set(axes)) != len(axes) or not any(
            ord is o or ord == o for o in allowed):
        kind = "vector" if len(axes) == 1 else "matrix"
        raise ValueError(f"norm: ord={ord!r} over axis {axis} is not supported; tape.norm "
                         f"provides {kind} norms with ord in {allowed} (one axis: vector norms, "
                         f"two axes: matrix norms)")
    return _norm(x, ord=ord, axes=axes, keepdims=bool(keepdims))
