"""Elementwise primitives: exponentials, activations, selections."""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops._util import raw, unbroadcast
from tape.primitive import Primitive

# ---- exponentials and powers ---------------------------------------------------------------
exp: Primitive = Primitive("exp", np.exp).defvjp(lambda g, ans, x: g * ans)
log: Primitive = Primitive("log", np.log).defvjp(lambda g, ans, x: g / x)
log1p: Primitive = Primitive("log1p", np.log1p).defvjp(lambda g, ans, x: g / (1 + x))
sqrt: Primitive = Primitive("sqrt", np.sqrt).defvjp(lambda g, ans, x: g * 0.5 / ans)
square: Primitive = Primitive("square", np.square).defvjp(lambda g, ans, x: g * 2 * x)

# ---- trigonometric and activations ---------------------------------------------------------
sin: Primitive = Primitive("sin", np.sin).defvjp(lambda g, ans, x: g * np.cos(x))
cos: Primitive = Primitive("cos", np.cos).defvjp(lambda g, ans, x: -g * np.sin(x))
tanh: Primitive = Primitive("tanh", np.tanh).defvjp(lambda g, ans, x: g * (1 - ans * ans))


def _sigmoid(x: Any) -> Any:
    # exp(-log(1 + exp(-x))) is exact in both tails, where 1/(1+exp(-x)) overflows.
    return np.exp(-np.logaddexp(0, -x))


sigmoid: Primitive = Primitive("sigmoid", _sigmoid).defvjp(lambda g, ans, x: g * ans * (1 - ans))
relu: Primitive = Primitive("relu", lambda x: np.maximum(x, 0)).defvjp(
    lambda g, ans, x: g * (raw(x) > 0)
)
abs: Primitive = Primitive("abs", np.abs).defvjp(lambda g, ans, x: g * np.sign(raw(x)))

# ---- selections: ties go to the first argument, as in TensorFlow ---------------------------
maximum: Primitive = Primitive("maximum", np.maximum).defvjp(
    lambda g, ans, x, y: unbroadcast(g * (raw(x) >= raw(y)), x),
    lambda g, ans, x, y: unbroadcast(g * (raw(x) < raw(y)), y),
)
minimum: Primitive = Primitive("minimum", np.minimum).defvjp(
    lambda g, ans, x, y: unbroadcast(g * (raw(x) <= raw(y)), x),
    lambda g, ans, x, y: unbroadcast(g * (raw(x) > raw(y)), y),
)

_where: Primitive = Primitive("where", np.where, uses_inputs=False).defvjp(
    None,
    lambda g, ans, c, x, y: unbroadcast(np.where(raw(c), g, 0), x),
    lambda g, ans, c, x, y: unbroadcast(np.where(raw(c), 0, g), y),
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
)


def clip(x: Any, a_min: Any = None, a_max: Any = None) -> Any:
    """Limit values to [a_min, a_max]; the gradient passes where the input lies inside.

    `a_min > a_max` raises `ValueError` (as in TensorFlow; NumPy would return `a_max`).

    Example:
        >>> clip(np.array([-2.0, 0.5, 3.0]), 0, 1).numpy()
        array([0. , 0.5, 1. ])
    """
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
