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
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn.layers.population import Population
from nn.training.loop import Callback, TrainingState
from nn.tuning.culling import rank_members
from tape.utils.files import atomic_write

__all__ = ["population_based_training", "PBTResult", "copy_member", "perturb",
           "HyperparameterSchedule", "plot_pbt"]

Schedule = list[tuple[int, dict[str, Any]]]

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
    copies that made member k; `score_epochs[i]` the epoch after which `scores[i]` was taken.
    `schedule_of(k)` is the schedule member k's weights trained with (following its copies),
    for `HyperparameterSchedule`; `plot(path)` draws the scores and copies (`plot_pbt`).

    Example:
        >>> r = PBTResult([[1.0, 0.0]], [(2, 1, 0, "exploit")],
        ...               [[(0, {"lr": 0.1})], [(0, {"lr": 0.2}), (2, {"lr": 0.08})]])
        >>> r.lineage(1)
        [(2, 1, 0, 'exploit')]
        >>> r.schedule_of(1)
        [(0, {'lr': 0.1}), (2, {'lr': 0.08})]
    """

    scores: list[list[float]] = field(default_factory=list)
    copies: list[tuple[int, int, int, str]] = field(default_factory=list)
    schedule: list[Schedule] = field(default_factory=list)
    score_epochs: list[int] = field(default_factory=list)

    def lineage(self, member: int) -> list[tuple[int, int, int, str]]:
        """The copies into `member`, in order."""
        return [c for c in self.copies if c[1] == member]

    def schedule_of(self, member: int) -> Schedule:
        """The `(epoch, hyperparameters)` changes that member `member`'s current weights
        trained with: its source's schedule (recursively) before its last copy, then its own
        from that copy on. Replayed with `HyperparameterSchedule` on a model built with the
        seed of the member the lineage starts from (`member` itself if it was never
        overwritten), `nn.fit` retraces the member.

        Example:
            >>> PBTResult(schedule=[[(0, {"lr": 0.1})]]).schedule_of(0)
            [(0, {'lr': 0.1})]
        """
        if not 0 <= member < len(self.schedule):
            raise ValueError(f"member must be in [0, {len(self.schedule)}); got {member!r}")
        copies = self.lineage(member)
        if not copies:
            return list(self.schedule[member])
        epoch, _, source, _ = copies[-1]
        before = [(e, h) for e, h in self._schedule_until(source, epoch) if e < epoch]
        return before + [(e, h) for e, h in self.schedule[member] if e >= epoch]

    def origin(self, member: int) -> int:
        """The member whose starting weights `member`'s current weights descend from (through
        its copies): build the replayed model with `pop.seeds[result.origin(k)]`.

        Example:
            >>> PBTResult(copies=[(2, 1, 0, "exploit")], schedule=[[], []]).origin(1)
            0
        """
        copies = self.lineage(member)
        if not copies:
            return member
        epoch, _, source, _ = copies[-1]
        return self._until(epoch).origin(source)

    def _schedule_until(self, member: int, epoch: int) -> Schedule:
        """`schedule_of(member)` as it stood after the copies of epochs before `epoch`."""
        return self._until(epoch).schedule_of(member)

    def _until(self, epoch: int) -> PBTResult:
        return PBTResult(copies=[c for c in self.copies if c[0] < epoch],
                         schedule=[[(e, h) for e, h in s if e < epoch] for s in self.schedule])

    def plot(self, path: str | os.PathLike) -> str:
        """`plot_pbt(self, path)`."""
        return plot_pbt(self, path)


class HyperparameterSchedule(Callback):
    """A callback that sets the optimizer's hyperparameters at the beginning of each epoch
    from `schedule`, a list of `(epoch, {name: value})` changes (each applies from that epoch
    on, as `PBTResult.schedule_of(k)` gives them), with `optimizer.set_hyperparameters`.
    Replays a population-based-training member's schedule on a single model.

    Example:
        >>> import nn, optim
        >>> opt = optim.SGD(0.5)
        >>> h = nn.fit(nn.Dense(1, seed=0), np.ones((4, 2)), np.zeros((4, 1)),
        ...            loss=nn.mean_squared_error, optimizer=opt, epochs=3, verbose=0,
        ...            callbacks=[HyperparameterSchedule([(0, {"learning_rate": 0.1}),
        ...                                               (2, {"learning_rate": 0.01})])])
        >>> opt.learning_rate
        0.01
    """

    def __init__(self, schedule: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        changes = [(e, dict(h)) for e, h in schedule]
        epochs = [e for e, _ in changes]
        if any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < 0
               for e in epochs) or epochs != sorted(set(epochs)):
            raise ValueError(f"schedule must list (epoch, hyperparameters) with increasing "
                             f"integer epochs >= 0; got epochs {epochs}")
        self.schedule = changes

    def on_epoch_begin(self, state: TrainingState) -> None:
        for epoch, values in self.schedule:
            if epoch == state.epoch:
                state.optimizer.set_hyperparameters(**values)

    def on_train_begin(self, state: TrainingState) -> None:
        unknown = sorted({n for _, h in self.schedule for n in h}
                         - set(state.optimizer.hyperparameters))
        if unknown:
            raise ValueError(f"the schedule sets {unknown}, which are not hyperparameters of "
                             f"{type(state.optimizer).__name__} (it has "
                             f"{sorted(state.optimizer.hyperparameters)})")


def plot_pbt(result: PBTResult, path: str | os.PathLike) -> str:
    """Draw each member's score over the epochs it was scored at, with a marker where a
    member copied another (labelled with the source), into the PNG file `path` (written
    atomically); returns `path`. Needs matplotlib (the `plot` extra).

    Example:
        >>> plot_pbt(PBTResult(), "pbt.png")
        Traceback (most recent call last):
        ValueError: nothing to plot: the result has no scores (train past the first exploit step)
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'tape-autodiff[plot]'"
                          ) from None
    if not result.scores:
        raise ValueError("nothing to plot: the result has no scores (train past the first "
                         "exploit step)")
    epochs = result.score_epochs or list(range(1, len(result.scores) + 1))
    at = {e: i for i, e in enumerate(epochs)}
    scores = np.asarray(result.scores, float)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    colors = [f"C{m % 10}" for m in range(scores.shape[1])]
    for m in range(scores.shape[1]):
        ax.plot(epochs, scores[:, m], "-o", color=colors[m], markersize=3, label=f"member {m}")
    for n, (epoch, target, source, why) in enumerate(result.copies):
        y = scores[at[epoch], source] if epoch in at else np.nan
        ax.plot([epoch], [y], "v" if why == "exploit" else "X", color=colors[target],
                markersize=9, markeredgecolor="black",
                label="copy (member <- source)" if n == 0 else None)
        ax.annotate(f"{target}<-{source}", (epoch, y), xytext=(4, 4),
                    textcoords="offset points", fontsize=7, color=colors[target])
    ax.set_xlabel("epoch")
    ax.set_ylabel("score")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"population-based training: {len(result.copies)} copies")
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


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
        result.score_epochs.append(done)
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
