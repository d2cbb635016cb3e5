"""Hyperband (Li et al. 2018): successive halving in brackets that trade the number of
configurations against the resource (e.g. epochs) each one gets.

With ``R = max_resource`` and ``s_max = floor(log_eta R)``, bracket ``s`` (from ``s_max`` down
to 0) draws ``n = ceil((s_max + 1) * eta**s / (s + 1))`` configurations and runs successive
halving on them: rung ``i`` evaluates ``n // eta**i`` configurations with resource
``R // eta**(s - i)`` each, and the best ``1 / eta`` of its ``ok`` trials go on to the next rung.
The first bracket tries many configurations briefly, the last a few at the full resource.
Each evaluation is a trial; its parameters hold the resource under the name ``resource``.

Every trial's number and parameters follow from ``(seed, max_resource, eta)`` and the values of
the rungs before it, so a search resumed from its study file (even after SIGKILL) runs only
the trials that are missing and ends as if never stopped.

>>> from optim.search import LogUniform
>>> def objective(params):  # a longer budget gets closer to the optimum of each lr
...     return (params["lr"] - 0.01) ** 2 + 1 / params["epochs"]
>>> study = hyperband(objective, {"lr": LogUniform(1e-4, 1)}, max_resource=9, eta=3, seed=0,
...                   resource="epochs", progress=False)
>>> [(n, r) for n, r in brackets(9, 3)[0]]
[(9, 1), (3, 3), (1, 9)]
>>> study.best_params["epochs"]
9
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from .boxes import draw
from .checks import Objective, check_int
from .session import Session
from .spaces import Choice, as_space
from .study import Study

__all__ = ["hyperband", "brackets"]


def brackets(max_resource: int, eta: int) -> list[list[tuple[int, int]]]:
    """Hyperband's plan: for each bracket (``s_max`` down to 0), the ``(configurations,
    resource)`` of each rung.

    >>> brackets(27, 3)[0]
    [(27, 1), (9, 3), (3, 9), (1, 27)]
    >>> [b[0] for b in brackets(27, 3)]
    [(27, 1), (12, 3), (6, 9), (4, 27)]
    """
    check_int("max_resource", max_resource, 1)
    check_int("eta", eta, 2)
    s_max = 0
    while eta ** (s_max + 1) <= max_resource:
        s_max += 1
    plan = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) * eta**s / (s + 1))
        plan.append([(n // eta**i, max(1, max_resource // eta ** (s - i))) for i in range(s + 1)])
    return plan


def hyperband(objective: Objective, space: Mapping[str, Any], max_resource: int, *,
              eta: int = 3, seed: int, resource: str = "budget",
              direction: str = "minimize", executor: Executor | None = None, n_jobs: int = 1,
              storage: str | os.PathLike | None = None, progress: bool = True) -> Study:
    """Hyperband over ``space``; ``objective(params)`` trains for ``params[resource]`` units
    (an integer from 1 to ``max_resource``) and returns a number. See the module doc.

    Trials of a rung run together (serially, on ``n_jobs`` processes or on ``executor``);
    ``storage`` and resuming work as in ``random_search``. Each trial records its bracket as
    ``round``. ``study.best_trial`` is the best value at any resource; filter the trials on
    ``params[resource] == max_resource`` for the best fully trained configuration.

    >>> from optim.search import Uniform
    >>> study = hyperband(lambda p: p["x"] / p["budget"], {"x": Uniform(0, 1)}, 4, eta=2,
    ...                   seed=0, progress=False)
    >>> len(study), sorted({t.params["budget"] for t in study.trials})
    (14, [1, 2, 4])
    """
    plan = brackets(max_resource, eta)
    space = as_space(space)
    if resource in space:
        raise ValueError(f"the space already has a parameter named {resource!r}, which "
                         f"hyperband sets to each trial's resource; remove it from the space "
                         f"or pass resource='another_name'")
    budgets = sorted({r for bracket in plan for _, r in bracket})
    full = {**space, resource: Choice(budgets)}
    total = sum(n for bracket in plan for n, _ in bracket)
    header = {"search": "hyperband", "max_resource": int(max_resource), "eta": int(eta),
              "resource": resource}
    with Session(objective, full, header, total, seed=seed, direction=direction,
                 executor=executor, n_jobs=n_jobs, storage=storage,
                 progress=progress) as session:
        study = session.study
        sign = -1.0 if direction == "maximize" else 1.0
        number = config = 0
        for b, bracket in enumerate(plan):
            configs = list(range(config, config + bracket[0][0]))
            config += bracket[0][0]
            for i, (n, r) in enumerate(bracket):
                numbers = range(number, number + n)
                number += n
                todo = {numbers[k]: {**draw(space, seed, c), resource: r}
                        for k, c in enumerate(configs)}  # fewer than n if trials failed
                session.run_trials(todo, b)
                if i + 1 < len(bracket):
                    stored = {t.number: t for t in study.trials}
                    trials = [stored[k] for k in todo]
                    ok = sorted((sign * t.value, t.number, c) for t, c in  # type: ignore[operator]
                                zip(trials, configs) if t.status == "ok")
                    configs = sorted(c for _, _, c in ok[: bracket[i + 1][0]])
        return study
