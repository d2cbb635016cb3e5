"""What the searches share: the study, its storage, the executor and the progress display.

A ``Session`` runs given trials (serially, or as tasks on an executor), records each finished
trial in the study and appends it to the storage file, so a search only decides *which* trials
to run.

>>> from optim.search import Uniform
>>> space = {"x": Uniform(0, 1)}
>>> with Session(lambda p: p["x"], space, {"search": "demo"}, 3, seed=0, direction="minimize",
...              executor=None, n_jobs=1, storage=None, progress=False) as session:
...     session.run(range(3), space)
>>> len(session.study)
3
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any

from .boxes import Box, draw
from .checks import (
    Objective,
    check_choice,
    check_int,
    check_objective,
    check_picklable,
    wants_report,
)
from .execution import execute_task
from .population_objective import PopulationObjective
from .pruners import Pruner
from .report import Progress
from .spaces import Distribution, space_to_dict
from .storage import TrialStore
from .study import Study, Trial
from .trials import TrialPruned
from .workers import process_pool

__all__ = ["Session"]


class Session:
    """What random_search and coarse_to_fine share: the study, its storage, the executor and
    the progress display."""

    def __init__(self, objective: Objective, space: dict[str, Distribution], header: dict,
                 total: int, *, seed: int, direction: str, executor: Executor | None,
                 n_jobs: int, storage: str | os.PathLike | None, progress: bool,
                 population: int | None = None, pruner: Pruner | None = None) -> None:
        check_objective(objective)
        check_choice("direction", direction, ("minimize", "maximize"))
        check_int("seed", seed, 0)
        check_int("n_jobs", n_jobs, -1)
        if population is not None:
            check_int("population", population, 1)
            if not isinstance(objective, PopulationObjective):
                raise TypeError(f"population={population} needs an objective that evaluates "
                                f"several trials at once: wrap it as PopulationObjective(fn, "
                                f"structural=[...]); got {objective!r:.80}")
        self.population = population
        if n_jobs == 0 or (executor is not None and n_jobs != 1):
            raise ValueError(f"n_jobs must be >= 1 or -1 (all CPUs), and 1 when an executor is "
                             f"given; got n_jobs={n_jobs!r}, executor={executor!r}")
        if n_jobs != 1 or isinstance(executor, ProcessPoolExecutor):
            check_picklable(objective)
        self.objective, self.wants_report = objective, wants_report(objective)
        if pruner is not None:
            self._check_pruner(pruner, executor, n_jobs)
            header = {**header, "pruner": pruner.to_dict()}
        self.pruner = pruner
        self._lock = threading.Lock()  # worker threads read the study while trials are added
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

    def __enter__(self) -> Session:
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
        self.run_trials({i: draw(space, self.study.seed, i) for i in numbers  # type: ignore[arg-type]
                         if i not in done}, round_, box)

    def run_trials(self, todo: dict[int, dict[str, Any]], round_: int = 0,
                   box: Box | None = None) -> None:
        """Run the trials ``todo`` (number -> parameters) not already in the study."""
        done = {t.number for t in self.study.trials}
        todo = {i: p for i, p in todo.items() if i not in done}
        tasks = self._tasks(todo)
        call = functools.partial(execute_task, self.objective, self.wants_report,
                                 self.population is not None,
                                 on_report=None if self.pruner is None else self._judge)

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

    def _check_pruner(self, pruner: Any, executor: Executor | None, n_jobs: int) -> None:
        if not isinstance(pruner, Pruner):
            raise TypeError(f"pruner must be a Pruner (MedianPruner(...), "
                            f"SuccessiveHalvingPruner(...)); got {pruner!r:.80}")
        if self.population is not None:
            raise ValueError(f"pruner= cannot be combined with population={self.population}: "
                             "the members of a batch train together; run without population= "
                             "to prune trials one by one")
        if n_jobs != 1 or not (executor is None or isinstance(executor, ThreadPoolExecutor)):
            raise ValueError(
                f"pruner= needs the trials to run in this process (serially, or on a "
                f"ThreadPoolExecutor): the pruner decides at each report from the study's "
                f"finished trials, which worker processes do not see; got n_jobs={n_jobs}, "
                f"executor={executor!r:.60}")
        if not self.wants_report:
            name = getattr(self.objective, "__qualname__", repr(self.objective))
            raise ValueError(f"pruner= needs an objective that reports its learning curve, "
                             f"objective(params, report) calling report(step, value); "
                             f"{name!r} takes only params")

    def _judge(self, curve: list[tuple[int, float]]) -> None:
        """Ask the pruner about a running trial's curve; raise TrialPruned if it says stop."""
        assert self.pruner is not None  # only passed to trials when there is one
        with self._lock:
            finished = self.study.trials
        why = self.pruner.decide(curve, finished, self.study.direction)
        if why is not None:
            raise TrialPruned(f"pruned at step {curve[-1][0]}: {why}")

    def _record(self, trial: Trial) -> None:
        if self.pruner is not None and trial.status == "ok" and not trial.intermediate:
            raise ValueError(
                f"trial {trial.number} ended without calling report(step, value), so "
                f"pruner={self.pruner!r} could never stop it; report the learning curve "
                "from the objective (e.g. the validation loss after each epoch) or run "
                "without pruner=")
        with self._lock:
            self.study.add(trial)
        if self.store is not None:
            self.store.append(trial)
        if trial.status == "ok":
            assert trial.value is not None  # ok trials always have a value
            self.best = trial.value if self.best is None else self._better(self.best, trial.value)
        self.progress.update(self.best)
