"""Successive halving inside one `nn.Population`: train K members, and every `interval` epochs
keep the best `1/eta` of them (`pop.select`, optimizer state kept) until one remains.

Example:
    >>> import nn, optim
    >>> pop = nn.Population(lambda: nn.Dense(1, input_dim=2), size=4, seed=0)
    >>> opt = optim.SGD([0.0, 0.1, 0.01, 0.001])
    >>> x, y = np.ones((8, 2)), np.zeros((8, 1))
    >>> def train(epoch):
    ...     pop.train_step(x, y, nn.mean_squared_error, opt)
    >>> def score():
    ...     return -pop.member_losses(nn.mean_squared_error, pop(x), y, shared=True).numpy()
    >>> result = cull(pop, opt, train, score, interval=1, eta=2)
    >>> pop.size, result.survivor, float(opt.learning_rate[0])
    (1, 1, 0.1)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn.population import Population

__all__ = ["cull", "CullResult", "rank_members"]


def rank_members(scores: Any, direction: str = "maximize") -> np.ndarray:
    """Member indices best first; a NaN score is the worst (ties: lower index first).

    Example:
        >>> rank_members([0.5, np.nan, 0.9, 0.1]).tolist()
        [2, 0, 3, 1]
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize'; got {direction!r}")
    s = np.asarray(scores, float).ravel()
    worst = -np.inf if direction == "maximize" else np.inf
    s = np.where(np.isfinite(s), s, worst)
    return np.lexsort((np.arange(s.size), -s if direction == "maximize" else s))


@dataclass
class CullResult:
    """What `cull` did: `rounds[i]` lists the original indices of the members alive in round
    i and their `scores`; `survivor` is the original index of the last member.

    Example:
        >>> CullResult([[0, 1]], [[0.1, 0.2]], 1).survivor
        1
    """

    members: list[list[int]]
    scores: list[list[float]] = field(default_factory=list)
    survivor: int = 0


def cull(pop: Population, optimizer: Any, train: Callable[[int], Any],
         score: Callable[[], Any], *, interval: int, eta: int = 2,
         direction: str = "maximize") -> CullResult:
    """Successive halving of a population (see the module doc). `train(epoch)` trains the
    population (as it is now) one epoch; `score()` gives one value per current member (e.g.
    validation accuracy; NaN counts as the worst). Every `interval` epochs the best
    `ceil(size / eta)` members are kept (`pop.select(..., optimizer)`: weights, batch-norm
    statistics, optimizer slots and per-member hyperparameters follow), until one remains.
    """
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"interval must be an integer >= 1 (epochs between culls); got "
                         f"{interval!r}")
    if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
        raise ValueError(f"eta must be an integer >= 2 (keep 1/eta each time); got {eta!r}")
    alive = list(range(pop.size))
    result = CullResult([], [])
    epoch = 0
    while True:
        for _ in range(interval):
            train(epoch)
            epoch += 1
        scores = np.asarray(score(), float).ravel()
        if scores.shape != (pop.size,):
            raise ValueError(f"score() must give one value per member ({pop.size}); got shape "
                             f"{scores.shape}")
        result.members.append(list(alive))
        result.scores.append(scores.tolist())
        if pop.size == 1:
            break
        keep = sorted(rank_members(scores, direction)[: math.ceil(pop.size / eta)].tolist())
        pop.select(keep, optimizer)
        alive = [alive[k] for k in keep]
    result.survivor = alive[0]
    return result
