"""Weight penalties (Keras' `keras.regularizers`): `L1`, `L2`, `L1L2`, and `get` for names.

A layer given a regularizer (`nn.Dense(kernel_regularizer=...)`) reports its penalty through
`Module.regularization_losses()`, recorded on the active tape; `nn.fit` adds their sum to the
loss it minimizes and logs.
"""

from __future__ import annotations

import math
from typing import Any

import tape
from tape import Tensor


class L1L2:
    """The penalty `l1 * sum(|w|) + l2 * sum(w ** 2)` of a weight `w` (a recorded scalar).

    Example:
        >>> import numpy as np
        >>> round(float(L1L2(l1=0.1, l2=0.01)(np.array([1.0, -2.0]))), 6)
        0.35
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        for label, v in (("l1", l1), ("l2", l2)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"regularizer {label} must be a finite number >= 0, got {v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w: Any) -> Tensor:
        terms = [self.l1 * tape.sum(tape.abs(w))] if self.l1 else []
        if self.l2 or not terms:  # (in w's dtype even when both strengths are 0)
            terms.append(self.l2 * tape.sum(tape.square(w)))
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l1={self.l1:g}, l2={self.l2:g})"


class L1(L1L2):
    """`l1 * sum(|w|)` (Keras' default `l1=0.01`).

    Example:
        >>> import numpy as np
        >>> float(L1(0.5)(np.array([1.0, -2.0])))
        1.5
    """

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)


class L2(L1L2):
    """`l2 * sum(w ** 2)` (Keras' default `l2=0.01`; the string `'l2'` means `L2()`).

    Example:
        >>> import numpy as np
        >>> float(L2(0.5)(np.array([1.0, -2.0])))
        2.5
    """

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)


_NAMES = {"l1": L1, "l2": L2}


def get(identifier: str | L1L2 | None) -> L1L2 | None:
    """A regularizer from a Keras name (`'l1'`, `'l2'`: default strengths), an `L1L2`
    (returned as is), or None (no penalty).

    Example:
        >>> get("l2"), get(None)
        (L2(l1=0, l2=0.01), None)
    """
    if identifier is None or isinstance(identifier, L1L2):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    raise ValueError(f"unknown regularizer {identifier!r}: use 'l1', 'l2', "
                     f"nn.regularizers.L1(l1), L2(l2) or L1L2(l1, l2), or None")
