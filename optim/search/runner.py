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

import functools
import inspect
import math
import numbers
import os
import pickle
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np

from .report import Progress
from .spaces import Choice, Distribution, Fixed, as_space, space_to_dict
from .storage import TrialStore
from .study import Study, Trial, TrialPruned
from .workers import process_pool

__all__ = ["random_search", "coarse_to_fine", "draw", "restrict_space", "PopulationObjective"]

Objective = Callable[..., Any]
Box = dict[str, Any]  # name -> [lo_u, hi_u] (numeric) or list of kept options (Choice)


def draw(space: Mapping[str, Any], seed: int, number: int) -> dict[str, Any]:
    """The parameters of trial ``number`` of a search with ``seed`` over ``space``.

    >>> from optim.search import Uniform
    >>> draw({"x": Uniform(0, 1)}, seed=0, number=3) == draw({"x": Uniform(0, 1)}, 0, 3)
    True
    """
    space = as_space(space)
    u = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(number,))).random(len(space))
    order = {name: k for k, name in enumerate(sorted(space))}  # independent of dict order
    return {name: d.from_unit(u[order[name]]) for name, d in space.items()}


# ---------------------------------------------------------------- running one trial

def _wants_report(objective: Objective) -> bool:
    """True if ``objective`` takes a second positional argument (the ``report`` callback)."""
    try:
        params = inspect.signature(objective).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    kinds = [p.kind for p in params]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Parameter.VAR_POSITIONAL in kinds or sum(k in positional for k in kinds) >= 2


def _error_text(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)
    at = f" (at {where[-1].filename}:{where[-1].lineno} in {where[-1].name})" if where else ""
    return f"{type(e).__name__}: {e}{at}"


