"""Gradients on their way in: (gradient, variable) pairs checked, non-finite values found, norms
clipped (Keras semantics).

Everything here only reads the gradients; nothing is written before all checks have passed.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from tape import Variable


def require_variables(var_list: Iterable[Any], what: str) -> list[Variable]:
    """`var_list` as a list, or a `TypeError` naming the first entry that is not a floating-point
    Variable.

    Example:
        >>> import tape
        >>> require_variables([tape.constant(1.0)], "minimize")
        Traceback (most recent call last):
        TypeError: minimize: got a Tensor, not a tape.Variable; optimizers update Variables in place
    """
    variables = list(var_list)
    for var in variables:
        _require_variable(var, what)
    return variables


def _require_variable(var: Any, what: str) -> None:
    if not isinstance(var, Variable):
        raise TypeError(f"{what}: got a {type(var).__name__}, not a tape.Variable; optimizers "
                        f"update Variables in place")
    if var.dtype.kind != "f":
        raise TypeError(f"{what}: Variable '{var.name}' has dtype {var.dtype}; only "
                        f"floating-point variables can be optimized")


def split_pairs(grads_and_vars: Iterable[Any]) -> tuple[list[np.ndarray], list[Variable]]:
    """Gradient arrays and their variables, checked; pairs with a `None` gradient are dropped
    with one warning naming their variables.

    Example:
        >>> import tape
        >>> w = tape.Variable([1.0, 2.0])
        >>> grads, variables = split_pairs(zip([[0.5, 0.5]], [w]))
        >>> grads[0], variables[0] is w
        (array([0.5, 0.5]), True)
    """
    grads: list[np.ndarray] = []
    variables: list[Variable] = []
    missing: list[str] = []
    for pair in grads_and_vars:
        try:
            g, var = pair
        except (TypeError, ValueError):
            raise TypeError(f"apply_gradients expects (gradient, variable) pairs, got "
                            f"{pair!r}") from None
        _require_variable(var, "apply_gradients: in a (gradient, variable) pair")
        if g is None:
            missing.append(var.name)
            continue
        grads.append(_gradient_array(g, var))
        variables.append(var)
    if not variables:
        raise ValueError("apply_gradients: no gradients to apply (every gradient is None"
                         + (f": variables {missing}" if missing else ", or no pairs were given")
                         + "); check that the loss depends on the variables")
    if len(variables) > 1 and len({id(v) for v in variables}) != len(variables):
        names = [v.name for v in variables]
        raise ValueError(f"apply_gradients: a variable appears more than once in {names}; "
                         f"add its gradients up first")
    if missing:
        warnings.warn(f"apply_gradients: no gradient for variables {missing}; they are not "
                      f"updated this step", UserWarning, stacklevel=3)
    return grads, variables


def _gradient_array(g: Any, var: Variable) -> np.ndarray:
    g = np.asarray(g)
    if g.shape != var.shape:
        raise ValueError(f"gradient for Variable '{var.name}' has shape {g.shape}, but the "
                         f"variable has shape {var.shape}")
    if g.dtype != var.dtype:
        if not np.can_cast(g.dtype, var.dtype, "same_kind"):
            raise TypeError(f"gradient for Variable '{var.name}' has dtype {g.dtype}, which "
                            f"cannot be cast to the variable's {var.dtype}")
        g = g.astype(var.dtype)
    return g


def nonfinite(grads: list[np.ndarray]) -> list[int]:
    """Indices of the gradients holding a NaN or an infinity.

    (`nonfinite_members` is the per-member form for stacked models.)

    Example:
        >>> nonfinite([np.ones(3), np.array([1.0, np.nan]), np.array(np.inf)])
        [1, 2]
    """
    return [i for i, g in enumerate(grads) if not _is_finite(g)]


def nonfinite_members(grads: list[np.ndarray], k: int) -> np.ndarray:
    """A (K,) boolean mask of the stacked members (leading axis) with a NaN or an infinity in
    any of `grads`.

    Example:
        >>> nonfinite_members([np.array([[1.0, 2.0], [np.inf, 0.0]]), np.ones(2)], 2)
        array([False,  True])
    """
    # As in _is_finite: a finite sum proves a member finite (NaN and inf propagate through the
    # sums; BLAS's matrix-vector product sums fastest); suspects get the exact test.
    total = np.zeros(k)
    with np.errstate(over="ignore", invalid="ignore"):
        for g in grads:
            rows = g.reshape(k, -1)
            total += rows @ _ones(rows.shape[1], rows.dtype)
    bad = ~np.isfinite(total)
    if bad.any():
        bad &= np.any([~np.isfinite(g.reshape(k, -1)).all(axis=1) for g in grads], axis=0)
    return bad


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    ones = np.ones(n, dtype)
    ones.setflags(write=False)
    return ones


def _is_finite(g: np.ndarray) -> bool:
    if g.ndim == 0:
        return math.isfinite(g)
    if g.size <= 4096:  # cheaper than entering np.errstate
        return bool(np.isfinite(g).all())
    with np.errstate(over="ignore", invalid="ignore"):
        # A finite sum proves every element finite in one read-only pass; only a non-finite
        # sum (a NaN, an infinity, or finite values that overflowed) pays for the exact test.
        return math.isfinite(np.add.reduce(g, axis=None)) or bool(np.isfinite(g).all())


def clip_factors(grads: list[np.ndarray], clipnorm: Any, global_clipnorm: Any,
                 k: int | None) -> list[Any]:
    """Per-gradient factors `c / max(norm, c)` (None where no clipping applies).

    `clipnorm` clips each gradient by its own L2 norm, `global_clipnorm` all of them by their
    joint norm (Keras' `clipnorm` and `global_clipnorm`, i.e. `tf.clip_by_norm` and
    `tf.clip_by_global_norm`). With K stacked models (`k`), norms are taken per member over all
    axes but the leading one, so each member is clipped as if it were trained alone.

    Example:
        >>> clip_factors([np.array([3.0, 4.0])], 1.0, None, None)
        [0.2]
    """
    if clipnorm is None and global_clipnorm is None:
        return [None] * len(grads)
    if clipnorm is not None and global_clipnorm is not None:
        raise ValueError("set only one of clipnorm and global_clipnorm")
    sumsq = [_sum_of_squares(g, k) for g in grads]
    if clipnorm is not None:
        return [_factor(clipnorm, s) for s in sumsq]
    return [_factor(global_clipnorm, sum(sumsq))] * len(grads)


def _sum_of_squares(g: np.ndarray, k: int | None) -> Any:
    if k is not None:
        r: np.ndarray = g.reshape(k, -1)
        return np.einsum("ij,ij->i", r, r).astype(np.float64)
    r = g.reshape(-1)
    return float(np.dot(r, r))


def _factor(c: Any, sumsq: Any) -> Any:
    if isinstance(sumsq, np.ndarray) or isinstance(c, np.ndarray):
        return c / np.maximum(np.sqrt(sumsq), c)
    norm = math.sqrt(sumsq)
    return None if norm <= c else c / norm
