"""Trials and the study that collects them.

>>> from optim.search import Uniform, random_search
>>> study = random_search(lambda p: (p["x"] - 1) ** 2, {"x": Uniform(0, 2)}, 20, seed=0,
...                       progress=False)
>>> len(study), study.best_trial.status
(20, 'ok')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

from tape.utils.files import atomic_write

from .importance import importance
from .report import to_csv_text, trials_table
from .retest import RetestResult, retest
from .spaces import Distribution
from .trials import Trial, TrialPruned

__all__ = ["Trial", "Study", "TrialPruned"]

class Study:
    """The trials of one search, in trial-number order, and the best among them.

    >>> from optim.search import Uniform
    >>> s = Study({"x": Uniform(0, 1)}, direction="maximize", seed=0)
    >>> s.add(Trial(0, {"x": 0.2}, 0.2, "ok")); s.add(Trial(1, {"x": 0.7}, 0.7, "ok"))
    >>> s.best_params
    {'x': 0.7}
    """

    def __init__(self, space: Mapping[str, Distribution], *, direction: str = "minimize",
                 seed: int | None = None, trials: Iterable[Trial] = ()) -> None:
        self.space = dict(space)
        self.direction = direction
        self.seed = seed
        self._trials: dict[int, Trial] = {}
        for t in trials:
            self.add(t)

    def add(self, trial: Trial) -> None:
        """Record a finished trial (a later trial with the same number replaces it)."""
        self._trials[trial.number] = trial

    @property
    def trials(self) -> list[Trial]:
        """All trials sorted by number."""
        return [self._trials[k] for k in sorted(self._trials)]

    def __len__(self) -> int:
        return len(self._trials)

    def __repr__(self) -> str:
        return f"<Study {len(self)} trials, direction={self.direction!r}, seed={self.seed}>"

    def ranked(self) -> list[Trial]:
        """The ``ok`` trials, best first (ties: lower trial number first)."""
        sign = -1.0 if self.direction == "maximize" else 1.0
        ok = [t for t in self.trials if t.status == "ok"]
        return sorted(ok, key=lambda t: (sign * t.value, t.number))  # type: ignore[operator]

    @property
    def best_trial(self) -> Trial:
        """The best ``ok`` trial; ``RuntimeError`` if there is none."""
        ranked = self.ranked()
        if ranked:
            return ranked[0]
        if not self._trials:
            raise RuntimeError("the study has no trials yet")
        first = next((t for t in self.trials if t.error), self.trials[0])
        raise RuntimeError(f"all {len(self)} trials failed or were pruned; first error "
                           f"(trial {first.number}): {first.error}")

    @property
    def best_params(self) -> dict[str, Any]:
        """Parameters of ``best_trial``."""
        return self.best_trial.params

    @property
    def best_value(self) -> float:
        """Objective value of ``best_trial``."""
        return self.best_trial.value  # type: ignore[return-value]

    def table(self, top: int | None = None) -> str:
        """A fixed-width table, best first (then pruned and failed trials), ready to print.

        >>> from optim.search import Uniform
        >>> print(Study({"x": Uniform(0, 1)}).table())  # doctest: +NORMALIZE_WHITESPACE
        trial status value x duration_s error
        """
        ranked = self.ranked()
        rest = [t for t in self.trials if t.status != "ok"]
        return trials_table((ranked + rest)[:top], list(self.space))

    def retest(self, objective: Any, *, top: int = 3, seeds: int | Sequence[int] = 5,
               seed: int = 0, executor: Executor | None = None) -> RetestResult:
        """Re-run the best ``top`` configurations with new seeds (passed as ``params["seed"]``)
        and report mean and spread per configuration; see ``optim.search.retest``.

        >>> from optim.search import Uniform
        >>> s = Study({"x": Uniform(0, 1)}); s.add(Trial(0, {"x": 0.5}, 0.25, "ok"))
        >>> s.retest(lambda p: p["x"] + p["seed"], top=1, seeds=[1, 2]).best.mean
        2.0
        """
        return retest(self, objective, top=top, seeds=seeds, seed=seed, executor=executor)

    def importance(self, *, n_trees: int = 64, seed: int = 0) -> dict[str, float]:
        """The share of the objective's variance explained by each searched hyperparameter,
        most important first (functional ANOVA on a random forest of the ``ok`` trials, in
        each hyperparameter's own scale; see ``optim.search.importance``). Needs scikit-learn
        (extra ``demo``); ``plot_importance`` draws it.

        >>> from optim.search import LogUniform, Uniform, random_search
        >>> study = random_search(lambda p: abs(p["lr"] - 0.01) + 0 * p["x"],
        ...                       {"lr": LogUniform(1e-4, 1), "x": Uniform(0, 1)}, 40, seed=0,
        ...                       progress=False)
        >>> list(study.importance())
        ['lr', 'x']
        """
        return importance(self.space, self.trials, n_trees=n_trees, seed=seed)

    def to_csv(self, path: str | None = None) -> str:
        """The trials as CSV text (trial order); also written atomically to ``path`` if given.

        >>> from optim.search import Uniform
        >>> Study({"x": Uniform(0, 1)}).to_csv().splitlines()[0]
        'trial,status,value,x,duration_s,round,error'
        """
        text = to_csv_text(self.trials, list(self.space))
        if path is not None:
            atomic_write(path, text.encode())
        return text
