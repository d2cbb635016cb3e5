"""Argument checks shared by the searches and the re-test: each error names the argument, what
it got, and what to pass instead.

>>> check_int("n_trials", 0, 1)
Traceback (most recent call last):
ValueError: n_trials must be an integer >= 1; got n_trials=0
"""

from __future__ import annotations

import inspect
import numbers
import pickle
from collections.abc import Callable
from typing import Any

__all__ = ["Objective", "check_objective", "check_int", "check_choice", "check_picklable",
           "wants_report"]

Objective = Callable[..., Any]


def check_objective(objective: Any) -> None:
    """``TypeError`` unless ``objective`` is callable.

    >>> check_objective(abs)
    """
    if not callable(objective):
        raise TypeError(f"objective must be a callable taking a dict of parameters (and "
                        f"optionally a report(step, value) callback) and returning a number; "
                        f"got {type(objective).__name__} {objective!r:.60}. Pass the function "
                        f"first: random_search(objective, space, n_trials, seed=0)")


def check_int(name: str, value: Any, minimum: int) -> None:
    """``ValueError`` unless ``value`` is an integer (not a bool) >= ``minimum``.

    >>> check_int("seed", 3, 0)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {name}={value!r}")


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """``ValueError`` unless ``value`` is one of ``allowed``.

    >>> check_choice("direction", "minimize", ("minimize", "maximize"))
    """
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {name}={value!r}")


def check_picklable(objective: Objective) -> None:
    """``ValueError`` if ``objective`` cannot be sent to a worker process.

    >>> check_picklable(lambda p: 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: objective '<lambda>' cannot be pickled, ...
    """
    try:
        pickle.dumps(objective)
    except Exception as e:
        name = getattr(objective, "__qualname__", repr(objective))
        raise ValueError(
            f"objective {name!r} cannot be pickled, so it cannot run in worker processes "
            f"({type(e).__name__}: {e}). Define it as a module-level function (not a lambda or "
            "a nested function), or use n_jobs=1 or a thread-based executor.") from None


def wants_report(objective: Objective) -> bool:
    """True if ``objective`` takes a second positional argument (the ``report`` callback).

    >>> wants_report(lambda params: 0), wants_report(lambda params, report: 0)
    (False, True)
    """
    try:
        params = inspect.signature(objective).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    kinds = [p.kind for p in params]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Parameter.VAR_POSITIONAL in kinds or sum(k in positional for k in kinds) >= 2
