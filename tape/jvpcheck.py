"""`check_jvps`: compare forward-mode derivatives with central differences and reverse mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape import ops
from tape.forward import ForwardAccumulator
from tape.gradient_tape import Tape
from tape.tensor import Tensor


def check_jvps(f: Callable[..., Any], *args: Any, order: int = 1, eps: float = 1e-6,
               rtol: float = 1e-5, atol: float = 1e-6, seed: int = 0) -> None:
    """Check `f`'s forward-mode derivatives along random directions; raise `AssertionError`.

    Floating arguments (in float64) get random tangents `u`. `order=1` checks the output's
    tangent `J u` against central differences (element by element) and against reverse mode
    (`<w, J u> == <J^T w, u>` for a random `w`). `order=2` checks the second directional
    derivative `d2f[u, u2]` from nested accumulators against central differences of `J u`,
    and the Hessian of `<w, f>` along the directions four ways: forward-over-forward,
    forward-over-reverse, reverse-over-forward and reverse-over-reverse.

    Example:
        >>> import numpy as np, tape
        >>> check_jvps(lambda x: tape.exp(x) * x, np.array([0.5, -1.0]), order=2)
    """
    rng = np.random.default_rng(seed)
    values = [np.asarray(a._value if isinstance(a, Tensor) else a) for a in args]
    values = [v.astype(np.float64) if v.dtype.kind == "f" else v for v in values]
    diff = [i for i, v in enumerate(values) if v.dtype.kind == "f"]
    if not diff:
        raise ValueError("check_jvps needs at least one floating-point argument")
    u = {i: rng.standard_normal(values[i].shape) for i in diff}
    u2 = {i: rng.standard_normal(values[i].shape) for i in diff}

    def call(vals: list[Any]) -> tuple[list[Any], Any]:
        xs = [Tensor(v) if i in diff else v for i, v in enumerate(vals)]
        return xs, f(*xs)

    def directional(vals: list[Any], direction: dict[int, Any]) -> np.ndarray:
        xs = [Tensor(v) if i in diff else v for i, v in enumerate(vals)]
        with ForwardAccumulator([xs[i] for i in diff], [direction[i] for i in diff]) as acc:
            y = f(*xs)
        return np.asarray(acc.jvp(y, unconnected_gradients="zero")._value)

    def shifted(sign: float, direction: dict[int, Any]) -> list[Any]:
        return [v + sign * eps * direction[i] if i in diff else v for i, v in enumerate(values)]

    def compare(what: str, got: Any, expected: Any, tol: float = 1.0) -> None:
        if not np.allclose(got, expected, rtol=rtol * tol, atol=atol * tol):
            raise AssertionError(f"check_jvps (order {order}): {what}: forward mode gives "
                                 f"{np.asarray(got)!r}, expected {np.asarray(expected)!r}")

    jvp = directional(values, u)
    _, y = call(values)
    w = rng.standard_normal(np.shape(y._value))
    if order == 1:
        numeric = (np.asarray(call(shifted(1, u))[1]._value)
                   - np.asarray(call(shifted(-1, u))[1]._value)) / (2 * eps)
        compare("J u against central differences", jvp, numeric)
        xs, _ = call(values)
        sources = [xs[i] for i in diff]
        with Tape() as t:
            t.watch(sources)
            y = ops.sum(f(*xs) * w)
        grads = t.gradient(y, sources, unconnected_gradients="zero")
        vjp_u = sum(float(np.sum(g._value * u[i])) for i, g in zip(diff, grads))
        compare("<w, J u> against reverse mode's <J^T w, u>", np.sum(w * jvp), vjp_u, 1e-3)
        return
    if order != 2:
        raise ValueError(f"check_jvps checks order 1 or 2, got order={order}")
    xs, _ = call(values)
    sources = [xs[i] for i in diff]
    with ForwardAccumulator(sources, [u2[i] for i in diff]) as outer:
        with ForwardAccumulator(sources, [u[i] for i in diff]) as inner:
            y = f(*xs)
        second = outer.jvp(inner.jvp(y, unconnected_gradients="zero"),
                           unconnected_gradients="zero")._value
    numeric = (directional(shifted(1, u2), u) - directional(shifted(-1, u2), u)) / (2 * eps)
    compare("d2f[u, u2] (forward over forward) against central differences", second, numeric)
    expected = float(np.sum(w * second))
    for name, hessian_u2 in _hessian_products(f, values, diff, w, u2).items():
        got = sum(float(np.sum(h * u[i])) for i, h in zip(diff, hessian_u2))
        compare(f"<u, H u2> ({name}) against forward over forward", got, expected, 1e-3)


def _hessian_products(f: Callable[..., Any], values: list[Any], diff: list[int], w: Any,
                      v: dict[int, Any]) -> dict[str, list[np.ndarray]]:
    """H v for the Hessian H of `<w, f>`, three ways (each input's block in a list)."""
    def fresh() -> tuple[list[Any], list[Any]]:
        xs = [Tensor(val) if i in diff else val for i, val in enumerate(values)]
        return xs, [xs[i] for i in diff]

    def phi(xs: list[Any]) -> Any:
        return ops.sum(f(*xs) * w)

    xs, sources = fresh()
    with ForwardAccumulator(sources, [v[i] for i in diff]) as acc:
        with Tape() as t:
            t.watch(sources)
            y = phi(xs)
        g = t.gradient(y, sources, unconnected_gradients="zero")
    fwd_rev = acc.jvp(g, unconnected_gradients="zero")

    xs, sources = fresh()
    with Tape() as t:
        t.watch(sources)
        with ForwardAccumulator(sources, [v[i] for i in diff]) as acc:
            y = phi(xs)
        jt = acc.jvp(y, unconnected_gradients="zero")
    rev_fwd = t.gradient(jt, sources, unconnected_gradients="zero")

    xs, sources = fresh()
    with Tape() as outer_tape:
        outer_tape.watch(sources)
        with Tape() as t:
            t.watch(sources)
            y = phi(xs)
        g = t.gradient(y, sources, unconnected_gradients="zero")
        dot = ops.sum(ops.stack([ops.sum(gi * v[i]) for i, gi in zip(diff, g)]))
    rev_rev = outer_tape.gradient(dot, sources, unconnected_gradients="zero")
    return {name: [np.asarray(h._value) for h in hs] for name, hs in
            (("forward over reverse", fwd_rev), ("reverse over forward", rev_fwd),
             ("reverse over reverse", rev_rev))}
