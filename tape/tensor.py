"""`Tensor` (an immutable value produced by ops) and `Variable` (mutable, trainable state).

This module is the bottom of the engine: it imports no other part of it but the recording
state, `tape.notes` and the value checks (`tape.values`). Tensor operators are implemented by
`tape.ops` and the NumPy protocols by `tape._interop`, which sit above it; the package connects
them once (`connect`).
"""

from __future__ import annotations

import itertools
import operator
import reprlib
from typing import Any

import numpy as np

from tape._state import STATE
from tape.notes import note_exit
from tape.values import (
    NUMERIC_KINDS,
    ArrayHolder,
    as_numeric_array,
    not_numeric,
    overflow,
    unusable,
)

_variable_names = itertools.count()

# Set by `connect` when the package loads: the modules implementing the operators and NumPy
# protocols of tensors (they import this module, so it cannot import them).
_ops: Any = None
_interop: Any = None


def connect(ops: Any, interop: Any) -> None:
    """Implement Tensor's operators with `ops` (`tape.ops`) and its NumPy protocols with
    `interop` (`tape._interop`). `tape/__init__` calls it once, before anything runs.

    Example:
        >>> import tape
        >>> _ops is tape.ops
        True
    """
    global _ops, _interop
    _ops, _interop = ops, interop


_F64 = np.dtype(np.float64)


def _value_of(x: Any) -> Any:
    return x._value if isinstance(x, Tensor) else x


def _converted(x: Tensor, what: str) -> None:
    """`x` leaves for Python/NumPy (`what`): `tape.function`'s tracer refuses traced values."""
    tracer = STATE.tracer
    if tracer is not None:
        tracer.converted(x, what)


def _write_error(var: Variable, what: str, value: Any, err: Exception) -> Exception:
    """The error for a value that `var.assign`/`assign_add`/`assign_sub` could not write."""
    who = f"Variable '{var.name}'.{what}: the value"
    into = f"the Variable (dtype {var.dtype}, shape {var.shape})"
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        return type(e)(f"{unusable(who, value, e)} (writing into {into})")
    if arr.dtype.kind not in NUMERIC_KINDS:
        return TypeError(f"{not_numeric(who, value, arr.dtype)}; writing into {into}")
    return type(err)(f"{who} of shape {arr.shape} and dtype {arr.dtype} cannot be written into "
                     f"{into}: {err}")


