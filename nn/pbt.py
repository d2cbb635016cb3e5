"""Population-based training (Jaderberg et al. 2017) in one `nn.Population`.

Every `interval` epochs the members are ranked by `score()`. Each of the worst `fraction`
(and every member whose score is NaN or that the population froze after a non-finite step)
copies a good member: its weights, batch-norm statistics and optimizer state (`copy_member`),
then *explores*: each hyperparameter of `space` is resampled from the space with probability
`resample`, else multiplied by 0.8 or 1.25 on its own scale (the rate itself on a log scale,
`1 - beta` for a `OneMinusLogUniform` beta, the value for a linear one; a `Choice` moves to a
neighbouring option) and kept inside the space. `space` maps optimizer hyperparameter names to
`optim.search` distributions (anything with `to_unit`, `from_unit`, `sample` and a `scale`).

The result records each member's lineage: every copy (epoch, source, why) and the
hyperparameters it trained with from each epoch on.

Example:
    >>> import nn, optim
    >>> from optim.search import LogUniform
    >>> pop = nn.Population(lambda: nn.Dense(1, input_dim=2), size=4, seed=0)
    >>> opt = optim.SGD(0.1)
    >>> x, y = np.ones((8, 2)), np.zeros((8, 1))
    >>> def train(epoch):
    ...     pop.train_step(x, y, nn.mean_squared_error, opt)
    >>> def score():
    ...     return -pop.member_losses(nn.mean_squared_error, pop(x), y, shared=True).numpy()
    >>> result = population_based_training(pop, opt, train, score, epochs=6, interval=2,
    ...                                    space={"learning_rate": LogUniform(1e-3, 0.3)}, seed=0)
    >>> len(result.copies) > 0, opt.learning_rate.shape
    (True, (4,))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn.culling import rank_members
from nn.population import Population

__all__ = ["population_based_training", "PBTResult", "copy_member", "perturb"]

FACTORS = (0.8, 1.25)


def copy_member(pop: Population, optimizer: Any, source: int, target: int) -> None:
    """Member `target` becomes a copy of member `source`: every variable (weights and
    batch-norm statistics), the optimizer's slots and per-member hyperparameters; it is no
    longer frozen.

    Example:
        >>> import nn, optim
        >>> pop = nn.Population(lambda: nn.Dense(1, input_dim=2), size=2, seed=0)
        >>> opt = optim.Adam([0.1, 0.2])
        >>> _ = pop.train_step(np.ones((4, 2)), np.zeros((4, 1)), nn.mean_squared_error, opt)
        >>> copy_member(pop, opt, 0, 1)
        >>> bool((pop.variables[0].numpy()[1] == pop.variables[0].numpy()[0]).all())
        True
    """
    for v in pop.variables:
        value = v.numpy()
        value[target] = value[source]
        v.assign(value)
    state = optimizer.state_dict()
    for key, value in state.items():
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == pop.size and (
                key.startswith("slots/") or key.startswith("hyperparameters/")):
            value[target] = value[source]
    optimizer.load_state_dict(state)
    pop.frozen[target] = False


def perturb(dist: Any, value: Any, rng: np.random.Generator, resample: float) -> Any:
    """An explored value of `value` inside `dist` (see the module doc).

    Example:
        >>> from optim.search import LogUniform, OneMinusLogUniform
        >>> rng = np.random.default_rng(0)
        >>> round(perturb(LogUniform(1e-4, 1), 0.01, rng, 0.0), 8) in (0.008, 0.0125)
        True
        >>> round(perturb(OneMinusLogUniform(0.9, 0.999), 0.99, rng, 0.0), 6) in (0.992, 0.9875)
        True
        >>> perturb(LogUniform(1e-4, 1), 0.9, np.random.default_rng(1), 0.0) <= 1
        True
    """
    if rng.random() < resample:
        return dist.sample(rng)
    factor = FACTORS[int(rng.integers(2))]
    scale = getattr(dist, "scale", None)
    if scale == "categorical":
        k = dist.options.index(value) + (1 if factor > 1 else -1)
        return dist.options[min(max(k, 0), len(dist.options) - 1)]
    if scale == "fixed":
        return value
    moved = 1 - (1 - value) * factor if scale == "one_minus_log" else value * factor
    return dist.from_unit(min(1.0, max(0.0, dist.to_unit(moved))))


@dataclass
class PBTResult:
    """What `population_based_training` did. `scores[i]` holds the members' scores at the
    i-th exploit step; `copies` lists `(epoch, target, source, why)` with why `"exploit"`
    (among the worst) or `"nonfinite"` (NaN score or frozen); `schedule[k]` is member k's list of
    `(epoch, hyperparameters)` from which it trained with those values; `lineage(k)` the
    copies that made member k.

    Example:
        >>> r = PBTResult([[1.0, 0.0]], [(2, 1, 0, "exploit")], [[(0, {})], [(0, {}), (2, {})]])
        >>> r.lineage(1)
        [(2, 1, 0, 'exploit')]
    """

    scores: list[list[float]] = field(default_factory=list)
    copies: list[tuple[int, int, int, str]] = field(default_factory=list)
    schedule: list[list[tuple[int, dict[str, Any]]]] = field(default_factory=list)

    def lineage(self, member: int) -> list[tuple[int, int, int, str]]:
        """The copies into `member`, in order."""
        return [c for c in self.copies if c[1] == member]


def population_based_training(pop: Population, optimizer: Any, train: Callable[[int], Any],
                              score: Callable[[], Any], *, epochs: int, interval: int,
                              space: Mapping[str, Any], fraction: float = 0.25,
                              resample: float = 0.25, seed: int = 0,
                              direction: str = "maximize") -> PBTResult:
    """Population-based training (see the module doc) for `epochs` epochs; `train(epoch)`
    trains the population one epoch, `score()` gives one value per member. The members'
    starting hyperparameters are drawn from `space` (seeded by `seed`) and set on `optimizer`
    as per-member arrays. Exploit steps come after epochs `interval`, `2 * interval`, ... before
    `epochs`; each of the worst `ceil(fraction * K)` copies one of the best `ceil(fraction * K)`
    (drawn at random).
    """
    for name, value in (("epochs", epochs), ("interval", interval)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {name}={value!r}")
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5] (the worst fraction copies the best "
                         f"fraction); got fraction={fraction!r}")
    unknown = sorted(set(space) - set(optimizer.hyperparameters))
    if unknown:
        raise ValueError(f"space names {unknown}, which are not hyperparameters of "
                         f"{type(optimizer).__name__} (it has {sorted(optimizer.hyperparameters)})")
    rng = np.random.default_rng(seed)
    k = pop.size
    values = {name: [d.sample(rng) for _ in range(k)] for name, d in space.items()}
    optimizer.set_hyperparameters(**{n: np.array(v, float) for n, v in values.items()})
    result = PBTResult(schedule=[[(0, {n: values[n][m] for n in space})] for m in range(k)])
    n = math.ceil(fraction * k)
    for epoch in range(epochs):
        train(epoch)
        done = epoch + 1
        if done % interval or done == epochs:
            continue
        scores = np.asarray(score(), float).ravel()
        if scores.shape != (k,):
            raise ValueError(f"score() must give one value per member ({k}); got shape "
                             f"{scores.shape}")
        result.scores.append(scores.tolist())
        order = rank_members(scores, direction)
        bad = ~np.isfinite(scores) | pop.frozen
        good = [int(m) for m in order if not bad[m]][:n]
        if not good:
            raise FloatingPointError(f"after epoch {done} every member's score is NaN or its "
                                     f"training diverged; nothing to copy from")
        worst = {int(m) for m in order[k - n:]} | {int(m) for m in np.flatnonzero(bad)}
        for target in sorted(worst - set(good)):
            source = good[int(rng.integers(len(good)))]
            copy_member(pop, optimizer, source, target)
            for name, d in space.items():
                values[name][target] = perturb(d, values[name][source], rng, resample)
            why = "nonfinite" if bad[target] else "exploit"
            result.copies.append((done, target, source, why))
            result.schedule[target].append((done, {n: values[n][target] for n in space}))
        optimizer.set_hyperparameters(**{n: np.array(v, float) for n, v in values.items()})
    return result
