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

from tape.gradcheck import check_gradients
from tape.gradient_tape import Tape
from tape.ops import *  # noqa: F403
from tape.ops import __all__ as _ops_all
from tape.primitive import PRIMITIVES, MissingGradientRule, Primitive
from tape.tensor import Tensor, Variable, constant


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
    value = x._value if isinstance(x, Tensor) else np.asarray(x)
    return Tensor(value.copy() if isinstance(x, Variable) else value)


__all__ = [
    "MissingGradientRule", "PRIMITIVES", "Primitive", "Tape", "Tensor", "Variable",
    "check_gradients", "constant", "stop_gradient", *_ops_all,
]
