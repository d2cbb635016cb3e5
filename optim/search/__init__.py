"""Hyperparameter search the way the deep-learning course teaches it.

Random search rather than a grid, each hyperparameter sampled on the scale that matters
(``LogUniform`` for learning rates, ``OneMinusLogUniform`` for averaging betas), coarse to fine,
and many models in parallel on any ``concurrent.futures.Executor``. A study can be stored in a
JSON-lines file and resumed after a crash. An objective is any callable taking a dict of
parameters (and optionally a ``report(step, value)`` callback) and returning a number.

>>> from optim.search import LogUniform, OneMinusLogUniform, random_search
>>> space = {"lr": LogUniform(1e-4, 1), "beta": OneMinusLogUniform(0.9, 0.999), "epochs": 5}
>>> study = random_search(lambda p: (p["lr"] - 0.01) ** 2, space, n_trials=10, seed=0,
...                       progress=False)
>>> sorted(study.best_params)
['beta', 'epochs', 'lr']
"""

from .halving import hyperband
from .plots import plot_importance, plot_learning_curves, plot_pairs
from .pruners import MedianPruner, Pruner, SuccessiveHalvingPruner
from .retest import RetestResult, RetestRow
from .runner import PopulationObjective, coarse_to_fine, random_search
from .spaces import (
    Choice,
    Distribution,
    Fixed,
    IntUniform,
    LogIntUniform,
    LogUniform,
    OneMinusLogUniform,
    Uniform,
)
from .storage import load_study
from .study import Study, Trial, TrialPruned

__all__ = [
    "Distribution", "Uniform", "LogUniform", "IntUniform", "LogIntUniform", "Choice",
    "OneMinusLogUniform", "Fixed",
    "random_search", "coarse_to_fine", "PopulationObjective", "Study", "Trial", "TrialPruned",
    "load_study",
    "plot_pairs", "plot_learning_curves", "RetestResult", "RetestRow",
    "Pruner", "MedianPruner", "SuccessiveHalvingPruner", "hyperband",
    "plot_importance",
]