def _not_a_number(value: Any) -> str | None:
    """Why ``value`` is not a usable objective value, or None if it is."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        return f"TypeError: objective returned {type(value).__name__} {value!r:.80}, not a number"
    try:
        x = float(value)
    except (TypeError, ValueError) as e:
        return f"{type(e).__name__}: objective returned {value!r:.80}: {e}"
    return None if math.isfinite(x) else f"ValueError: objective returned {x}"


def _outcome(result: Any, curve: list[tuple[int, float]], duration: float) -> dict[str, Any]:
    """The outcome fields of a ``Trial`` from what its objective returned (or raised)."""
    out: dict[str, Any] = {"value": None, "status": "failed", "error": None}
    if isinstance(result, TrialPruned):
        out.update(status="pruned", error=_error_text(result),
                   value=curve[-1][1] if curve else None)
    elif isinstance(result, Exception):
        out["error"] = _error_text(result)
    else:
        out["error"] = _not_a_number(result)
        if out["error"] is None:
            out.update(status="ok", value=float(result))
    return {**out, "duration": duration, "intermediate": curve}


def _execute(objective: Objective, wants_report: bool, params: dict[str, Any]) -> dict[str, Any]:
    """Run one trial (in a worker); returns the outcome fields of a ``Trial``."""
    curve: list[tuple[int, float]] = []

    def report(step: int, value: float) -> None:
        curve.append((int(step), float(value)))

    start = time.perf_counter()
    try:
        result = objective(*((params, report) if wants_report else (params,)))
    except Exception as e:  # the search goes on; KeyboardInterrupt still stops it
        result = e
    return _outcome(result, curve, time.perf_counter() - start)


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
        result = _check_results(results, 1)[0]
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


def _check_results(results: Any, n: int) -> list[Any]:
    results = list(results)
    if len(results) != n:
        raise ValueError(f"a PopulationObjective returned {len(results)} results for a batch "
                         f"of {n} trials")
    return results


def _execute_batch(objective: PopulationObjective, batch: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """Run a batch of trials together (in a worker); the outcome fields of each ``Trial``.
    Each trial's ``duration`` is the batch's wall time shared out evenly."""
    curves: list[list[tuple[int, float]]] = [[] for _ in batch]

    def report(member: int, step: int, value: float) -> None:
        curves[member].append((int(step), float(value)))

    start = time.perf_counter()
    try:
        results = _check_results(objective.fn(batch, report), len(batch))
    except Exception as e:  # the whole batch failed (or was pruned) together
        results = [e] * len(batch)
    duration = (time.perf_counter() - start) / len(batch)
    return [_outcome(r, c, duration) for r, c in zip(results, curves)]


def _execute_task(objective: Objective, wants_report: bool, batched: bool,
                  batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if batched:
        return _execute_batch(objective, batch)  # type: ignore[arg-type]
    return [_execute(objective, wants_report, params) for params in batch]


# ---------------------------------------------------------------- a search session

class _Session:
    """What random_search and coarse_to_fine share: the study, its storage, the executor and
    the progress display."""

    def __init__(self, objective: Objective, space: dict[str, Distribution], header: dict,
                 total: int, *, seed: int, direction: str, executor: Executor | None,
                 n_jobs: int, storage: str | os.PathLike | None, progress: bool,
                 population: int | None = None) -> None:
        _check_objective(objective)
        _check_choice("direction", direction, ("minimize", "maximize"))
        _check_int("seed", seed, 0)
        _check_int("n_jobs", n_jobs, -1)
        if population is not None:
            _check_int("population", population, 1)
            if not isinstance(objective, PopulationObjective):
                raise TypeError(f"population={population} needs an objective that evaluates "
                                f"several trials at once: wrap it as PopulationObjective(fn, "
                                f"structural=[...]); got {objective!r:.80}")
        self.population = population
        if n_jobs == 0 or (executor is not None and n_jobs != 1):
            raise ValueError(f"n_jobs must be >= 1 or -1 (all CPUs), and 1 when an executor is "
                             f"given; got n_jobs={n_jobs!r}, executor={executor!r}")
        if n_jobs != 1 or isinstance(executor, ProcessPoolExecutor):
            _check_picklable(objective)
        self.objective, self.wants_report = objective, _wants_report(objective)
        seed = int(seed)
        self.store = None if storage is None else TrialStore(
            storage, {**header, "space": space_to_dict(space), "seed": seed,
                      "direction": direction}, n_trials=total)
        self.study = Study(space, direction=direction, seed=seed,
                           trials=self.store.trials if self.store else ())
        ranked = self.study.ranked()
        self.best = ranked[0].value if ranked else None
        self._better = min if direction == "minimize" else max
        self.own_executor = executor is None and n_jobs != 1
        if self.own_executor:
            executor = process_pool(n_jobs)
        self.executor = executor
        self.progress = Progress(total, len(self.study), enabled=progress)

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.progress.close()
        if self.own_executor:
            assert self.executor is not None  # created in __init__
            self.executor.shutdown(wait=exc_type is None, cancel_futures=True)
        if self.store is not None:
            self.store.close()

    def run(self, numbers: Iterable[int], space: Mapping[str, Distribution], round_: int = 0,
            box: Box | None = None) -> None:
        """Run the trials ``numbers`` not already in the study, drawn from ``space``."""
        done = {t.number for t in self.study.trials}
        todo = {i: draw(space, self.study.seed, i) for i in numbers  # type: ignore[arg-type]
                if i not in done}
        tasks = self._tasks(todo)
        call = functools.partial(_execute_task, self.objective, self.wants_report,
                                 self.population is not None)

        def record(task: list[int], outcomes: list[dict[str, Any]]) -> None:
            for i, outcome in zip(task, outcomes):
                self._record(Trial(i, todo[i], round=round_, box=box, **outcome))

        if self.executor is None:
            for task in tasks:
                record(task, call([todo[i] for i in task]))
            return
        futures = {self.executor.submit(call, [todo[i] for i in task]): task for task in tasks}
        try:
            for f in as_completed(futures):
                record(futures[f], f.result())
        finally:
            for f in futures:
                f.cancel()

    def _tasks(self, todo: dict[int, dict[str, Any]]) -> list[list[int]]:
        """Trial numbers to run together: one by one, or (population=K) batches of up to K
        trials with the same structural parameters, in order of their first trial."""
        if self.population is None:
            return [[i] for i in todo]
        assert isinstance(self.objective, PopulationObjective)  # checked in __init__
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, params in todo.items():
            groups.setdefault(self.objective.key(params), []).append(i)
        k = self.population
        return [g[j:j + k] for g in groups.values() for j in range(0, len(g), k)]

    def _record(self, trial: Trial) -> None:
        self.study.add(trial)
        if self.store is not None:
            self.store.append(trial)
        if trial.status == "ok":
            assert trial.value is not None  # ok trials always have a value
            self.best = trial.value if self.best is None else self._better(self.best, trial.value)
        self.progress.update(self.best)


def _check_objective(objective: Any) -> None:
    if not callable(objective):
        raise TypeError(f"objective must be a callable taking a dict of parameters (and "
                        f"optionally a report(step, value) callback) and returning a number; "
                        f"got {type(objective).__name__} {objective!r:.60}. Pass the function "
                        f"first: random_search(objective, space, n_trials, seed=0)")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {name}={value!r}")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}; got {name}={value!r}")


def _check_picklable(objective: Objective) -> None:
    try:
        pickle.dumps(objective)
    except Exception as e:
        name = getattr(objective, "__qualname__", repr(objective))
        raise ValueError(
            f"objective {name!r} cannot be pickled, so it cannot run in worker processes "
            f"({type(e).__name__}: {e}). Define it as a module-level function (not a lambda or "
            "a nested function), or use n_jobs=1 or a thread-based executor.") from None


# ---------------------------------------------------------------- the searches

def random_search(objective: Objective, space: Mapping[str, Any], n_trials: int, *, seed: int,
                  direction: str = "minimize", executor: Executor | None = None,
                  n_jobs: int = 1, storage: str | os.PathLike | None = None,
                  progress: bool = True, population: int | None = None) -> Study:
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
    ``optim.search.codec``), else a ``TypeError`` comes before the first trial.

    >>> from optim.search import LogUniform
    >>> study = random_search(lambda p: (p["lr"] - 0.01) ** 2, {"lr": LogUniform(1e-4, 1)},
    ...                       n_trials=20, seed=0, progress=False)
    >>> len(study), study.best_trial.status
    (20, 'ok')
    """
    _check_int("n_trials", n_trials, 1)
    space = as_space(space)
    with _Session(objective, space, {"search": "random_search"}, n_trials, seed=seed,
                  direction=direction, executor=executor, n_jobs=n_jobs, storage=storage,
                  progress=progress, population=population) as session:
        session.run(range(n_trials), space)
        return session.study


