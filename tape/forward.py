"""Forward-mode differentiation: `ForwardAccumulator` (TensorFlow's API), `jvp` and `hvp`.

An accumulator is a recorder on this thread's tape stack (`tape.records.Recorder`) that
keeps a tangent for each value it tracks: the watched primals, then the output of every
primitive call with an input that has a tangent, computed at once from the primitive's JVP
rules (`Primitive.defjvp`). Nothing is kept for the backward direction, and the outputs'
tangents live only as long as the outputs do.

Nesting follows TensorFlow: an accumulator's tangent computations are seen by the tapes and
accumulators that were active when it was entered (outer ones), never by inner ones.
- A `Tape` outside an accumulator records the tangents: `tape.gradient(acc.jvp(y), x)` is
  reverse-over-forward.
- A `Tape` inside an accumulator runs its backward pass on tensors (differentiably) while
  the accumulator is active, so the accumulator differentiates the gradient:
  `acc.jvp(tape.gradient(y, x))` is forward-over-reverse, a Hessian-vector product (`hvp`).
- Accumulators inside accumulators give higher-order directional derivatives.

Example:
    >>> import numpy as np, tape
    >>> x = tape.Variable([1.0, 2.0])
    >>> with tape.ForwardAccumulator(x, np.array([1.0, 0.0])) as acc:
    ...     y = tape.sum(x ** 3)
    >>> float(acc.jvp(y))
    3.0
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from tape import nest
from tape._state import STATE
from tape.backprop import finish, unconnected_mode
from tape.gradient_tape import Tape
from tape.records import Record
from tape.tangents import output_tangent
from tape.tensor import Tensor, Variable, constant


class ForwardAccumulator:
    """Computes Jacobian-vector products with forward-mode autodiff, as TensorFlow's.

    `ForwardAccumulator(primals, tangents)`: `primals` are tensors or Variables (or a nested
    list/tuple/dict of them), `tangents` the direction for each, of the primal's shape and
    dtype (arrays and numbers are converted to the primal's dtype; a tensor or array of
    another floating dtype is an error). Inside the `with` block every operation on a watched
    value computes its output's tangent as it runs; `jvp(y)` returns the tangent of `y`
    (None for a value that does not depend on a primal, or zeros with
    `unconnected_gradients="zero"`). `jvp` works inside and after the block.

    Example:
        >>> import numpy as np, tape
        >>> w = tape.Variable([[1.0], [2.0]])
        >>> x = np.array([[2.0, 3.0], [1.0, 4.0]])
        >>> with tape.ForwardAccumulator(w, np.array([[1.0], [0.0]])) as acc:
        ...     loss = tape.sum((x @ w) ** 2)
        >>> float(acc.jvp(loss))
        50.0
    """

    _observer = False  # a backward pass inside it runs differentiably, so that it sees it
    _watch_accessed = False

    def __init__(self, primals: Any, tangents: Any) -> None:
        flat_primals = nest.flatten(primals)
        flat_tangents = nest.flatten(tangents)
        if len(flat_primals) != len(flat_tangents):
            raise ValueError(f"ForwardAccumulator got {len(flat_primals)} primal(s) but "
                             f"{len(flat_tangents)} tangent(s); give one tangent per primal, in "
                             f"the same structure")
        self._tracked: dict[int, Any] = {}
        self._primals: list[Tensor] = []  # kept alive: their ids key `_tracked`
        self._notes: list[tuple[Any, ...]] = []
        self._active = False
        for k, (p, t) in enumerate(zip(flat_primals, flat_tangents)):
            self._watch(k, p, t)

    def _watch(self, k: int, primal: Any, tangent: Any) -> None:
        if not isinstance(primal, Tensor):
            raise TypeError(f"ForwardAccumulator primal {k} must be a tensor or Variable, got "
                            f"{type(primal).__name__}; wrap arrays with tape.constant(...) "
                            f"first and use that tensor")
        dtype = primal.dtype
        if dtype.kind not in "fc":
            raise TypeError(f"ForwardAccumulator primal {k} has dtype {dtype}, which is not "
                            f"differentiable; only floating-point tensors have tangents (cast "
                            f"it with .astype('float64'))")
        if id(primal) in self._tracked:
            raise ValueError(f"ForwardAccumulator primal {k} is watched twice; give each "
                             f"tensor or Variable once")
        t = tangent._value if isinstance(tangent, Tensor) else tangent
        t_dtype = getattr(t, "dtype", None)
        if t_dtype is not None and t_dtype != dtype and (t_dtype.kind in "fc"
                                                         or dtype.kind == "c"):
            raise ValueError(f"ForwardAccumulator tangent {k} has dtype {t_dtype} but its "
                             f"primal has dtype {dtype}; tangents must have their primal's "
                             f"dtype (use .astype({str(dtype)!r}))")
        tracer = STATE.tracer  # tape.function: a conversion is a kernel, redone per replay
        value: Any = (np.asarray(t, dtype=dtype) if tracer is None
                      else tracer.call(np.asarray, (t,), {"dtype": dtype}))
        if value.shape != primal.shape:
            raise ValueError(f"ForwardAccumulator tangent {k} has shape {value.shape} but its "
                             f"primal has shape {primal.shape}; tangents must have their "
                             f"primal's shape")
        if isinstance(tangent, Tensor) and tangent.dtype == dtype:
            value = tangent  # keep the tensor: an outer tape may differentiate through it
        self._primals.append(primal)
        self._tracked[id(primal)] = (None, value)

    # -- the recorder protocol ----------------------------------------------------------
    def _auto_watch(self, var: Variable) -> bool:
        return False

    def _add(self, record: Record) -> None:
        """Compute the tangent of `record.output` now, seen only by outer recorders."""
        tapes = STATE.tapes
        k = len(tapes) - 1
        while tapes[k] is not self:
            k -= 1
        outer = tapes[:k]
        tracked = self._tracked
        args = record.inputs
        live = record.live
        out = record.output
        differentiable = False
        for t in outer:
            if not t._observer:
                differentiable = True
                break
        STATE.tapes = outer
        try:
            if differentiable:
                ts = [tracked[id(args[i])][1] for i in live]
                tangent = output_tangent(record.primitive, live, ts, out, None, args,
                                         record.params)
            else:
                ts = []
                for i in live:
                    t = tracked[id(args[i])][1]
                    ts.append(t._value if isinstance(t, Tensor) else t)
                call = (record.primitive, live, ts, out._value, record.residuals,
                        record.values, record.params)
                tracer = STATE.tracer  # tape.function: the tangent rule is a kernel
                tangent = output_tangent(*call) if tracer is None else tracer.call(
                    output_tangent, call, {})
        finally:
            STATE.tapes = tapes
        if tangent is not None:
            key = id(out)

            def forget(_: Any, key: int = key) -> None:
                tracked.pop(key, None)

            tracked[key] = (weakref.ref(out, forget), tangent)

    # -- the context ----------------------------------------------------------------------
    def __enter__(self) -> ForwardAccumulator:
        if self._active:
            raise RuntimeError("this ForwardAccumulator is already active; nest a new one "
                               "instead of entering it twice")
        STATE.tapes.append(self)
        self._active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        tapes = STATE.tapes
        for i in range(len(tapes) - 1, -1, -1):
            if tapes[i] is self:
                del tapes[i]
                break
        self._active = False
        self._notes.clear()

    def jvp(self, primals: Any, unconnected_gradients: str = "none") -> Any:
        """The tangent of each tensor in `primals` (a tensor or a nested structure), in the
        same structure: None for a value no watched primal reaches, or zeros of its shape with
        `unconnected_gradients="zero"`. Looks up what was computed; computes nothing.

        Example:
            >>> import tape
            >>> x = tape.constant(3.0)
            >>> with tape.ForwardAccumulator(x, 1.0) as acc:
            ...     y = x * x
            ...     z = tape.constant(1.0) * 2
            >>> float(acc.jvp(y)), acc.jvp(z), float(acc.jvp(z, unconnected_gradients="zero"))
            (6.0, None, 0.0)
        """
        mode = unconnected_mode(unconnected_gradients)
        flat, rebuild = nest.flatten_with_rebuild(primals)
        results = []
        for p in flat:
            if not isinstance(p, Tensor):
                raise TypeError(f"ForwardAccumulator.jvp expects tensors or Variables, got "
                                f"{type(p).__name__}")
            entry = self._tracked.get(id(p))
            if entry is not None and entry[0] is not None and entry[0]() is not p:
                entry = None  # an id reused by another value (cannot happen while p lives)
            results.append(finish(None if entry is None else entry[1], p, mode))
        return rebuild(results)


def jvp(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[Any, Any]:
    """`(f(*primals), J_f(primals) @ tangents)`, as JAX's `jvp`: one forward pass.

    `primals` is a sequence of positional arguments (arrays are turned into constant
    tensors), `tangents` one tangent per argument of its shape and dtype. The output tangent
    has the output's structure, with zeros where the output does not depend on `primals`.

    Example:
        >>> import numpy as np, tape
        >>> y, t = jvp(tape.sin, [np.array([0.0, np.pi])], [np.array([1.0, 1.0])])
        >>> t.numpy()
        array([ 1., -1.])
    """
    if not isinstance(primals, (list, tuple)) or not isinstance(tangents, (list, tuple)):
        raise TypeError(f"jvp takes primals and tangents as sequences of positional "
                        f"arguments (e.g. jvp(f, [x], [v])), got {type(primals).__name__} and "
                        f"{type(tangents).__name__}")
    args = [nest.map_structure(_as_tensor, p) for p in primals]
    with ForwardAccumulator(list(args), list(tangents)) as acc:
        out = f(*args)
    return out, acc.jvp(nest.map_structure(_as_tensor, out), unconnected_gradients="zero")


def hvp(f: Callable[[Any], Any], x: Any, v: Any) -> Any:
    """The Hessian of the scalar `f` at `x` times `v`, forward-over-reverse: the gradient is
    computed inside a `ForwardAccumulator` that carries `v` on `x` (about two gradients).

    `x` is a tensor, Variable or array, or a nested structure of them (passed to `f` as
    such); `v` has `x`'s structure, shapes and dtypes. The result has `x`'s structure.

    Example:
        >>> import numpy as np, tape
        >>> hvp(lambda x: tape.sum(x ** 3), np.array([1.0, 2.0]), np.array([1.0, 1.0])).numpy()
        array([ 6., 12.])
    """
    x = nest.map_structure(_as_tensor, x)
    with ForwardAccumulator(x, v) as acc:
        with Tape() as t:
            t.watch(x)
            y = f(x)
        g = t.gradient(y, x, unconnected_gradients="zero")
    return acc.jvp(g, unconnected_gradients="zero")


def _as_tensor(x: Any) -> Any:
    return x if isinstance(x, Tensor) else constant(x)
