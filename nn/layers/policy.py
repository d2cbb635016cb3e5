"""How `fit` and `evaluate` train and score a model: a `TrainingPolicy`, asked for by
`Module.training_policy()`.

A plain model has the default policy: one scalar loss per batch, one number per metric, and a
non-finite loss stops training. A stacked population (`nn.Population`) answers with its own
(`nn.layers.population.MemberPolicy`): the loss is the sum of the member means, metrics are
one value per member, and a member whose loss or gradients turn non-finite is frozen while the
others go on. Training code asks the policy; it never checks what kind of model it has.

Example:
    >>> import numpy as np, nn, optim
    >>> policy = nn.Dense(1, seed=0).training_policy()
    >>> policy.per_member, policy.examples_axis(np.zeros((4, 2)))
    (False, 0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tape
from tape import Tape, Variable

__all__ = ["TrainingPolicy"]

_NONE = np.zeros(0, int)


@tape.kernel  # under tape.function: checked again on every replay, before the update
def finite_loss(value: Any) -> float:
    """The scalar loss `value` as a float; `FloatingPointError` if it is NaN or infinite.

    Example:
        >>> finite_loss(np.float32(0.5))
        0.5
    """
    v = float(value)
    if not math.isfinite(v):
        raise FloatingPointError(f"the loss is {v}; no update was applied")
    return v


class TrainingPolicy:
    """The training policy of one model (the default of every `Module`).

    `per_member` says whether values come one per stacked member (arrays of shape (K,)) rather
    than as numbers. Subclasses (a population's) override the methods below.

    Example:
        >>> import nn, optim
        >>> model = nn.Dense(1, seed=0)
        >>> value, _ = model.training_policy().train_step(
        ...     model, np.ones((4, 2)), np.zeros((4, 1)), nn.mean_squared_error, optim.SGD(0.1))
        >>> isinstance(value, float)
        True
    """

    per_member = False

    def examples_axis(self, x: Any) -> int:
        """The axis of `x` that holds the examples (0 for one model).

        Example:
            >>> TrainingPolicy().examples_axis(np.zeros((3, 2)))
            0
        """
        return 0

    def check_optimizer(self, optimizer: Any) -> None:
        """Refuse an optimizer that cannot train the model (one model takes any).

        Example:
            >>> TrainingPolicy().check_optimizer(None)
        """

    def train_step(self, model: Any, x: Any, y: Any, loss: Callable[..., Any],
                   optimizer: Any, variables: Sequence[Variable] | None = None
                   ) -> tuple[Any, Any]:
        """Forward (`training=True`) and loss on a tape, gradients, `apply_gradients`;
        returns `(loss value, outputs)`. A non-finite loss raises `FloatingPointError`
        before any variable changes.

        Example:
            >>> import nn, optim
            >>> TrainingPolicy().train_step(nn.Dense(1, seed=0), np.ones((2, 2)),
            ...                             np.zeros((2, 1)), nn.mean_squared_error,
            ...                             optim.SGD(0.1))[0] >= 0
            True
        """
        with Tape() as t:
            outputs = model(x, training=True)
            value = loss(outputs, y)
            for penalty in model.regularization_losses():  # weight penalties (Keras' losses)
                value = value + penalty
        if np.ndim(value) != 0:
            raise ValueError(f"the loss must be a scalar (use reduction='mean'); got shape "
                             f"{np.shape(value)}")
        v = finite_loss(value)
        if variables is None:
            variables = model.trainable_variables
        grads = t.gradient(value, list(variables))
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return v, outputs

    def loss_value(self, loss: Callable[..., Any], outputs: Any, labels: Any, *,
                   shared: bool) -> Any:
        """The loss of a batch as it is logged: a number (an array (K,) per member).

        Example:
            >>> import nn
            >>> TrainingPolicy().loss_value(nn.mean_squared_error, np.ones(2), np.zeros(2),
            ...                             shared=True)
            1.0
        """
        return float(loss(outputs, labels))

    def metric_values(self, metrics: Sequence[tuple[str, Callable[..., Any]]], outputs: Any,
                      labels: Any, *, shared: bool) -> dict[str, Any]:
        """Every metric on one batch, by name.

        Example:
            >>> import nn
            >>> TrainingPolicy().metric_values([("accuracy", nn.accuracy)],
            ...     np.array([[1.0, 0.0]]), np.array([0]), shared=True)
            {'accuracy': 1.0}
        """
        out = np.asarray(outputs)
        return {n: fn(out, labels) for n, fn in metrics}

    def frozen_count(self) -> int:
        """How many members are frozen (never any for one model).

        Example:
            >>> TrainingPolicy().frozen_count()
            0
        """
        return 0

    def newly_frozen(self) -> np.ndarray:
        """The members the last `train_step` froze (none for one model).

        Example:
            >>> TrainingPolicy().newly_frozen().size
            0
        """
        return _NONE

    def all_frozen(self) -> bool:
        """Whether nothing is left to train (never, for one model).

        Example:
            >>> TrainingPolicy().all_frozen()
            False
        """
        return False


DEFAULT = TrainingPolicy()
