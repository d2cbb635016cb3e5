"""Search-space distributions, each with its own warped unit coordinate.

Every distribution maps a value to a unit coordinate ``u`` in ``[0, 1]`` on the scale that
matters (``to_unit``) and back (``from_unit``). Sampling draws ``u`` uniformly, coarse-to-fine
zooms into a sub-box of ``u`` (``restrict``), and plots draw on the same scale.

>>> space = {"lr": LogUniform(1e-4, 1), "beta": OneMinusLogUniform(0.9, 0.999), "layers": 3}
>>> as_space(space)["layers"]
Fixed(value=3)
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from .codec import decode_value, encode_value

__all__ = [
    "Distribution", "Uniform", "LogUniform", "IntUniform", "LogIntUniform", "Choice",
    "OneMinusLogUniform", "Fixed", "as_space", "space_to_dict", "space_from_dict",
]


class Distribution(ABC):
    """Base class: a one-dimensional distribution on its own warped unit scale.

    >>> d = Uniform(0, 10)
    >>> d.from_unit(0.5), d.to_unit(2.5)
    (5.0, 0.25)
    """

    #: how plots draw the axis: "linear", "log", "one_minus_log", "categorical" or "fixed"
    scale: ClassVar[str] = "linear"

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """The value's coordinate in [0, 1] on this distribution's own scale."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at unit coordinate ``u`` (the inverse of ``to_unit``)."""

    @abstractmethod
    def restrict(self, lo_u: float, hi_u: float) -> Distribution:
        """The same kind of distribution on the sub-box ``[lo_u, hi_u]`` of unit coordinates."""

    def sample(self, rng: np.random.Generator) -> Any:
        """One draw: ``from_unit`` of a uniform ``u``.

        >>> Fixed(7).sample(np.random.default_rng(0))
        7
        """
        return self.from_unit(rng.random())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, inverted by ``space_from_dict``: values in the typed JSON
        of ``optim.search.codec`` (``TypeError`` for values it cannot store).

        >>> Uniform(0, 1).to_dict()
        {'type': 'Uniform', 'low': 0.0, 'high': 1.0}
        """
        kind = type(self).__name__
        return {"type": kind, **{f.name: encode_value(getattr(self, f.name), f"{kind} {f.name}")
                                 for f in fields(self)}}  # type: ignore[arg-type]


def _fail(dist: str, msg: str, **got: Any) -> None:
    shown = ", ".join(f"{k}={v!r}" for k, v in got.items())
    raise ValueError(f"{dist}: {msg}; got {shown}")


# ---------------------------------------------------------------- continuous scales

@dataclass(frozen=True)
class _Warped(Distribution):
    """``low + u * (high - low)`` on the warped scale ``_fwd``; subclasses pick the warp."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (_is_real(self.low) and _is_real(self.high) and self.low < self.high):
            _fail(type(self).__name__, "low and high must be finite numbers with low < high",
                  low=self.low, high=self.high)
        object.__setattr__(self, "low", float(self.low))  # plain floats: JSON-ready, exact
        object.__setattr__(self, "high", float(self.high))

    @staticmethod
    def _fwd(x: float, /) -> float:
        return x

    @staticmethod
    def _inv(y: float, /) -> float:
        return y

    def _span(self) -> tuple[float, float]:
        return self.low, self.high

    def _cont_to_unit(self, value: float) -> float:
        a, b = (self._fwd(v) for v in self._span())
        return (self._fwd(value) - a) / (b - a)

    def _cont_from_unit(self, u: float) -> float:
        lo, hi = self._span()
        a, b = self._fwd(lo), self._fwd(hi)
        return min(max(self._inv(a + float(u) * (b - a)), lo), hi)

    to_unit = _cont_to_unit
    from_unit = _cont_from_unit

    def restrict(self, lo_u: float, hi_u: float) -> _Warped:
        return type(self)(self.from_unit(lo_u), self.from_unit(hi_u))