def coarse_to_fine(objective: Objective, space: Mapping[str, Any], *, rounds: int,
                   trials_per_round: int, keep: float = 0.2, seed: int,
                   direction: str = "minimize", executor: Executor | None = None,
                   n_jobs: int = 1, storage: str | os.PathLike | None = None,
                   progress: bool = True, padding: float = 0.1,
                   population: int | None = None) -> Study:
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
    _check_int("rounds", rounds, 1)
    _check_int("trials_per_round", trials_per_round, 1)
    if not (isinstance(keep, numbers.Real) and 0 < keep <= 1):
        raise ValueError(f"keep must be a fraction in (0, 1]; got keep={keep!r}")
    if not (isinstance(padding, numbers.Real) and 0 < padding < math.inf):
        raise ValueError(f"padding must be a number > 0 (a zero-width box cannot be sampled); "
                         f"got padding={padding!r}")
    space = as_space(space)
    header = {"search": "coarse_to_fine", "rounds": int(rounds),  # plain numbers: JSON-ready
              "trials_per_round": int(trials_per_round), "keep": float(keep),
              "padding": float(padding)}
    with _Session(objective, space, header, rounds * trials_per_round, seed=seed,
                  direction=direction, executor=executor, n_jobs=n_jobs, storage=storage,
                  progress=progress, population=population) as session:
        study = session.study
        box = _full_box(space)
        for r in range(rounds):
            numbers_ = range(r * trials_per_round, (r + 1) * trials_per_round)
            if r > 0:  # a resumed round keeps the box it was drawn from
                stored = [t.box for t in study.trials if t.number in numbers_]
                box = stored[0] if stored else _next_box(study, space, box, numbers_.start,
                                                         keep, padding)
            session.run(numbers_, restrict_space(space, box), r, box)
        return study


# ---------------------------------------------------------------- boxes

def _full_box(space: Mapping[str, Distribution]) -> Box:
    return {name: list(d.options) if isinstance(d, Choice) else [0.0, 1.0]
            for name, d in space.items() if not isinstance(d, Fixed)}


def _next_box(study: Study, space: Mapping[str, Distribution], box: Box, before: int,
              keep: float, padding: float) -> Box:
    """Box around the best ``keep`` fraction of the ok trials numbered below ``before``."""
    ok = [t for t in study.ranked() if t.number < before]
    if not ok:  # nothing to zoom in on: search the same box again
        return box
    best = ok[: math.ceil(keep * len(ok))]
    new: Box = {}
    for name, old in box.items():
        d = space[name]
        if isinstance(d, Choice):
            new[name] = list(d.subset([t.params[name] for t in best]).options)
            continue
        u = [d.to_unit(t.params[name]) for t in best]
        pad = padding * (old[1] - old[0])
        new[name] = [max(0.0, min(u) - pad), min(1.0, max(u) + pad)]
    return new


def restrict_space(space: Mapping[str, Distribution], box: Box) -> dict[str, Distribution]:
    """The sub-space of ``space`` inside ``box`` (as recorded on coarse-to-fine trials).

    >>> from optim.search import Uniform
    >>> restrict_space({"x": Uniform(0, 10)}, {"x": [0.2, 0.5]})
    {'x': Uniform(low=2.0, high=5.0)}
    """
    return {name: d if name not in box else d.subset(box[name]) if isinstance(d, Choice)
            else d.restrict(*box[name]) for name, d in space.items()}