class Tensor:
    """An immutable array value; operations on tensors are recorded by active tapes.

    Example:
        >>> import tape
        >>> t = tape.constant([1.0, 2.0])
        >>> (t * 3).numpy()
        array([3., 6.])
    """

    __slots__ = ("_value", "__weakref__")
    __array_priority__ = 100.0
    _is_variable = False

    def __init__(self, value: Any, dtype: Any = None) -> None:
        self._value = as_numeric_array(value, dtype, "tape.constant: value", copy=None)

    # -- inspection ---------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The value as a NumPy array (or NumPy scalar for 0-d results)."""
        if STATE.tapes:  # leaving the tape: noted for Tape.explain
            _converted(self, "numpy()")
            note_exit("numpy()", self, self._value)
        return self._value

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return int(self._value.size)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy:
            out = np.array(self._value, dtype=dtype, copy=True)
        else:
            out = np.asarray(self._value, dtype=dtype)
        if STATE.tapes:
            _converted(self, "np.asarray()")
            note_exit("np.asarray", self, out)
        return out

    def __repr__(self) -> str:
        return (f"<tape.Tensor shape={self.shape} dtype={self.dtype.name} "
                f"numpy={np.array2string(np.asarray(self._value), separator=', ')}>")

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._value)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        if STATE.tapes:
            _converted(self, "bool() (an `if` or `while` on a tensor)")
        return bool(self._value)

    def __float__(self) -> float:
        if STATE.tapes:
            _converted(self, "float()")
        return float(self._value)

    def __int__(self) -> int:
        if STATE.tapes:
            _converted(self, "int()")
        return int(self._value)

    def item(self, *args: Any) -> Any:
        """The value of a one-element tensor as a Python number (as `ndarray.item`).

        Example:
            >>> import tape
            >>> tape.constant([2.5]).item()
            2.5
        """
        if STATE.tapes:
            _converted(self, "item()")
        return self._value.item(*args)

    def tolist(self) -> Any:
        """The value as nested Python lists of numbers (a number for a 0-d tensor).

        Example:
            >>> import tape
            >>> tape.constant([[1.0, 2.0]]).tolist()
            [[1.0, 2.0]]
        """
        if STATE.tapes:
            _converted(self, "tolist()")
        return self._value.tolist()

    def __format__(self, spec: str) -> str:
        """`f"{loss:.3f}"` formats the value as NumPy formats it (0-d tensors as numbers);
        an empty spec gives `str` (the repr).

        Example:
            >>> import tape
            >>> f"{tape.constant(0.123456):.3f}"
            '0.123'
        """
        if not spec:
            return str(self)
        if STATE.tapes:
            _converted(self, "format()")
        value = self._value
        return format(value.item() if value.ndim == 0 else value, spec)

    __hash__ = object.__hash__

    # -- arithmetic (recorded) ----------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ops.subtract(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.subtract(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ops.multiply(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.multiply(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.divide(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.divide(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.negative(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.index(self, index)

    # -- comparisons: not differentiable, plain boolean arrays -------------------------
    def __lt__(self, other: Any) -> Any:
        if STATE.tracer is not None:
            return STATE.tracer.compare(operator.lt, self, other)
        return self._value < _value_of(other)

    def __le__(self, other: Any) -> Any:
        if STATE.tracer is not None:
            return STATE.tracer.compare(operator.le, self, other)
        return self._value <= _value_of(other)

    def __gt__(self, other: Any) -> Any:
        if STATE.tracer is not None:
            return STATE.tracer.compare(operator.gt, self, other)
        return self._value > _value_of(other)

    def __ge__(self, other: Any) -> Any:
        if STATE.tracer is not None:
            return STATE.tracer.compare(operator.ge, self, other)
        return self._value >= _value_of(other)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        if STATE.tracer is not None:
            return STATE.tracer.compare(operator.eq, self, other)
        return self._value == _value_of(other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        if STATE.tracer is not None:
            return STATE.tracer.compare(operator.ne, self, other)
        return self._value != _value_of(other)

    # -- method forms of common ops -----------------------------------------------------
    @property
    def T(self) -> Tensor:
        return _ops.transpose(self)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _ops.min(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.reshape(self, shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops.transpose(self, axes or None)

    def astype(self, dtype: Any) -> Tensor:
        return _ops.cast(self, dtype)

    # -- NumPy interop: NumPy functions on tensors are recorded ------------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _interop.dispatch_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _interop.dispatch_function(func, args, kwargs)


ArrayHolder.register(Tensor)


class Variable(Tensor):
    """Mutable state: a named array that ops read and optimizers update in place.

    Trainable variables read inside a `Tape` are watched automatically. `assign`,
    `assign_add` and `assign_sub` write in place and are never recorded. In-place operators
    (`w -= lr * g`, `w += ...`, `w *= ...`) raise `RuntimeError` naming the method to use, as
    TensorFlow's Variables do (they would rebind the name to a new Tensor).

    A Variable holds booleans or numbers: None, text, Python objects and ragged lists raise
    at creation and at assignment. Only real floating-point Variables are differentiable;
    complex ones may hold state, but asking for their gradient is a `TypeError` (TensorFlow
    differentiates complex values; tape's rules are written and checked for real ones only).
    A float16 Variable refuses a value that would overflow to inf (`OverflowError`).

    Example:
        >>> import tape
        >>> w = tape.Variable(0.0)
        >>> w.assign_sub(0.5).numpy()
        array(-0.5)
    """

    __slots__ = ("trainable", "name", "_version")
    _is_variable = True

    def __init__(self, initial_value: Any, dtype: Any = None, trainable: bool = True,
                 name: str | None = None) -> None:
        self.name = name if name is not None else f"Variable_{next(_variable_names)}"
        who = f"Variable '{name}': initial_value" if name is not None else "Variable: initial_value"
        self._value = as_numeric_array(initial_value, dtype, who, copy=True)
        self.trainable = bool(trainable)
        self._version = 0

    def numpy(self) -> np.ndarray:
        """A copy of the current value (later assignments do not change it)."""
        out = self._value.copy()
        if STATE.tapes:
            _converted(self, "numpy()")
            note_exit("numpy()", self, out)
        return out

    def value(self) -> Tensor:
        """The current value as a recorded `Tensor` (a snapshot: later assignments leave it)."""
        return _ops.identity(self)

    read_value = value

    def __repr__(self) -> str:
        return (f"<tape.Variable '{self.name}' shape={self.shape} dtype={self.dtype.name} "
                f"numpy={np.array2string(self._value, separator=', ')}>")

    def _write(self, ufunc: Any, value: Any, what: str) -> Variable:
        if STATE.tracer is not None:  # tape.function: a kernel of the traced program
            return STATE.tracer.call(Variable._write, (self, ufunc, value, what), {})  # type: ignore[no-any-return]
        arr = self._value
        kind = value.__class__
        # A value of the variable's own dtype and shape (or a Python float for float64) needs
        # no check or cast: written directly (the same bits as the checked path below).
        if kind is float:
            fast = arr.dtype is _F64 and (ufunc is not None or not arr.ndim)
        elif kind is np.ndarray:
            fast = value.dtype is arr.dtype and value.shape == arr.shape and arr.dtype.char != "e"
        else:
            fast = False
            value = _value_of(value)
        if not fast:
            if arr.dtype.char == "e":  # float16: a range training values can leave
                self._write_float16(ufunc, value, what)
            else:
                self._apply(arr, ufunc, value, what)
        elif ufunc is None:
            arr[...] = value
        else:
            ufunc(arr, value, out=arr)
        self._version += 1
        return self

    def _apply(self, out: np.ndarray, ufunc: Any, value: Any, what: str) -> None:
        try:
            if ufunc is None:
                if np.shape(value) != out.shape:
                    raise ValueError(f"shape {np.shape(value)} differs from the variable's "
                                     f"shape {out.shape}")
                np.copyto(out, value, casting="same_kind")
            else:
                ufunc(out, value, out=out, casting="same_kind")
        except (ValueError, TypeError) as e:
            raise _write_error(self, what, value, e) from None

    def _write_float16(self, ufunc: Any, value: Any, what: str) -> None:
        """Write through a copy, so that a write that overflows leaves the value unchanged."""
        new = self._value.copy()
        with np.errstate(over="raise"):
            try:
                self._apply(new, ufunc, value, what)
            except FloatingPointError:
                verb = {"assign": "writing", "assign_add": "adding"}.get(what, "subtracting")
                raise overflow(f"Variable '{self.name}'.{what}:", f"{verb} {reprlib.repr(value)}",
                                "; the Variable is unchanged") from None
        np.copyto(self._value, new)

    def assign(self, value: Any) -> Variable:
        """Set the value in place (same shape; dtype cast with NumPy's same-kind rule).

        The value must be numbers; for a float16 Variable, a value that would overflow to inf
        raises `OverflowError` and leaves the Variable unchanged.

        Example:
            >>> w = Variable([1.0, 2.0])
            >>> w.assign([3.0, 4.0]).numpy()
            array([3., 4.])
        """
        return self._write(None, value, "assign")

    def assign_add(self, delta: Any) -> Variable:
        """Add `delta` in place (broadcast to the variable's shape; same-kind cast).

        Example:
            >>> Variable([1.0, 2.0]).assign_add(0.5).numpy()
            array([1.5, 2.5])
        """
        return self._write(np.add, delta, "assign_add")

    def assign_sub(self, delta: Any) -> Variable:
        """Subtract `delta` in place (broadcast to the variable's shape; same-kind cast), as
        an optimizer step does.

        Example:
            >>> Variable([1.0, 2.0]).assign_sub([0.5, 0.5]).numpy()
            array([0.5, 1.5])
        """
        return self._write(np.subtract, delta, "assign_sub")


def _refuse_augmented(op: str, method: str) -> Any:
    """An in-place operator for Variable that raises with the fix, as TensorFlow's does:
    `w -= lr * g` would otherwise rebind `w` to a new Tensor, leave the Variable unchanged,
    and make the next step fail far from here."""
    fix = (f"w.{method}(value)" if method else f"w.assign(w {op} value)")

    def refuse(self: Variable, other: Any) -> Any:
        raise RuntimeError(
            f"`w {op}= value` on Variable '{self.name}' is not supported: it would rebind the "
            f"name to a new Tensor and leave the Variable unchanged. Use {fix} to update the "
            f"Variable in place (never recorded on a tape), or `out = w {op} value` for a new "
            f"Tensor")
    return refuse


for _dunder, _op, _method in (("__iadd__", "+", "assign_add"), ("__isub__", "-", "assign_sub"),
                              ("__imul__", "*", ""), ("__itruediv__", "/", ""),
                              ("__ipow__", "**", ""), ("__imatmul__", "@", "")):
    setattr(Variable, _dunder, _refuse_augmented(_op, _method))


def constant(value: Any, dtype: Any = None) -> Tensor:
    """A `Tensor` holding `value` (NumPy's dtype rules; `dtype` overrides).

    `value` must be booleans or numbers: None, text, Python objects and ragged nested lists
    raise with a message saying which.

    Example:
        >>> constant([1, 2], dtype="float32").dtype
        dtype('float32')
    """
    return Tensor(value, dtype=dtype)
