"""Objectives that evaluate several trials at once (e.g. as one ``nn.Population``).

>>> objective = PopulationObjective(lambda batch, report: [p["x"] for p in batch], ["units"])
>>> objective.key({"x": 1.0, "units": 8})
('8',)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["PopulationObjective", "check_results"]


class PopulationObjective:
    """An objective that evaluates several trials at once: ``fn(batch, report)``.

    ``batch`` is a list of parameter dicts that agree on every name in ``structural`` (e.g.
    units, layers, batch size: what one ``nn.Population`` must share); the other parameters
    (learning rate, betas, ...) may differ. ``fn`` returns one result per member, in order: a
    number, or an exception instance for a member that failed (a ``TrialPruned`` marks it
    pruned). ``report(member, step, value)`` records member ``member``'s learning curve.
    ``random_search``/``coarse_to_fine`` with ``population=K`` pass batches of up to K trials;
    called as a plain objective, ``objective(params, report)``, it runs a batch of one.

    >>> def fn(batch, report):
    ...     return [(p["lr"] - 0.01) ** 2 * p["units"] for p in batch]
    >>> objective = PopulationObjective(fn, structural=["units"])
    >>> objective({"lr": 0.02, "units": 2})
    0.0002
    """

    def __init__(self, fn: Callable[..., Any], structural: Iterable[str] = ()) -> None:
        if not callable(fn):
            raise TypeError(f"PopulationObjective needs a callable fn(batch, report), got "
                            f"{type(fn).__name__}")
        self.fn = fn
        self.structural = tuple(structural)

    def __call__(self, params: dict[str, Any], report: Callable[[int, float], None] | None = None
                 ) -> Any:
        results = self.fn([params], lambda member, step, value: report and report(step, value))
        result = check_results(results, 1)[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def key(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """What trials evaluated together share: their structural parameters' values."""
        missing = [n for n in self.structural if n not in params]
        if missing:
            raise ValueError(f"structural parameters {missing} are not in the trial's "
                             f"parameters {sorted(params)}")
        return tuple(repr(params[n]) for n in self.structural)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"PopulationObjective({name}, structural={self.structural})"


def check_results(results: Any, n: int) -> list[Any]:
    """``results`` as a list; ``ValueError`` unless it holds one result per trial of the batch.

    >>> check_results((1.0, 2.0), 2)
    [1.0, 2.0]
    """
    results = list(results)
    if len(results) != n:
        raise ValueError(f"a PopulationObjective returned {len(results)} results for a batch "
                         f"of {n} trials")
    return results
