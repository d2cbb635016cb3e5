"""`check_gradients`: compare tape gradients with central finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.gradient_tape import Tape
from tape.tensor import Tensor


def _as_float64(x: Any) -> Any:
    value = np.asarray(x._value if isinstance(x, Tensor) else x)
    return value.astype(np.float64) if value.dtype.kind in "fc" else value


def check_gradients(f: Callable[..., Any], *args: Any, order: int = 1, eps: float = 1e-6,
                    rtol: float = 1e-5, atol: float = 1e-6, directions: int = 3,
                    full_jacobian_below: int = 64, seed: int = 0) -> None:
    """Check `f`'s tape gradients against central differences; raise `AssertionError` if off.

    Floating arguments are converted to float64 and differentiated; others are passed as
    given. The output is contracted with a fixed random weight so non-scalar outputs are
    covered. Arguments with at most `full_jacobian_below` elements are checked element by
    element; larger ones along `directions` random directions. `order=2` checks the
    gradient's own gradient (second derivatives through nested tapes).

    Example:
        >>> import numpy as np, tape
        >>> check_gradients(lambda x: tape.sum(tape.exp(x) * x), np.array([0.5, -1.0]))
    """
    rng = np.random.default_rng(seed)
    values = [_as_float64(a) for a in args]
    diff = [i for i, v in enumerate(values) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    if not diff:
        raise ValueError("check_gradients needs at least one floating-point argument")
    probe = f(*[Tensor(v) if i in diff else v for i, v in enumerate(values)])
    weight = rng.standard_normal(np.shape(probe._value if isinstance(probe, Tensor) else probe))

    def objective(*xs: Any) -> Any:
        out = f(*xs)
        return _contract(out, weight)

    for _ in range(order - 1):
        objective = _gradient_function(objective, diff, rng)
    _compare(objective, values, diff, eps, rtol, atol, directions, full_jacobian_below, rng,
             order)


def _contract(out: Any, weight: Any) -> Any:
    from tape import ops
    return ops.sum(out * weight)


def _gradient_function(fn: Callable[..., Any], diff: list[int], rng: np.random.Generator
                       ) -> Callable[..., Any]:
    """x -> <grad fn(x), w> for fixed random w: its gradient holds second derivatives of fn."""
    weights: dict[int, Any] = {}

    def grad_dot(*xs: Any) -> Any:
        from tape import ops
        sources = [xs[i] for i in diff]
        with Tape(persistent=False) as t:
            t.watch(sources)
            y = fn(*xs)
        grads = t.gradient(y, sources, unconnected_gradients="zero")
        total: Any = 0.0
        for i, g in zip(diff, grads):
            if i not in weights:
                weights[i] = rng.standard_normal(np.shape(xs[i]))
            total = total + ops.sum(g * weights[i])
        return total

    return grad_dot


def _evaluate(fn: Callable[..., Any], values: list[Any], diff: list[int]) -> float:
    out = fn(*[Tensor(v) if i in diff else v for i, v in enumerate(values)])
    return float(np.asarray(out._value if isinstance(out, Tensor) else out))


def _compare(fn: Callable[..., Any], values: list[Any], diff: list[int], eps: float,
             rtol: float, atol: float, directions: int, full_below: int,
             rng: np.random.Generator, order: int) -> None:
    tensors = [Tensor(v) if i in diff else v for i, v in enumerate(values)]
    with Tape() as t:
        t.watch([tensors[i] for i in diff])
        out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise AssertionError("check_gradients: the function's output does not depend on any "
                             "floating-point argument")
    grads = t.gradient(out, [tensors[i] for i in diff], unconnected_gradients="zero")
    for i, g in zip(diff, grads):
        analytic = np.asarray(g._value, dtype=np.float64)
        x = values[i]
        if x.size <= full_below:
            basis = [np.eye(x.size)[k].reshape(x.shape) for k in range(x.size)]
        else:
            basis = [rng.standard_normal(x.shape) for _ in range(directions)]
        for k, direction in enumerate(basis):
            numeric = _central_difference(fn, values, diff, i, direction, eps)
            expected = float(np.sum(analytic * direction))
            if not np.isclose(expected, numeric, rtol=rtol, atol=atol):
                where = (f"element {np.unravel_index(k, x.shape)}" if x.size <= full_below
                         else f"random direction {k}")
                raise AssertionError(
                    f"check_gradients (order {order}): argument {i} (shape {x.shape}), "
                    f"{where}: tape gives {expected:.10g}, finite differences give "
                    f"{numeric:.10g} (difference {abs(expected - numeric):.3g}, "
                    f"rtol={rtol}, atol={atol})")


def _central_difference(fn: Callable[..., Any], values: list[Any], diff: list[int], i: int,
                        direction: np.ndarray, eps: float) -> float:
    plus, minus = list(values), list(values)
    plus[i] = values[i] + eps * direction
    minus[i] = values[i] - eps * direction
    return (_evaluate(fn, plus, diff) - _evaluate(fn, minus, diff)) / (2 * eps)
