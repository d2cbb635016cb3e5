"""Re-test the best configurations of a study with new seeds: a single lucky run is not a result.

Each of the best ``top`` configurations is run again once per seed, with the seed passed to the
objective in its params under the reserved key ``"seed"`` (so an objective reads
``params.get("seed", 0)`` to seed its initialization and data order). Every configuration gets
the same seeds, so their differences are not the seeds' doing. The result lists the mean and
spread per configuration, best mean first.

>>> from optim.search import Uniform, random_search
>>> def objective(p):
...     noise = np.random.default_rng(p.get("seed", 0)).normal(0, 0.01)
...     return (p["x"] - 0.3) ** 2 + noise
>>> study = random_search(objective, {"x": Uniform(0, 1)}, 20, seed=0, progress=False)
>>> result = study.retest(objective, top=3, seeds=5)
>>> [len(row.values) for row in result.rows]
[5, 5, 5]
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tape.utils.tables import format_table, short

from .checks import Objective, check_int, check_objective, check_picklable, wants_report
from .execution import execute
from .trials import Trial

__all__ = ["RetestRow", "RetestResult", "RankedStudy", "retest"]

SEED_KEY = "seed"


@runtime_checkable
class RankedStudy(Protocol):
    """What ``retest`` reads of a study (``optim.search.Study`` has it): its space, direction,
    number of trials and ``ok`` trials best first.

    >>> from optim.search import Study
    >>> isinstance(Study({}), RankedStudy)
    True
    """

    space: dict[str, Any]
    direction: str

    def ranked(self) -> list[Trial]: ...

    def __len__(self) -> int: ...


@dataclass
class RetestRow:
    """One configuration re-run: its trial in the study, the value found there, and the
    values with each new seed (``None`` where that run failed, its error in ``errors``).

    >>> row = RetestRow(4, {"x": 0.3}, 0.01, [0.02, 0.04], [None, None])
    >>> row.mean, round(row.std, 4), row.n_ok
    (0.03, 0.0141, 2)
    """

    trial: int
    params: dict[str, Any]
    original: float | None
    values: list[float | None]
    errors: list[str | None] = field(default_factory=list)

    @property
    def ok(self) -> list[float]:
        """The values of the runs that succeeded."""
        return [v for v in self.values if v is not None]

    @property
    def n_ok(self) -> int:
        """How many runs succeeded."""
        return len(self.ok)

    @property
    def mean(self) -> float | None:
        """Mean over the successful runs (None if none succeeded)."""
        return float(np.mean(self.ok)) if self.ok else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof=1) over the successful runs; 0 for one run."""
        ok = self.ok
        return None if not ok else float(np.std(ok, ddof=1)) if len(ok) > 1 else 0.0


@dataclass
class RetestResult:
    """The re-test of a study: ``rows`` best mean first (configurations whose runs all failed
    last), and the ``seeds`` used. ``print(result)`` shows a table.

    >>> r = RetestResult([RetestRow(0, {"x": 1.0}, 0.5, [0.4, 0.6])], seeds=[7, 8], names=["x"])
    >>> print(r)
    trial  original  mean  std       min  max  ok   x
    0      0.5       0.5   0.141421  0.4  0.6  2/2  1
    """

    rows: list[RetestRow]
    seeds: list[int]
    names: list[str]
    direction: str = "minimize"

    @property
    def best(self) -> RetestRow:
        """The configuration with the best mean."""
        if not self.rows or self.rows[0].mean is None:
            raise RuntimeError("no configuration had a successful run")
        return self.rows[0]

    def table(self) -> str:
        """A fixed-width table, best mean first."""
        head = ["trial", "original", "mean", "std", "min", "max", "ok", *self.names]
        rows = [head]
        for r in self.rows:
            ok = r.ok
            stats = [r.mean, r.std, min(ok) if ok else None, max(ok) if ok else None]
            rows.append([str(r.trial), short(r.original), *map(short, stats),
                         f"{r.n_ok}/{len(r.values)}", *(short(r.params.get(n)) for n in
                                                        self.names)])
        return format_table(rows)

    def __str__(self) -> str:
        return self.table()


def _seeds(seeds: int | Sequence[int], seed: int) -> list[int]:
    if isinstance(seeds, numbers.Integral):  # a bool too, which check_int refuses
        check_int("seeds", seeds, 1)
        return [int(s) for s in np.random.SeedSequence(seed).generate_state(int(seeds))]
    given = list(seeds) if isinstance(seeds, Iterable) else []
    if not given or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                            for s in given):
        raise ValueError(f"seeds must be a count >= 1 or a non-empty list of integers; "
                         f"got {seeds!r}")
    return [int(s) for s in given]


def retest(study: RankedStudy, objective: Objective, *, top: int = 3,
           seeds: int | Sequence[int] = 5, seed: int = 0,
           executor: Executor | None = None) -> RetestResult:
    """Re-run the best ``top`` ``ok`` trials of ``study`` once per seed; see the module doc.

    ``seeds`` is a count (that many seeds drawn from ``SeedSequence(seed)``, so the same call
    gives the same seeds) or an explicit list. The objective is called as in the search
    (``objective(params)`` or ``objective(params, report)``) with ``params["seed"]`` set; a
    run that raises or returns a non-number counts as failed and is left out of the mean.
    Runs go on ``executor`` if given (any ``concurrent.futures.Executor``), else serially.

    >>> from optim.search import Study, Trial, Uniform
    >>> s = Study({"x": Uniform(0, 1)}); s.add(Trial(0, {"x": 0.5}, 0.25, "ok"))
    >>> retest(s, lambda p: p["x"] + p["seed"], top=1, seeds=[1, 2]).rows[0].values
    [1.5, 2.5]
    """
    check_objective(objective)
    check_int("top", top, 1)
    check_int("seed", seed, 0)
    if SEED_KEY in study.space:
        raise ValueError(f"the search space has a parameter named {SEED_KEY!r}, the key retest "
                         f"uses to pass each run its seed; rename that parameter")
    best = study.ranked()[:top]
    if not best:
        raise ValueError(f"the study has no successful ('ok') trial to re-test "
                         f"({len(study)} trials)")
    seed_list = _seeds(seeds, seed)
    if isinstance(executor, ProcessPoolExecutor):
        check_picklable(objective)
    reports = wants_report(objective)
    jobs = [(t, s) for t in best for s in seed_list]
    params = [{**t.params, SEED_KEY: s} for t, s in jobs]
    if executor is None:
        outcomes = [execute(objective, reports, p) for p in params]
    else:
        futures = [executor.submit(execute, objective, reports, p) for p in params]
        outcomes = [f.result() for f in futures]
    rows = []
    for k, t in enumerate(best):
        mine = outcomes[k * len(seed_list):(k + 1) * len(seed_list)]
        rows.append(RetestRow(t.number, dict(t.params), t.value,
                              [o["value"] if o["status"] == "ok" else None for o in mine],
                              [o["error"] for o in mine]))
    sign = -1.0 if study.direction == "maximize" else 1.0
    rows.sort(key=lambda r: (r.mean is None, sign * r.mean if r.mean is not None else 0.0,
                             r.trial))
    return RetestResult(rows, seed_list, list(study.space), study.direction)
