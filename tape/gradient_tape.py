"""`Tape`: records operations on watched values and computes gradients by reverse sweep."""

from __future__ import annotations

import reprlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tape import explain as _explain
from tape import jacobians as _jacobians
from tape import nest
from tape import stats as _stats
from tape._observe import Observer, observing, recording_tapes
from tape._state import STATE
from tape.backprop import backprop, finish, unconnected_mode
from tape.notes import paused_note
from tape.records import Record
from tape.tensor import Tensor, Variable


class Tape:
    """Records operations on watched tensors and trainable variables inside a `with` block.

    Trainable variables read inside the block are watched automatically
    (`watch_accessed_variables=True`); other tensors need `watch`. A non-persistent tape
    releases everything it holds after its one `gradient()` call. Tapes nest: the backward pass
    of an inner tape is recorded by an outer one, which gives higher-order derivatives.

    A tape is a `tape.records.Recorder`: while it records, every primitive call with an
    input it tracks becomes a `Record` in its list.

    Example:
        >>> import tape
        >>> w = tape.Variable(3.0)
        >>> with tape.Tape() as t:
        ...     y = w ** 2
        >>> float(t.gradient(y, w))
        6.0
    """

    _observer = False

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._records: list[Record] | None = []
        self._tracked: dict[int, Any] = {}
        self._watched: list[Any] = []
        self._leaves: set[int] = set()
        self._notes: list[tuple[Any, ...]] = []  # values that left the tape, for `explain`
        self._recording = False
        self._entered = False  # set by `with`: a tape used without it records nothing

    # -- recording state ----------------------------------------------------------------
    def __enter__(self) -> Tape:
        if self._records is None:
            raise RuntimeError("this non-persistent Tape was already used for gradient(); "
                               "create a new Tape")
        self._entered = True
        self._push()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._recording:
            self._pop()

    def _push(self) -> None:
        STATE.tapes.append(self)
        self._recording = True

    def _pop(self) -> None:
        tapes = STATE.tapes
        for i in range(len(tapes) - 1, -1, -1):
            if tapes[i] is self:
                del tapes[i]
                break
        self._recording = False

    @contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Temporarily stop recording on this tape (inside its `with` block).

        Example:
            >>> import tape
            >>> w = tape.Variable(1.0)
            >>> with tape.Tape() as t:
            ...     with t.stop_recording():
            ...         y = w * 2
            >>> t.gradient(y, w) is None
            True
        """
        if not self._recording:
            raise RuntimeError("stop_recording() works only while the tape is recording: use it "
                               "inside the tape's `with` block")
        self._pop()
        # An observer in the tape's place notes what runs meanwhile, for `explain`.
        notes = self._notes
        paused = Observer(self._tracked, self._watch_accessed, notes=notes,
                          on_op=lambda rec: notes.append(paused_note(rec)))
        try:
            with observing(paused):
                yield
        finally:
            if self._records is not None:  # not released by a gradient() call meanwhile
                self._push()

    def reset(self) -> None:
        """Forget everything recorded and watched so far; recording continues if active."""
        if self._records is None:
            self._records = []
        self._records.clear()
        self._tracked.clear()
        self._watched.clear()
        self._leaves.clear()
        self._notes.clear()

    # -- watching -----------------------------------------------------------------------
    def watch(self, tensor: Any) -> None:
        """Track a tensor or Variable (or a nested list/tuple/dict of them) for gradients."""
        for x in nest.flatten(tensor):
            if not isinstance(x, Tensor):
                raise TypeError(f"Tape.watch expects tensors or Variables, got "
                                f"{type(x).__name__}; wrap arrays with tape.constant(...) first")
            _require_floating(x, "watch")
            if id(x) not in self._tracked:
                self._tracked[id(x)] = x
                self._leaves.add(id(x))
                if x._is_variable:
                    self._watched.append(x)

    def _auto_watch(self, var: Variable) -> bool:
        if var._value.dtype.kind not in "fc":
            return False
        self._tracked[id(var)] = var
        self._leaves.add(id(var))
        self._watched.append(var)
        return True

    def _add(self, record: Record) -> None:
        self._records.append(record)  # type: ignore[union-attr]  # None only once released
        out = record.output
        self._tracked[id(out)] = out

    def watched_variables(self) -> tuple[Any, ...]:
        """The Variables this tape watches, in the order they were first watched."""
        return tuple(self._watched)

    # -- gradients ----------------------------------------------------------------------
    def gradient(self, target: Any, sources: Any, output_gradients: Any = None,
                 unconnected_gradients: str = "none") -> Any:
        """d(sum of target)/d(source) for each source, in the structure of `sources`.

        `target` may be a tensor or a nested structure of tensors (their gradients add up);
        `output_gradients` weights the target (same structure and shapes). A source that the
        target does not depend on gets `None`, or zeros with `unconnected_gradients="zero"`.
        A tape that was never entered (`with`) recorded nothing: `RuntimeError` (TensorFlow
        raises too, with a message about non-persistent tapes).
        """
        if self._records is None:
            raise RuntimeError("gradient() was already called on this non-persistent Tape, which "
                               "released its records; use Tape(persistent=True) to compute "
                               "several gradients from one recording")
        if not self._entered:
            raise RuntimeError(_NEVER_ENTERED.format(what="gradient()"))
        mode = unconnected_mode(unconnected_gradients)
        flat_sources, rebuild = nest.flatten_with_rebuild(sources)
        for s in flat_sources:
            if not isinstance(s, Tensor):
                raise TypeError(f"gradient sources must be tensors or Variables, got "
                                f"{type(s).__name__}")
            if s._value.dtype.kind != "f":
                _require_floating(s, "gradient")
        was_recording = self._recording
        if was_recording:
            self._pop()
        try:
            differentiable = recording_tapes()
            seeds = _seeds(target, output_gradients, differentiable)
            source_ids = {id(s) for s in flat_sources}
            grads = backprop(self._records, seeds, source_ids, differentiable,
                             prune=not self._leaves <= source_ids)
        finally:
            if not self._persistent:
                self._records = None
                self._tracked = {}
                self._leaves = set()
                self._notes = []
            elif was_recording:
                self._push()
        return rebuild([finish(grads[id(s)], s, mode) for s in flat_sources])

    def jacobian(self, target: Any, sources: Any, unconnected_gradients: str = "none",
                 parallel_iterations: int | None = None, experimental_use_pfor: bool = True,
                 mode: str = "reverse") -> Any:
        """d target[i...] / d source[j...] for each source: shape `target.shape + source.shape`.

        Needs `persistent=True`. `mode="reverse"` (TensorFlow's way) runs one gradient per
        target element, `mode="forward"` one forward sweep (JVP rules) per source element,
        `mode="auto"` the one with fewer passes. See `tape.jacobians`.
        `parallel_iterations` and `experimental_use_pfor` are accepted for TensorFlow
        compatibility and have no effect here: the rows are always computed one by one.

        Example:
            >>> import numpy as np, tape
            >>> x = tape.Variable([1.0, 2.0])
            >>> with tape.Tape(persistent=True) as t:
            ...     y = x * x
            >>> t.jacobian(y, x).numpy()
            array([[2., 0.],
                   [0., 4.]])
        """
        return _jacobians.jacobian(self, target, sources, unconnected_gradients, mode)

    def batch_jacobian(self, target: Any, source: Any, unconnected_gradients: str = "none",
                       parallel_iterations: int | None = None, experimental_use_pfor: bool = True
                       ) -> Any:
        """Per-example Jacobians: shape `(batch,) + target.shape[1:] + source.shape[1:]`.

        Assumes `target[b]` depends only on `source[b]`. Needs `persistent=True`.
        `parallel_iterations` and `experimental_use_pfor` are accepted for TensorFlow
        compatibility and have no effect here.

        Example:
            >>> import numpy as np, tape
            >>> x = tape.Variable(np.ones((4, 3)))
            >>> with tape.Tape(persistent=True) as t:
            ...     y = tape.concatenate([x, 2 * x], axis=1)
            >>> t.batch_jacobian(y, x).shape
            (4, 6, 3)
        """
        return _jacobians.batch_jacobian(self, target, source, unconnected_gradients)

    def explain(self, target: Any, source: Any) -> str:
        """Why `gradient(target, source)` is None, in words (or that it is connected).

        Example:
            >>> import tape
            >>> w = tape.Variable(1.0, name="w")
            >>> with tape.Tape() as t:
            ...     y = tape.stop_gradient(w) * 2
            >>> t.explain(y, w).reason
            'stop_gradient'
        """
        return _explain.explain(self, target, source)

    def stats(self) -> Any:
        """How much this tape holds: records, bytes of the arrays they keep alive, tracked values.

        Recording in a loop into a tape that is never released shows here as growth.

        Example:
            >>> import tape
            >>> w = tape.Variable([1.0, 2.0])
            >>> with tape.Tape(persistent=True) as t:
            ...     y = w * 3
            >>> t.stats().records
            1
        """
        return _stats.tape_stats(self)


_NEVER_ENTERED = (
    "{what} on a Tape that was never entered: a tape records only inside its `with` block, "
    "so this one recorded nothing. Write `with tape.Tape() as t:` and compute the target "
    "inside the block (t = tape.Tape() alone does not start recording)")


def _require_floating(x: Any, what: str) -> None:
    if x.dtype.kind != "f":
        name = f"Variable '{x.name}'" if x._is_variable else "tensor"
        if x.dtype.kind == "c":  # TensorFlow differentiates complex tensors; tape does not
            raise TypeError(f"{what}: {name} has dtype {x.dtype}: tape does not differentiate "
                            f"complex tensors (its gradient rules are written and checked for "
                            f"real values only). Hold the real and imaginary parts in two "
                            f"floating-point Variables")
        raise TypeError(f"{what}: {name} has dtype {x.dtype}, which is not differentiable; only "
                        f"floating-point tensors have gradients (cast it with .astype('float64') "
                        f"or tape.cast if you meant it to)")


def _ones_like(value: Any) -> Any:
    return value.dtype.type(1) if value.ndim == 0 else np.ones(value.shape, value.dtype)


def _flatten_like(structure: Any, values: Any) -> list[Any]:
    """Flatten `values` down to the leaves of `structure` (array-likes inside stay whole)."""
    if isinstance(structure, (list, tuple)):
        if not isinstance(values, (list, tuple)) or len(values) != len(structure):
            raise ValueError(f"output_gradients must match the target's structure: expected a "
                             f"sequence of {len(structure)}, got {type(values).__name__}")
        return [leaf for s, v in zip(structure, values) for leaf in _flatten_like(s, v)]
    if isinstance(structure, dict):
        if not isinstance(values, dict) or set(values) != set(structure):
            raise ValueError("output_gradients must be a dict with the target's keys")
        return [leaf for k in structure for leaf in _flatten_like(structure[k], values[k])]
    return [values]


def _seeds(target: Any, output_gradients: Any, differentiable: bool) -> dict[int, Any]:
    if output_gradients is None and isinstance(target, Tensor):
        return {id(target): _ones_like(target._value)}
    targets = nest.flatten(target)
    if output_gradients is None:
        weights: list[Any] = [None] * len(targets)
    else:
        weights = _flatten_like(target, output_gradients)
    seeds: dict[int, Any] = {}
    for t, w in zip(targets, weights):
        if not isinstance(t, Tensor):
            continue
        if w is None:
            g: Any = _ones_like(t._value)
        else:
            value = w._value if isinstance(w, Tensor) else np.asarray(w)
            if value.dtype.kind not in "biuf":
                raise TypeError(f"output_gradients: {reprlib.repr(w)} has dtype {value.dtype}, "
                                f"which is not a gradient; pass real numbers of the target's "
                                f"shape {t.shape} (dtype {t.dtype})")
            if value.shape != t.shape:
                raise ValueError(f"output_gradients shape {value.shape} does not match the "
                                 f"target's shape {t.shape}")
            g = w if differentiable and isinstance(w, Tensor) else value
        prev = seeds.get(id(t))
        seeds[id(t)] = g if prev is None else prev + g
    return seeds
