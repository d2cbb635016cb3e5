"""`Flatten`: every axis but the batch axis in one."""

from __future__ import annotations

from typing import Any

import numpy as np

import tape
from nn.layers.module import Module


class Flatten(Module):
    """Reshape `(batch, d1, d2, ...)` to `(batch, d1 * d2 * ...)`, as Keras' `Flatten`
    (a 1-D input becomes `(batch, 1)`). Recorded (`tape.reshape`): gradients flow.

    Example:
        >>> Flatten()(np.zeros((4, 2, 3))).shape
        (4, 6)
    """

    def call(self, x: Any, training: bool = False) -> Any:
        shape = np.shape(x)
        if not shape:
            raise ValueError(f"{self.name}: cannot flatten a 0-d input; it needs a batch axis")
        return tape.reshape(x, (shape[0], -1) if len(shape) > 1 else (shape[0], 1))
