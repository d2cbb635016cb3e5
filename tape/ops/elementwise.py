"""Elementwise primitives: exponentials, activations, selections."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tape.ops._util import raw
from tape.ops.shapes import unbroadcast
from tape.primitive import Primitive


# ---- exponentials and powers ---------------------------------------------------------------
# Elementwise without broadcasting: the Jacobian is diagonal, so one rule `d * f'(x)` serves as
# VJP (d = upstream gradient) and as JVP (d = input tangent).
def _diagonal(prim: Primitive, rule: Any) -> Primitive:
    return prim.defvjp(rule).defjvp(rule)


exp: Primitive = _diagonal(Primitive("exp", np.exp), lambda d, ans, x: d * ans)
log: Primitive = _diagonal(Primitive("log", np.log), lambda d, ans, x: d / x)
log1p: Primitive = _diagonal(Primitive("log1p", np.log1p), lambda d, ans, x: d / (1 + x))
sqrt: Primitive = _diagonal(Primitive("sqrt", np.sqrt), lambda d, ans, x: d * 0.5 / ans)
square: Primitive = _diagonal(Primitive("square", np.square), lambda d, ans, x: d * 2 * x)

# ---- trigonometric and activations ---------------------------------------------------------
sin: Primitive = _diagonal(Primitive("sin", np.sin), lambda d, ans, x: d * np.cos(x))
cos: Primitive = _diagonal(Primitive("cos", np.cos), lambda d, ans, x: -d * np.sin(x))
tanh: Primitive = _diagonal(Primitive("tanh", np.tanh), lambda d, ans, x: d * (1 - ans * ans))

_erf_values = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf is exact to the ulp


def _erf(x: Any) -> Any:
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.float64
    return np.asarray(_erf_values(x), dtype=dtype)


erf: Primitive = _diagonal(Primitive("erf", _erf),
                           lambda d, ans, x: d * (2 / math.sqrt(math.pi)) * np.exp(-(x * x)))
erf.__doc__ = """The error function, 2/sqrt(pi) * integral of exp(-t^2) from 0 to x (`math.erf`
per element: exact, but a Python call per element; used by exact `gelu`).

Example:
    >>> float(erf(0.5))
    0.5204998778130465
"""


def _sigmoid(x: Any) -> Any:
    # exp(-log(1 + exp(-x))) is exact in both tails, where 1/(1+exp(-x)) overflows.
    return np.exp(-np.logaddexp(0, -x))


sigmoid: Primitive = _diagonal(Primitive("sigmoid", _sigmoid),
                               lambda d, ans, x: d * ans * (1 - ans))
relu: Primitive = _diagonal(Primitive("relu", lambda x: np.maximum(x, 0)),
                            lambda d, ans, x: d * (raw(x) > 0))
abs: Primitive = _diagonal(Primitive("abs", np.abs), lambda d, ans, x: d * np.sign(raw(x)))

# ---- selections: ties go to the first argument, as in TensorFlow ---------------------------
maximum: Primitive = Primitive("maximum", np.maximum).defvjp(
    lambda g, ans, x, y: unbroadcast(g * (raw(x) >= raw(y)), x),
    lambda g, ans, x, y: unbroadcast(g * (raw(x) < raw(y)), y),
).defjvp(
    lambda t, ans, x, y: t * (raw(x) >= raw(y)),
    lambda t, ans, x, y: t * (raw(x) < raw(y)),
)
minimum: Primitive = Primitive("minimum", np.minimum).defvjp(
    lambda g, ans, x, y: unbroadcast(g * (raw(x) <= raw(y)), x),
    lambda g, ans, x, y: unbroadcast(g * (raw(x) > raw(y)), y),
).defjvp(
    lambda t, ans, x, y: t * (raw(x) <= raw(y)),
    lambda t, ans, x, y: t * (raw(x) > raw(y)),
)

_where: Primitive = Primitive("where", np.where, uses_inputs=False).defvjp(
    None,
    lambda g, ans, c, x, y: unbroadcast(np.where(raw(c), g, 0), x),
    lambda g, ans, c, x, y: unbroadcast(np.where(raw(c), 0, g), y),
).defjvp(
    None,
    lambda t, ans, c, x, y: np.where(raw(c), t, 0),
    lambda t, ans, c, x, y: np.where(raw(c), 0, t),
)


def where(condition: Any, x: Any, y: Any) -> Any:
    """Elements of `x` where `condition` holds, else of `y` (broadcast; `condition` is constant).

    Example:
        >>> where(np.array([True, False]), 1.0, -1.0).numpy()
        array([ 1., -1.])
    """
    return _where(raw(condition), x, y)


def _clip_mask(x: Any, lo: Any, hi: Any) -> Any:
    x = raw(x)
    mask = np.ones(np.shape(x), bool)
    if lo is not None:
        mask &= x >= raw(lo)
    if hi is not None:
        mask &= x <= raw(hi)
    return mask


_clip: Primitive = Primitive("clip", np.clip).defvjp(
    lambda g, ans, x, lo, hi: unbroadcast(g * _clip_mask(x, lo, hi), x),
    None,
    None,
).defjvp(lambda t, ans, x, lo, hi: t * _clip_mask(x, lo, hi), None, None)


def clip(x: Any, a_min: Any = None, a_max: Any = None, *, min: Any = None, max: Any = None
         ) -> Any:
    """Limit values to [a_min, a_max]; the gradient passes where the input lies inside.
    `min=`/`max=` are NumPy 2's keyword names for the bounds.

    `a_min > a_max` raises `ValueError` (as in TensorFlow; NumPy would return `a_max`).

    Example:
        >>> clip(np.array([-2.0, 0.5, 3.0]), 0, 1).numpy()
        array([0. , 0.5, 1. ])
    """
    if min is not None or max is not None:
        if a_min is not None or a_max is not None:
            raise TypeError("clip: pass the bounds as a_min/a_max or as min/max, not both")
        a_min, a_max = min, max
    if a_min is None and a_max is None:
        raise ValueError("clip needs a_min or a_max (or both)")
    lo, hi = raw(a_min), raw(a_max)
    if lo is not None and hi is not None:
        _check_bounds(lo, hi)
    return _clip(x, lo, hi)


def _check_bounds(lo: Any, hi: Any) -> None:
    # NumPy returns a_max everywhere when a_min > a_max; TensorFlow raises, and so do we.
    bad = np.greater(lo, hi)
    if not bad.any():
        return
    if bad.ndim == 0:
        where = f"a_min ({lo}) is greater than a_max ({hi})"
    else:
        i = np.unravel_index(int(np.argmax(bad)), bad.shape)
        where = (f"a_min is greater than a_max at index {tuple(int(k) for k in i)} "
                 f"({np.broadcast_to(lo, bad.shape)[i]} > {np.broadcast_to(hi, bad.shape)[i]}; "
                 f"bounds of shapes {np.shape(lo)} and {np.shape(hi)})")
    raise ValueError(f"clip: {where}, so there is no value in between (NumPy would return a_max "
                     f"there); pass bounds with a_min <= a_max")
