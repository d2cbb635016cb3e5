"""tape: reverse-mode automatic differentiation over NumPy with a TensorFlow-style tape.

Example:
    >>> import tape
    >>> w = tape.Variable(0.0)
    >>> for _ in range(200):
    ...     with tape.Tape() as t:
    ...         cost = w**2 - 10*w + 25
    ...     w.assign_sub(0.1 * t.gradient(cost, w))   # doctest: +ELLIPSIS
    <tape.Variable ...>
    >>> round(float(w), 6)
    5.0
"""

from typing import Any

import numpy as np

from tape import _interop, config, ops, tensor
from tape._state import STATE
from tape.custom_gradient import custom_gradient
from tape.explain import Explanation
from tape.forward import ForwardAccumulator, hvp, jvp
from tape.gradcheck import check_gradients
from tape.gradient_tape import Tape
from tape.jvpcheck import check_jvps
from tape.notes import note_exit
from tape.ops import *  # noqa: F403
from tape.ops import __all__ as _ops_all
from tape.primitive import PRIMITIVES, MissingGradientRule, Primitive
from tape.stats import TapeStats
from tape.tensor import Tensor, Variable, constant
from tape.trace import Function, TracingError, function, kernel, tracing

tensor.connect(ops, _interop)  # tensors' operators and NumPy protocols


def stop_gradient(x: Any) -> Tensor:
    """The same value, with no gradient flowing back through it.

    Example:
        >>> import tape
        >>> w = tape.Variable(2.0)
        >>> with tape.Tape() as t:
        ...     y = w * tape.stop_gradient(w)
        >>> float(t.gradient(y, w))
        2.0
    """
    if not isinstance(x, Tensor):
        return Tensor(np.asarray(x))
    value = x._value
    if isinstance(x, Variable):
        tracer = STATE.tracer  # tape.function: the copy is a kernel (the value changes)
        value = value.copy() if tracer is None else tracer.call(np.copy, (x,), {})
    out = Tensor(value)
    if STATE.tapes:  # noted so that Tape.explain can name it
        note_exit("stop_gradient", x, out)
    return out


__all__ = [
    "Explanation", "ForwardAccumulator", "Function", "MissingGradientRule", "PRIMITIVES",
    "Primitive", "Tape", "TapeStats", "Tensor", "TracingError", "Variable", "check_gradients",
    "check_jvps", "config", "constant", "custom_gradient", "function", "hvp", "jvp", "kernel",
    "stop_gradient", "tracing",
    *_ops_all,
]
