"""Random search and coarse-to-fine search, serially or on any ``concurrent.futures.Executor``.

Trial ``i`` draws its unit coordinates from ``SeedSequence(seed, spawn_key=(i,))`` (the
``i``-th child ``SeedSequence(seed).spawn`` would give) in the calling process, so the
parameters of a trial depend only on ``(seed, i)`` and the space it is drawn from: a search
gives the same trials serially, on a process pool, on a dask cluster, or resumed from storage.
With ``population=K`` and a ``PopulationObjective``, trials that share their structural
parameters are evaluated together, up to K at a time (e.g. as one ``nn.Population``), and
recorded one by one as usual.

>>> from optim.search import LogUniform, random_search
>>> study = random_search(lambda p: abs(p["lr"] - 0.01), {"lr": LogUniform(1e-4, 1)}, 30,
...                       seed=0, progress=False)
>>> 0.003 < study.best_params["lr"] < 0.03
True
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from .boxes import draw, full_box, next_box, restrict_space
from .checks import Objective, check_int
from .population_objective import PopulationObjective
from .pruners import Pruner
from .session import Session
from .spaces import as_space
from .study import Study

__all__ = ["random_search", "coarse_to_fine", "draw", "restrict_space", "PopulationObjective"]


# ---------------------------------------------------------------- the searches

def random_search(objective: Objective, space: Mapping[str, Any], n_trials: int, *, seed: int,
                  direction: str = "minimize", executor: Executor | None = None,
                  n_jobs: int = 1, storage: str | os.PathLike | None = None,
                  progress: bool = True, population: int | None = None,
                  pruner: Pruner | None = None) -> Study:
    """Evaluate ``objective`` at ``n_trials`` random points of ``space``.

    ``objective(params)`` or ``objective(params, report)`` returns a number; ``report(step,
    value)`` records a learning curve. A trial that raises or returns NaN/inf/a non-number is
    recorded as ``failed`` and the search goes on. ``n_jobs > 1`` runs trials on a local
    process pool, ``executor`` on any ``concurrent.futures.Executor`` (e.g. a dask client's
    ``get_executor()``). With ``storage="study.jsonl"`` every finished trial is appended to
    that file, and re-running the same call runs only the missing trials (calling again with a
    larger ``n_trials`` extends the search). ``population=K`` with a ``PopulationObjective``
    evaluates the trials that share its structural parameters in batches of up to K (one task
    per batch on the executor); the trials, their numbers and parameters are the same as
    without it, and each is recorded on its own (``duration``: its share of the batch's time).
    A search killed at any moment resumes at once: no worker process holds the storage's lock,
    and the workers of ``n_jobs > 1`` end with the calling process (``optim.search.workers``).
    With ``storage``, parameter values must be of the types a study file keeps (see
    ``optim.search.codec``), else a ``TypeError`` comes before the first trial. ``pruner``
    (``MedianPruner``, ``SuccessiveHalvingPruner``) stops trials whose reported curve is not
    promising (``optim.search.pruners``); it needs the trials in this process (serially or on a
    ``ThreadPoolExecutor``) and an objective that reports.

    >>> from optim.search import LogUniform
    >>> study = random_search(lambda p: (p["lr"] - 0.01) ** 2, {"lr": LogUniform(1e-4, 1)},
    ...                       n_trials=20, seed=0, progress=False)
    >>> len(study), study.best_trial.status
    (20, 'ok')
    """
    check_int("n_trials", n_trials, 1)
    space = as_space(space)
    with Session(objective, space, {"search": "random_search"}, n_trials, seed=seed,
                  direction=direction, executor=executor, n_jobs=n_jobs, storage=storage,
                  progress=progress, population=population, pruner=pruner) as session:
        session.run(range(n_trials), space)
        return session.study


def coarse_to_fine(objective: Objective, space: Mapping[str, Any], *, rounds: int,
                   trials_per_round: int, keep: float = 0.2, seed: int,
                   direction: str = "minimize", executor: Executor | None = None,
                   n_jobs: int = 1, storage: str | os.PathLike | None = None,
                   progress: bool = True, padding: float = 0.1,
                   population: int | None = None, pruner: Pruner | None = None) -> Study:
    """Random search in ``rounds``, each zooming into the region of the best trials so far.

    After each round, the box (in each dimension's warped unit coordinates) around the best
    ``keep`` fraction of all ``ok`` trials so far is widened on each side by ``padding`` times
    the width of the previous round's box (default 0.1, so a box shrinks at most five-fold per
    round and never collapses), clipped to the original space, and the next round samples
    from it; a ``Choice`` keeps the options that appear among the best. Each trial records its
    ``round`` and ``box``. Trial numbers run on across rounds; other arguments are as in
    ``random_search``.

    >>> from optim.search import Uniform
    >>> study = coarse_to_fine(lambda p: (p["x"] - 0.3) ** 2, {"x": Uniform(0, 1)}, rounds=3,
    ...                        trials_per_round=10, seed=0, progress=False)
    >>> abs(study.best_params["x"] - 0.3) < 0.02
    True
    """
    check_int("rounds", rounds, 1)
    check_int("trials_per_round", trials_per_round, 1)
    if not (isinstance(keep, numbers.Real) and 0 < keep <= 1):
        raise ValueError(f"keep must be a fraction in (0, 1]; got keep={keep!r}")
    if not (isinstance(padding, numbers.Real) and 0 < padding < math.inf):
        raise ValueError(f"padding must be a number > 0 (a zero-width box cannot be sampled); "
                         f"got padding={padding!r}")
    space = as_space(space)
    header = {"search": "coarse_to_fine", "rounds": int(rounds),  # plain numbers: JSON-ready
              "trials_per_round": int(trials_per_round), "keep": float(keep),
              "padding": float(padding)}
    with Session(objective, space, header, rounds * trials_per_round, seed=seed,
                  direction=direction, executor=executor, n_jobs=n_jobs, storage=storage,
                  progress=progress, population=population, pruner=pruner) as session:
        study = session.study
        box = full_box(space)
        for r in range(rounds):
            numbers_ = range(r * trials_per_round, (r + 1) * trials_per_round)
            if r > 0:  # a resumed round keeps the box it was drawn from
                stored = [t.box for t in study.trials if t.number in numbers_]
                ranked = [t for t in study.ranked() if t.number < numbers_.start]
                box = stored[0] if stored else next_box(ranked, space, box, keep, padding)
            session.run(numbers_, restrict_space(space, box), r, box)
        return study
