"""Matrix products: `matmul` for 1-D, 2-D and batched (broadcast) operands."""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops._util import shape_of
from tape.ops.shapes import unbroadcast
from tape.primitive import Primitive


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
