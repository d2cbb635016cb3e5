"""Learning-rate schedules: plain callables from the optimizer's step to a learning rate.

Pass one as `learning_rate`; the optimizer calls it with its `iterations` (0 on the first step)
before each step. A schedule told `steps_per_epoch` counts epochs instead (`step //
steps_per_epoch`), the course's `epoch_num`, so the rate changes once per epoch. Any function
of the step works as well: `Adam(lambda step: 0.1 * 0.95 ** (step // 100))`.

The course's forms, with `epoch` counted from 0 and `lr0` the initial learning rate:

    lr0 / (1 + decay_rate * epoch)     InverseTimeDecay(lr0, decay_rate)
    0.95 ** epoch * lr0                ExponentialDecay(lr0, 0.95)
    k / sqrt(epoch) * lr0              InverseSqrtDecay(lr0, k)   (epoch counted from 1 here)
    staircase (decay every N epochs)   any of the above with decay_steps=N, staircase=True
    piecewise constant                 PiecewiseConstantDecay(boundaries, values)
    cosine                             CosineDecay(lr0, decay_steps, alpha)

Initial learning rates may be 1-D arrays (one per stacked model). Attributes can be changed
between steps; the next evaluation uses them.

Checkpoints (`nn.Babysitter`) save a schedule as its class name and fields, and read the name
back through an allow-list (`tape.registry`), never by importing what a file names. The classes
here are on it; `register(cls)` puts a schedule class of your own on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeVar

import numpy as np

from optim.hyperparams import Value, check_rate
from tape import registry

T = TypeVar("T")


def register(cls: type[T]) -> type[T]:
    """Allow checkpoints to save and restore schedules of class `cls` (a module-level class:
    a dataclass, or one with `get_config()` and optionally `from_config()`). Returns `cls`, so
    it works as a class decorator; see `tape.registry.register`.

    Example:
        >>> import dataclasses
        >>> @register
        ... @dataclasses.dataclass
        ... class Halving:
        ...     initial_learning_rate: float
        ...     def __call__(self, step):
        ...         return self.initial_learning_rate / 2 ** step
        >>> Halving(0.1)(2)
        0.025
    """
    return registry.register(cls)


def _check_positive_int_or_none(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


class _Decay:
    """Shared parts: argument checks and the (epoch or step) count, divided by `decay_steps`."""

    initial_learning_rate: Any
    decay_steps: float
    staircase: bool
    steps_per_epoch: int | None

    def _check(self) -> None:
        self.initial_learning_rate = check_rate("initial_learning_rate",
                                                self.initial_learning_rate)
        if not (math.isfinite(self.decay_steps) and self.decay_steps > 0):
            raise ValueError(f"decay_steps must be finite and > 0, got {self.decay_steps!r}")
        _check_positive_int_or_none("steps_per_epoch", self.steps_per_epoch)

    def _progress(self, step: int) -> float:
        count = step if self.steps_per_epoch is None else step // self.steps_per_epoch
        p = count / self.decay_steps
        return math.floor(p) if self.staircase else p


@dataclass
class _RateDecay(_Decay):
    """A decay with a `decay_rate`: the fields of the inverse-time and exponential forms."""

    initial_learning_rate: Any
    decay_rate: float
    decay_steps: float = 1
    staircase: bool = False
    steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        self._check()
        self.decay_rate = float(check_rate("decay_rate", self.decay_rate))


@register
@dataclass
class InverseTimeDecay(_RateDecay):
    """`lr0 / (1 + decay_rate * epoch / decay_steps)` (the course's "1/(1 + decay_rate*epoch)").

    With `staircase=True` the quotient is floored: the course's scheduled decay
    `lr0 / (1 + decay_rate * floor(epoch / time_interval))` is
    `InverseTimeDecay(lr0, decay_rate, decay_steps=time_interval, staircase=True,
    steps_per_epoch=...)`.

    Example:
        >>> s = InverseTimeDecay(0.2, decay_rate=1.0)
        >>> [round(s(epoch), 4) for epoch in range(4)]
        [0.2, 0.1, 0.0667, 0.05]
    """

    def __call__(self, step: int) -> Value:
        return self.initial_learning_rate / (1 + self.decay_rate * self._progress(step))


@register
@dataclass
class ExponentialDecay(_RateDecay):
    """`lr0 * decay_rate ** (epoch / decay_steps)` (the course's `0.95**epoch * lr0`).

    Example:
        >>> s = ExponentialDecay(0.1, 0.95)
        >>> s(2) == 0.1 * 0.95**2
        True
    """

    def __call__(self, step: int) -> Value:
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


@register
@dataclass
class InverseSqrtDecay(_Decay):
    """`k * lr0 / sqrt(epoch + 1)`: the course's `k/sqrt(epoch_num) * lr0`, whose `epoch_num`
    counts from 1 (it is undefined at 0) while the optimizer counts from 0.

    Example:
        >>> s = InverseSqrtDecay(0.1, k=2.0)
        >>> s(0), s(3)
        (0.2, 0.1)
    """

    initial_learning_rate: Any
    k: float = 1.0
    decay_steps: float = 1
    staircase: bool = False
    steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        self._check()
        self.k = float(check_rate("k", self.k))

    def __call__(self, step: int) -> Value:
        return self.k * self.initial_learning_rate / math.sqrt(self._progress(step) + 1)


@register
@dataclass
class CosineDecay(_Decay):
    """Cosine decay from `lr0` to `alpha * lr0` over `decay_steps`, then constant (Keras):
    `lr0 * ((1 - alpha) * (1 + cos(pi * min(epoch, decay_steps) / decay_steps)) / 2 + alpha)`.

    Example:
        >>> s = CosineDecay(0.1, decay_steps=10)
        >>> s(0), round(s(5), 12), s(10), s(20)
        (0.1, 0.05, 0.0, 0.0)
    """

    initial_learning_rate: Any
    decay_steps: float
    alpha: float = 0.0
    steps_per_epoch: int | None = None
    staircase: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._check()
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")

    def __call__(self, step: int) -> Value:
        cosine = 0.5 * (1 + math.cos(math.pi * min(self._progress(step), 1.0)))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


@register
@dataclass
class PiecewiseConstantDecay:
    """`values[i]` while `boundaries[i-1] < epoch <= boundaries[i]` (Keras' rule), the last
    value after the last boundary.

    Example:
        >>> s = PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])
        >>> s(10), s(11), s(25)
        (0.1, 0.01, 0.001)
    """

    boundaries: list[int]
    values: list[Any]
    steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        self.boundaries = [int(b) for b in self.boundaries]
        if any(b2 <= b1 for b1, b2 in pairwise(self.boundaries)):
            raise ValueError(f"boundaries must increase strictly, got {self.boundaries}")
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(f"need len(boundaries) + 1 = {len(self.boundaries) + 1} values, "
                             f"got {len(self.values)}")
        self.values = [check_rate(f"values[{i}]", v) for i, v in enumerate(self.values)]
        _check_positive_int_or_none("steps_per_epoch", self.steps_per_epoch)

    def __call__(self, step: int) -> Value:
        count = step if self.steps_per_epoch is None else step // self.steps_per_epoch
        for boundary, value in zip(self.boundaries, self.values, strict=False):
            if count <= boundary:
                return value
        return self.values[-1]


__all__ = ["CosineDecay", "ExponentialDecay", "InverseSqrtDecay", "InverseTimeDecay",
           "PiecewiseConstantDecay", "register"]
