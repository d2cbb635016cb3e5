"""Jacobians from a persistent tape: one `gradient()` per target element, seeded one-hot.

`Tape.jacobian(target, sources)` gives, for each source, an array of shape
`target.shape + source.shape`; `Tape.batch_jacobian(target, source)` gives per-example blocks
of shape `(batch,) + target.shape[1:] + source.shape[1:]`, seeding one target position in every
example at once (so it assumes `target[b]` depends only on `source[b]`, as TensorFlow does).
Results are assembled with tape ops, so an outer recording tape can differentiate them again.
A source the target does not depend on gets None, or zeros with `unconnected_gradients="zero"`.
`mode="forward"` computes `Tape.jacobian` column by column instead: one forward sweep of the
recorded operations (their JVP rules) per source element, cheaper when the sources have fewer
elements than the target; `mode="auto"` picks forward in that case, reverse otherwise.
`Tape.jacobian` and `Tape.batch_jacobian` accept TensorFlow's `parallel_iterations` and
`experimental_use_pfor` for compatibility; they have no effect here (the rows are always
computed one by one).

Example:
    >>> import numpy as np, tape
    >>> x = tape.Variable([1.0, 2.0, 3.0])
    >>> with tape.Tape(persistent=True) as outer:
    ...     with tape.Tape() as inner:
    ...         y = tape.sum(x ** 3)
    ...     g = inner.gradient(y, x)     # recorded by `outer`: the Hessian is its Jacobian
    >>> outer.jacobian(g, x).numpy()
    array([[ 6.,  0.,  0.],
           [ 0., 12.,  0.],
           [ 0.,  0., 18.]])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tape import nest, ops
from tape._observe import recording_tapes
from tape.backprop import unconnected_mode
from tape.tangents import forward_sweep
from tape.tensor import Tensor

_MODES = ("reverse", "forward", "auto")

# `tape` arguments are persistent `tape.Tape`s (which import this module): any object with a
# `gradient(target, sources, output_gradients=...)` method and a `_persistent` flag will do.
Tape = Any


def jacobian(tape: Tape, target: Any, sources: Any, unconnected_gradients: str = "none",
             mode: str = "reverse") -> Any:
    """`tape.jacobian(target, sources, mode=...)`: see the module docstring.

    Example:
        >>> import tape
        >>> x = tape.Variable([1.0, 2.0])
        >>> with tape.Tape(persistent=True) as t:
        ...     y = 3 * x
        >>> jacobian(t, y, [x])[0].numpy()
        array([[3., 0.],
               [0., 3.]])
    """
    unconnected = unconnected_mode(unconnected_gradients)
    if mode not in _MODES:
        raise ValueError(f"jacobian mode must be one of {_MODES}, got {mode!r}")
    _check_tape(tape, target, "jacobian")
    flat, rebuild = nest.flatten_with_rebuild(sources)
    n = target.size
    if mode == "auto":
        inputs = sum(s.size for s in flat if isinstance(s, Tensor))
        mode = "forward" if inputs < n else "reverse"
    if mode == "forward":
        return rebuild([_forward_columns(tape, target, s, unconnected) for s in flat])
    columns = _gradients(tape, target, flat, (_one_hot((n,), (k,), target) for k in range(n)))
    return rebuild([_assemble(g, s, target.shape, 0, unconnected)
                    for g, s in zip(columns, flat, strict=True)])


def _forward_columns(tape: Tape, target: Tensor, source: Any, mode: str) -> Any:
    """d target / d source by forward sweeps of the tape's records, one per source element."""
    if not isinstance(source, Tensor):
        raise TypeError(f"jacobian sources must be tensors or Variables, got "
                        f"{type(source).__name__}")
    shape = target.shape + source.shape
    was_recording = tape._recording
    if was_recording:
        tape._pop()
    try:
        differentiable = recording_tapes()
        columns = []
        for k in range(source.size):
            swept = forward_sweep(tape._records, {id(source): _one_hot((source.size,), (k,),
                                                                       source)}, differentiable)
            columns.append(swept.get(id(target)))
    finally:
        if was_recording:
            tape._push()
    if all(c is None for c in columns):
        return Tensor(np.zeros(shape, target.dtype)) if mode == "zero" else None
    zeros = np.zeros(target.shape, target.dtype)
    stacked = ops.stack([zeros if c is None else c for c in columns], axis=-1)
    return ops.reshape(stacked, shape)


def batch_jacobian(tape: Tape, target: Any, source: Any, unconnected_gradients: str = "none"
                   ) -> Any:
    """`tape.batch_jacobian(target, source)`: see the module docstring.

    Example:
        >>> import numpy as np, tape
        >>> x = tape.Variable(np.ones((2, 3)))
        >>> with tape.Tape(persistent=True) as t:
        ...     y = x[:, :2] * 5
        >>> batch_jacobian(t, y, x).shape
        (2, 2, 3)
    """
    mode = unconnected_mode(unconnected_gradients)
    _check_tape(tape, target, "batch_jacobian")
    if not isinstance(source, Tensor):
        raise TypeError(f"batch_jacobian source must be a tensor or Variable, got "
                        f"{type(source).__name__}")
    if target.ndim < 2 or source.ndim < 2 or target.shape[0] != source.shape[0]:
        raise ValueError(f"batch_jacobian needs a target and a source of rank 2 or more with the "
                         f"same first (batch) dimension; got target shape {target.shape} and "
                         f"source shape {source.shape}")
    batch, m = target.shape[0], int(np.prod(target.shape[1:], dtype=int))
    seeds = (_one_hot((batch, m), (slice(None), k), target) for k in range(m))
    (rows,) = _gradients(tape, target, [source], seeds)
    return _assemble(rows, source, target.shape, 1, mode)


def _check_tape(tape: Tape, target: Any, what: str) -> None:
    if not tape._persistent:
        raise RuntimeError(f"{what} computes one gradient per target element, but a "
                           f"non-persistent Tape releases its records after the first; create "
                           f"the tape with Tape(persistent=True)")
    if not isinstance(target, Tensor):
        raise TypeError(f"{what} target must be a tensor, got {type(target).__name__}")


def _one_hot(flat_shape: tuple[int, ...], position: Any, target: Tensor) -> np.ndarray:
    seed = np.zeros(flat_shape, target.dtype)
    seed[position] = 1
    return seed.reshape(target.shape)


def _gradients(tape: Tape, target: Tensor, sources: list[Any], seeds: Iterator[np.ndarray]
               ) -> list[list[Any]]:
    """For each source, its gradient under each seed (None where unconnected)."""
    per_source: list[list[Any]] = [[] for _ in sources]
    for seed in seeds:
        grads = tape.gradient(target, sources, output_gradients=seed)
        for column, g in zip(per_source, grads, strict=True):
            column.append(g)
    return per_source


def _assemble(grads: list[Any], source: Any, target_shape: tuple[int, ...], axis: int,
              mode: str) -> Any:
    """Stack per-seed gradients along `axis` into the Jacobian's shape (with tape ops)."""
    shape = target_shape + (source.shape if axis == 0 else source.shape[1:])
    if all(g is None for g in grads):
        return Tensor(np.zeros(shape, source.dtype)) if mode == "zero" else None
    zeros = np.zeros(source.shape, source.dtype)
    stacked = ops.stack([zeros if g is None else g for g in grads], axis=axis)
    return ops.reshape(stacked, shape)
