"""Gradients on their way in: (gradient, variable) pairs checked, non-finite values found, norms
clipped (Keras semantics); and the same finiteness tests for what a step would write.

Everything here only reads its arrays; nothing is written before all checks have passed.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable
from typing import Any, NamedTuple

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
        grads.append(gradient_array(g, var))
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


def gradient_array(g: Any, var: Variable) -> np.ndarray:
    """`g` as an array of `var`'s dtype; a shape or dtype that cannot be is an error.

    Example:
        >>> import tape
        >>> gradient_array([1, 2], tape.Variable([0.5, 0.5])).dtype
        dtype('float64')
    """
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


def nonfinite_members(grads: list[np.ndarray], k: int) -> np.ndarray:
    """A (K,) boolean mask of the stacked members (leading axis) with a NaN or an infinity in
    any of `grads`.

    Example:
        >>> nonfinite_members([np.array([[1.0, 2.0], [np.inf, 0.0]]), np.ones(2)], 2)
        array([False,  True])
    """
    # A finite sum proves a member finite (NaN and inf propagate through the sums; BLAS's
    # matrix-vector product sums fastest); suspects get the exact test.
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


_SMALL = 4096  # below this size the exact test is cheaper than entering np.errstate


def is_finite(x: np.ndarray) -> bool:
    """Whether every element of `x` is finite.

    A large array costs one read-only pass: the sum of its squares (BLAS), which is finite only
    if every element is; the exact test runs only when that sum is not finite (a NaN, an
    infinity, or finite values whose squares overflow).

    Example:
        >>> is_finite(np.full(10_000, 1e200)), is_finite(np.array([0.0, np.nan]))
        (True, False)
    """
    if x.ndim == 0:
        return math.isfinite(x)
    if x.size <= _SMALL:
        return bool(np.isfinite(x).all())
    with np.errstate(over="ignore", invalid="ignore"):
        return math.isfinite(_sum_of_squares(x)) or bool(np.isfinite(x).all())


def _sum_of_squares(x: np.ndarray) -> Any:
    """`sum(x**2)` in x's dtype in one read-only BLAS pass (inf when it overflows: NumPy warns,
    unless under `np.errstate(over="ignore")`)."""
    r = x.ravel(order="K")
    return np.dot(r, r)


def largest(x: np.ndarray) -> float:
    """An upper bound on `abs(x)`'s elements: inf or NaN if and only if `x` has a NaN or an
    infinity.

    A large array costs one read-only BLAS pass, `sqrt(sum(x**2))` (at most `sqrt(x.size)` times
    too large, which is all an overflow test needs); the exact maximum when that overflows.

    Example:
        >>> largest(np.array([3.0, -4.0])), largest(np.full(5000, -1e30, np.float32))
        (4.0, 1.0000000150474662e+30)
        >>> largest(np.array([1.0, np.nan]))
        nan
    """
    if x.ndim == 0:
        return abs(float(x))
    if x.size <= _SMALL:
        return float(np.abs(x).max())  # np.max's reduction without its Python wrapper
    with np.errstate(over="ignore", invalid="ignore"):
        sumsq = float(_sum_of_squares(x))
    if sumsq < math.inf:
        return math.sqrt(sumsq)
    return float(np.max(np.abs(x)))


class Limits(NamedTuple):
    """What a floating dtype allows an optimizer (see `limits`)."""

    state: float  # optimizer state below this in magnitude stays finite through a step
    step: float  # a finite weight minus a step below this in magnitude stays finite
    slack: float  # computed values exceed their exact bounds by at most this factor
    tiny: float  # the smallest positive value


@functools.lru_cache(maxsize=8)
def limits(dtype: np.dtype) -> Limits:
    """The bounds under which `dtype` arithmetic provably stays finite: state below half the
    dtype's maximum, steps below half the spacing of floats at that maximum (1e31 for float32,
    so no step can carry a finite weight past the maximum), and the rounding slack of a few
    operations.

    Example:
        >>> limits(np.dtype(np.float16))
        Limits(state=32752.0, step=8.0, slack=1.015625, tiny=5.960464477539063e-08)
    """
    info = np.finfo(dtype)
    return Limits(float(info.max) / 2, _half_ulp_of_max(dtype)[0] / 2,
                  1.0 + 16 * float(info.eps), float(info.smallest_subnormal))


@functools.lru_cache(maxsize=8)
def _half_ulp_of_max(dtype: np.dtype) -> tuple[float, float]:
    """Half the spacing of floats at the dtype's maximum, and its square, as Python floats (the
    square is inf for float64): a finite weight minus anything smaller in magnitude stays
    finite."""
    big = np.finfo(dtype).max
    half = float((big - np.nextafter(big, 0)) / 2)
    return half, half * half


def overflows(w: Any, delta: np.ndarray) -> bool:
    """Whether `w - delta` has a NaN or an infinity where `w` (an array or a Variable) has none.

    Usually one read-only pass over `delta` decides: when every element of `delta` is smaller in
    magnitude than half the spacing of floats at the dtype's maximum (1e31 for float32), none
    can carry a finite weight past that maximum. (A large array is bounded by the sum of its
    squares, one BLAS pass.) Otherwise, the exact test. NumPy warns only if it does overflow.

    Example:
        >>> w = np.array([3e38, 1.0], np.float32)
        >>> overflows(w, np.array([1e30, 1.0], np.float32))  # 3e38 - 1e30 is finite
        False
        >>> with np.errstate(over="ignore"):
        ...     overflows(w, np.array([-1e38, 1.0], np.float32))
        True
    """
    half, half_squared = _half_ulp_of_max(delta.dtype)
    if delta.ndim == 0:
        if abs(float(delta)) < half:  # False for NaN
            return False
    elif delta.size <= _SMALL:
        if -half < delta.min() and delta.max() < half:  # neither overflows nor warns
            return False
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            sumsq = _sum_of_squares(delta)
        if float(sumsq) < half_squared:
            return False
    return bool(overflowing_members(np.asarray(w), delta, None).any())


def overflowing_members(w: np.ndarray, delta: np.ndarray, k: int | None) -> np.ndarray:
    """The (K,) mask of stacked members (leading axis) whose `w - delta` has a NaN or an
    infinity where `w` has none (k=None: one flag for the whole array, shape (1,)).

    Example:
        >>> w = np.array([[1.0, 2.0], [3e38, 0.0]], np.float32)
        >>> overflowing_members(w, np.array([[1.0, 1.0], [-3e38, 0.0]], np.float32), 2)
        array([False,  True])
    """
    with np.errstate(over="ignore", invalid="ignore"):
        new = w - delta
    rows = (1 if k is None else k, -1)
    return np.asarray((np.isfinite(w) & ~np.isfinite(new)).reshape(rows).any(axis=1))


def clip_factors(grads: list[np.ndarray], clipnorm: Any, global_clipnorm: Any,
                 k: int | None) -> list[Any]:
    """Per-gradient factors `c / max(norm, c)` (None where no clipping applies).

    `clipnorm` clips each gradient by its own L2 norm, `global_clipnorm` all of them by their
    joint norm (Keras' `clipnorm` and `global_clipnorm`, i.e. `tf.clip_by_norm` and
    `tf.clip_by_global_norm`). With K stacked models (`k`), norms are taken per member over all
    axes but the leading one, so each member is clipped as if it were trained alone. Norms are
    exact for finite gradients whose squares overflow (a float32 gradient of 1e20 has norm 1e20,
    not inf, so it is clipped to `c`, not to 0).

    Example:
        >>> clip_factors([np.array([3.0, 4.0])], 1.0, None, None)
        [0.2]
        >>> (f,) = clip_factors([np.array([3e20, 4e20], np.float32)], 1.0, None, None)
        >>> round(f * 5e20, 6)  # the norm is 5e20, though its square overflows float32
        1.0
    """
    if clipnorm is None and global_clipnorm is None:
        return [None] * len(grads)
    if clipnorm is not None and global_clipnorm is not None:
        raise ValueError("set only one of clipnorm and global_clipnorm")
    norms = [_norm(g, k) for g in grads]
    if clipnorm is not None:
        return [_factor(clipnorm, n) for n in norms]
    return [_factor(global_clipnorm, _hypot(norms))] * len(grads)


def _norm(g: np.ndarray, k: int | None) -> Any:
    """The L2 norm of `g` (a float), or of each of its K rows (a (K,) float64 array)."""
    if k is not None:
        r: np.ndarray = g.reshape(k, -1)
        with np.errstate(over="ignore"):
            sumsq = np.einsum("ij,ij->i", r, r).astype(np.float64)
        if np.isfinite(sumsq).all():
            return np.sqrt(sumsq)
        return np.array([_norm(row, None) for row in r])
    r = g.reshape(-1)
    with np.errstate(over="ignore"):
        sumsq = float(np.dot(r, r))
    if math.isfinite(sumsq):
        return math.sqrt(sumsq)
    big = float(np.max(np.abs(r)))  # the squares overflowed: scale them by the largest entry
    if not math.isfinite(big) or big == 0.0:
        return big
    scaled = r.astype(np.float64) / big
    return big * math.sqrt(float(np.dot(scaled, scaled)))


def _hypot(norms: list[Any]) -> Any:
    """sqrt(sum of squares) of norms (floats or (K,) arrays), without overflow."""
    if any(isinstance(n, np.ndarray) for n in norms):
        stacked = np.array(np.broadcast_arrays(*norms), dtype=np.float64)
        big = stacked.max(axis=0)
        safe = np.where(big > 0, big, 1.0)
        return big * np.sqrt(((stacked / safe) ** 2).sum(axis=0))
    return math.hypot(*norms)


def _factor(c: Any, norm: Any) -> Any:
    if isinstance(norm, np.ndarray) or isinstance(c, np.ndarray):
        return c / np.maximum(norm, c)
    return None if norm <= c else c / norm