@dataclass(frozen=True)
class Uniform(_Warped):
    """Uniform on ``[low, high]``.

    >>> Uniform(0, 10).from_unit(0.25)
    2.5
    """


@dataclass(frozen=True)
class LogUniform(_Warped):
    """Uniform in ``log(x)``: each decade of ``[low, high]`` gets the same share.

    >>> LogUniform(1e-4, 1).from_unit(0.25)  # 1e-3, up to rounding
    0.0010000000000000002
    """

    scale: ClassVar[str] = "log"
    _fwd = staticmethod(math.log)
    _inv = staticmethod(math.exp)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            _fail("LogUniform", "low must be > 0 (log scale)", low=self.low)


@dataclass(frozen=True)
class OneMinusLogUniform(_Warped):
    """``beta = 1 - 10**r`` with ``r`` uniform in ``[log10(1-high), log10(1-low)]``.

    The scale for averaging coefficients: for ``[0.9, 0.999]`` as many samples land in
    ``[0.9, 0.99]`` as in ``[0.99, 0.999]``.

    >>> round(OneMinusLogUniform(0.9, 0.999).from_unit(0.5), 12)
    0.99
    """

    scale: ClassVar[str] = "one_minus_log"

    @staticmethod
    def _fwd(x: float) -> float:
        return -math.log10(1.0 - x)

    @staticmethod
    def _inv(y: float) -> float:
        return 1.0 - 10.0 ** (-y)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.low < self.high < 1:
            _fail("OneMinusLogUniform", "bounds must satisfy 0 < low < high < 1",
                  low=self.low, high=self.high)


# ---------------------------------------------------------------- integer scales

@dataclass(frozen=True)
class IntUniform(_Warped):
    """Integers ``low..high`` inclusive, equally likely.

    Unit coordinates cover the bins ``[k, k+1)`` of ``[low, high+1)``; ``to_unit`` gives a
    bin's centre.

    >>> IntUniform(1, 4).from_unit(0.99), IntUniform(1, 4).to_unit(1)
    (4, 0.125)
    """

    low: int  # type: ignore[assignment]
    high: int  # type: ignore[assignment]

    def __post_init__(self) -> None:
        bad = [v for v in (self.low, self.high)
               if isinstance(v, bool) or not isinstance(v, numbers.Integral)]
        if bad or self.low > self.high:
            _fail(type(self).__name__, "low and high must be integers with low <= high",
                  low=self.low, high=self.high)
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))

    def _span(self) -> tuple[float, float]:
        return self.low, self.high + 1

    def to_unit(self, value: float) -> float:
        return 0.5 * (self._cont_to_unit(value) + self._cont_to_unit(value + 1))

    def from_unit(self, u: float) -> int:
        return min(int(math.floor(self._cont_from_unit(u))), int(self.high))


@dataclass(frozen=True)
class LogIntUniform(IntUniform):
    """Integers ``low..high`` (``low >= 1``) drawn on a log scale: 1..10 as likely as 10..100.

    >>> LogIntUniform(1, 1000).from_unit(0.5)
    31
    """

    scale: ClassVar[str] = "log"
    _fwd = staticmethod(math.log)
    _inv = staticmethod(math.exp)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low < 1:
            _fail("LogIntUniform", "low must be >= 1 (log scale)", low=self.low)


# ---------------------------------------------------------------- categorical and fixed

@dataclass(frozen=True)
class Choice(Distribution):
    """One of ``options``, equally likely; option ``i`` owns unit bin ``[i/n, (i+1)/n)``.

    >>> Choice(["relu", "tanh"]).from_unit(0.7)
    'tanh'
    """

    options: tuple

    scale: ClassVar[str] = "categorical"

    def __init__(self, options: Sequence[Any]) -> None:
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or not options:
            _fail("Choice", "options must be a non-empty list", options=options)
        object.__setattr__(self, "options", tuple(options))

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "Choice", "options": [...]}`` with each option in typed JSON.

        >>> Choice([(64, 32), None]).to_dict()
        {'type': 'Choice', 'options': [{'$tuple': [64, 32]}, None]}
        """
        return {"type": "Choice", "options": [encode_value(o, "Choice option")
                                              for o in self.options]}

    def to_unit(self, value: Any) -> float:
        return (self.options.index(value) + 0.5) / len(self.options)

    def from_unit(self, u: float) -> Any:
        return self.options[min(int(u * len(self.options)), len(self.options) - 1)]

    def restrict(self, lo_u: float, hi_u: float) -> Choice:
        """Keep the options whose bin centres lie in ``[lo_u, hi_u]`` (at least the nearest)."""
        kept = [o for o in self.options if lo_u <= self.to_unit(o) <= hi_u]
        return Choice(kept or [self.from_unit(0.5 * (lo_u + hi_u))])

    def subset(self, values: Sequence[Any]) -> Choice:
        """Keep the options that appear in ``values``, in their original order.

        >>> Choice(["a", "b", "c"]).subset(["c", "a"])
        Choice(options=('a', 'c'))
        """
        return Choice([o for o in self.options if o in values])


@dataclass(frozen=True)
class Fixed(Distribution):
    """A constant; plain values in a space dict become ``Fixed``.

    >>> Fixed(0.5).from_unit(0.123)
    0.5
    """

    value: Any
    scale: ClassVar[str] = "fixed"

    def to_unit(self, value: Any) -> float:
        return 0.5

    def from_unit(self, u: float) -> Any:
        return self.value

    def restrict(self, lo_u: float, hi_u: float) -> Fixed:
        return self


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


# ---------------------------------------------------------------- spaces

_KINDS: dict[Any, type[Distribution]] = {c.__name__: c for c in (
    Uniform, LogUniform, IntUniform, LogIntUniform, Choice, OneMinusLogUniform, Fixed)}


def as_space(space: Mapping[str, Any]) -> dict[str, Distribution]:
    """Normalize a space dict: plain values become ``Fixed``.

    >>> as_space({"lr": LogUniform(1e-3, 1), "epochs": 5})["epochs"]
    Fixed(value=5)
    """
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"space must be a non-empty dict of name -> distribution; got {space!r}")
    return {str(k): v if isinstance(v, Distribution) else Fixed(v) for k, v in space.items()}


def space_to_dict(space: Mapping[str, Distribution]) -> dict[str, dict[str, Any]]:
    """JSON-ready description of a normalized space.

    >>> space_to_dict({"x": Uniform(0, 1)})
    {'x': {'type': 'Uniform', 'low': 0.0, 'high': 1.0}}
    """
    described = {}
    for name, d in space.items():
        try:
            described[name] = d.to_dict()
        except TypeError as e:
            raise TypeError(f"search space parameter {name!r}: {e}") from None
    return described


def space_from_dict(spec: Mapping[str, Mapping[str, Any]]) -> dict[str, Distribution]:
    """Inverse of ``space_to_dict``; ``ValueError`` naming the parameter for a type that is
    not one of this module's distributions (an allow-list: nothing is imported by name) or for
    fields that type does not take.

    >>> space_from_dict({"x": {"type": "LogUniform", "low": 0.1, "high": 1}})
    {'x': LogUniform(low=0.1, high=1.0)}
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"a space description must be a non-empty dict; got {spec!r:.80}")
    space: dict[str, Distribution] = {}
    for name, d in spec.items():
        kind = _KINDS.get(d.get("type")) if isinstance(d, Mapping) else None
        if kind is None:
            raise ValueError(f"parameter {name!r}: {d!r:.80} is not a distribution; the known "
                             f"types are {', '.join(_KINDS)}")
        try:
            space[name] = kind(**{f: decode_value(v) for f, v in d.items() if f != "type"})
        except (TypeError, ValueError) as e:
            raise ValueError(f"parameter {name!r}: {e}") from None
    return space
