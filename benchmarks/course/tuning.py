"""Claims 1-4 and 12: how to search hyperparameters (random not grid, the right scale, coarse to
fine) and which ones are worth searching."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import optim
from optim.search import (
    LogUniform,
    OneMinusLogUniform,
    Uniform,
    coarse_to_fine,
    random_search,
)

from .common import (
    Config,
    Outcome,
    final_accuracy,
    fmt,
    fraction_in,
    network,
    plot,
    sample,
    section,
    spread,
    values,
)

# ---------------------------------------------------------------- 1. random beats a grid


def only_a_matters(params: dict[str, float], a_star: float) -> float:
    """A loss of two hyperparameters `a` and `b` in which only `a` matters (0 at `a_star`).

    Example:
        >>> only_a_matters({"a": 0.3, "b": 0.9}, a_star=0.3)
        0.0
    """
    return (params["a"] - a_star) ** 2


@section(1, "grid vs random search",
         claim="With two hyperparameters of which one does not matter, a 5x5 grid tries 5 "
               "distinct values of the one that matters; 25 random trials try 25.",
         criterion="random search tries 25 distinct values of `a` on every seed (the grid 5), "
                   "and its best loss averaged over seeds is lower than the grid's")
def grid_vs_random(config: Config) -> Outcome:
    seeds = config.pick(200, 50)
    cells = (np.arange(5) + 0.5) / 5  # the grid at its fairest: one point per cell centre
    grid_a, grid_b = (g.ravel() for g in np.meshgrid(cells, cells))
    grid_best, random_best, distinct = [], [], []
    for seed in range(config.seed, config.seed + seeds):
        a_star = float(np.random.default_rng(seed).random())
        objective = functools.partial(only_a_matters, a_star=a_star)
        grid_best.append(min(objective({"a": a, "b": b}) for a, b in zip(grid_a, grid_b)))
        study = random_search(objective, {"a": Uniform(0, 1), "b": Uniform(0, 1)}, 25,
                              seed=seed, progress=False)
        random_best.append(study.best_value)
        distinct.append(len({t.params["a"] for t in study.trials}))
    n_grid, n_random = len(set(grid_a)), min(distinct)
    g, r = float(np.mean(grid_best)), float(np.mean(random_best))
    numbers = {"grid_distinct_a": n_grid, "random_distinct_a": n_random,
               "grid_best_loss": g, "random_best_loss": r}

    def draw(ax: Any) -> None:
        ax.scatter(grid_a, grid_b, marker="s", label="5x5 grid")
        ax.scatter([t.params["a"] for t in study.trials], [t.params["b"] for t in study.trials],
                   marker="o", label="25 random trials")
        ax.axvline(a_star, color="k", lw=0.8, ls="--", label="best a")
        ax.set(xlabel="a (matters)", ylabel="b (does not matter)",
               title="distinct values of a: grid 5, random 25")
        ax.legend(fontsize=8)

    return Outcome(held=n_random == 25 and n_grid == 5 and r < g,
                   headline=f"best loss: random {r:.2e} vs grid {g:.2e} (mean of {seeds} seeds)",
                   numbers=numbers, plots=plot(config, "01_grid_vs_random", draw))


# ---------------------------------------------------------------- 2. the scale for alpha

DECADES = [(1e-4, 1e-3), (1e-3, 1e-2), (1e-2, 1e-1), (1e-1, 1.0)]


@section(2, "the scale for the learning rate",
         claim="Sampling alpha uniformly in [1e-4, 1] spends about 90% of trials in [0.1, 1]; "
               "alpha = 10**r with r uniform in [-4, 0] spends about 25% per decade.",
         criterion="with 10,000 draws: the uniform share in [0.1, 1] is within 0.02 of 0.90 "
                   "and every decade's log-uniform share is within 0.02 of 0.25")
def learning_rate_scale(config: Config) -> Outcome:
    n = 10_000
    uniform = sample(Uniform(1e-4, 1), n, config.seed)
    log = sample(LogUniform(1e-4, 1), n, config.seed)
    top = fraction_in(uniform, 0.1, 1.0)
    shares = [fraction_in(log, lo, hi) for lo, hi in DECADES]
    held = abs(top - 0.9) <= 0.02 and all(abs(s - 0.25) <= 0.02 for s in shares)

    def draw(ax: Any) -> None:
        bins = np.linspace(-4, 0, 17)
        ax.hist(np.log10(uniform), bins, alpha=0.6, label="alpha uniform in [1e-4, 1]")
        ax.hist(np.log10(log), bins, alpha=0.6, label="alpha = 10**r, r uniform in [-4, 0]")
        ax.set(xlabel="log10(alpha)", ylabel="trials", title=f"{n} draws")
        ax.legend(fontsize=8)

    per_decade = {f"log_share_1e{round(np.log10(lo))}": s for (lo, _), s in zip(DECADES, shares)}
    return Outcome(held, f"uniform: {top:.1%} in [0.1, 1]; log: {fmt(shares, 3)} per decade",
                   {"uniform_share_top_decade": top, **per_decade},
                   plots=plot(config, "02_learning_rate_scale", draw))


# ---------------------------------------------------------------- 3. the scale for beta

def ewa(signal: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """`v_t = beta * v_{t-1} + (1 - beta) * x_t` from `v_0 = 0` (no bias correction), one
    column per beta.

    Example:
        >>> ewa(np.ones(2), np.array([0.5]))[:, 0]
        array([0.5 , 0.75])
    """
    v, out = np.zeros_like(betas), np.empty((len(signal), len(betas)))
    for t, x in enumerate(signal):
        v = betas * v + (1 - betas) * x
        out[t] = v
    return out


@section(3, "the scale for an averaging beta",
         claim="Sampling beta in [0.9, 0.999] as 1 - 10**r puts as many trials in "
               "[0.99, 0.999] as in [0.9, 0.99], and that is where results are most sensitive "
               "(0.999 averages ~1000 values, 0.9995 ~2000).",
         criterion="the 1 - 10**r share in [0.99, 0.999] is within 0.02 of 0.5; and the "
                   "measured lag of an EWA on a ramp grows by a factor within 10% of 2 from "
                   "beta 0.999 to 0.9995 but by less than 1% from 0.9 to 0.9005")
def beta_scale(config: Config) -> Outcome:
    n = 10_000
    uniform = sample(Uniform(0.9, 0.999), n, config.seed)
    warped = sample(OneMinusLogUniform(0.9, 0.999), n, config.seed)
    share_u, share_w = fraction_in(uniform, 0.99, 0.999), fraction_in(warped, 0.99, 0.999)
    betas = np.array([0.9, 0.9005, 0.99, 0.999, 0.9995])
    steps = config.pick(40_000, 25_000)
    ramp = np.arange(1.0, steps + 1)
    # lag: how far the average trails a signal rising by 1 per step (-> beta / (1 - beta))
    lag = ramp[-1] - ewa(ramp, betas)[-1]
    bias = 1 - ewa(np.ones(100), betas)[-1]  # how far below 1 it still is after 100 steps
    windows = 1 / (1 - betas)
    ratio_sensitive, ratio_flat = lag[4] / lag[3], lag[1] / lag[0]
    held = (abs(share_w - 0.5) <= 0.02 and abs(ratio_sensitive - 2) <= 0.2
            and abs(ratio_flat - 1) < 0.01)
    details = [f"beta {b:<7} window 1/(1-beta) {w:7.0f}   lag on a ramp {lg:8.1f} steps   "
               f"bias after 100 steps {bs:.3f}" for b, w, lg, bs in zip(betas, windows, lag, bias)]

    def draw(ax_hist: Any, ax_ewa: Any) -> None:
        bins = np.linspace(-3, -1, 17)
        ax_hist.hist(np.log10(1 - uniform), bins, alpha=0.6, label="beta uniform")
        ax_hist.hist(np.log10(1 - warped), bins, alpha=0.6, label="beta = 1 - 10**r")
        ax_hist.set(xlabel="log10(1 - beta)", ylabel="trials", title="beta in [0.9, 0.999]")
        ax_hist.legend(fontsize=8)
        t = np.arange(3000)
        noisy = np.sin(t / 300) + np.random.default_rng(config.seed).normal(0, 0.5, len(t))
        ax_ewa.plot(t, noisy, lw=0.3, color="0.7", label="signal")
        for b, col in zip([0.9, 0.99, 0.999], ewa(noisy, np.array([0.9, 0.99, 0.999])).T):
            ax_ewa.plot(t, col, label=f"beta {b}: window {1 / (1 - b):.0f}")
        ax_ewa.set(xlabel="step", title="EWA without bias correction")
        ax_ewa.legend(fontsize=8)

    return Outcome(held, f"share in [0.99, 0.999]: 1-10**r {share_w:.1%} vs uniform "
                         f"{share_u:.1%}; lag x{ratio_sensitive:.2f} at 0.999->0.9995, "
                         f"x{ratio_flat:.3f} at 0.9->0.9005",
                   {"warped_share_top": share_w, "uniform_share_top": share_u,
                    "lag_ratio_0999_to_09995": ratio_sensitive,
                    "lag_ratio_09_to_09005": ratio_flat},
                   details, plot(config, "03_beta_scale", draw, n_axes=2))


# ---------------------------------------------------------------- 4. coarse to fine

BOWL_SPACE = {"lr": LogUniform(1e-5, 1), "beta": OneMinusLogUniform(0.8, 0.9999),
              "units": Uniform(16, 256)}


def bowl(params: dict[str, Any], optimum: dict[str, float]) -> float:
    """A smooth one-basin loss: squared distance to `optimum` in each hyperparameter's unit
    coordinate (the scale it is searched on).

    Example:
        >>> p = {"lr": 1e-3, "beta": 0.99, "units": 100.0}
        >>> bowl(p, {k: BOWL_SPACE[k].to_unit(v) for k, v in p.items()})
        0.0
    """
    return sum((BOWL_SPACE[k].to_unit(v) - optimum[k]) ** 2 for k, v in params.items())


def best_so_far(losses: list[float]) -> np.ndarray:
    """The lowest loss among the first k trials, for each k."""
    return np.minimum.accumulate(losses)


@section(4, "coarse to fine",
         claim="Coarse to fine finds a better point than the same number of purely random "
               "trials.",
         criterion="on a one-basin loss of three hyperparameters, over many seeds (a random "
                   "optimum each), 3 rounds of 10 coarse-to-fine trials reach a lower mean best "
                   "loss than 30 random trials, and a lower best on more than half the seeds")
def coarse_vs_random(config: Config) -> Outcome:
    seeds = config.pick(30, 10)
    c2f, rnd, c2f_curves, rnd_curves = [], [], [], []
    for seed in range(config.seed, config.seed + seeds):
        u = np.random.default_rng(1000 + seed).random(3)
        objective = functools.partial(bowl, optimum=dict(zip(BOWL_SPACE, u)))
        fine = coarse_to_fine(objective, BOWL_SPACE, rounds=3, trials_per_round=10, seed=seed,
                              progress=False)
        plain = random_search(objective, BOWL_SPACE, 30, seed=seed, progress=False)
        c2f.append(fine.best_value)
        rnd.append(plain.best_value)
        c2f_curves.append(best_so_far(values(fine)))
        rnd_curves.append(best_so_far(values(plain)))
    wins = float(np.mean(np.array(c2f) < np.array(rnd)))
    mean_c, mean_r = float(np.mean(c2f)), float(np.mean(rnd))

    def draw(ax: Any) -> None:
        ax.semilogy(np.arange(1, 31), np.mean(c2f_curves, 0), label="coarse to fine (3 x 10)")
        ax.semilogy(np.arange(1, 31), np.mean(rnd_curves, 0), label="random (30)")
        ax.set(xlabel="trials", ylabel="best loss so far (mean over seeds)")
        ax.legend(fontsize=8)

    return Outcome(mean_c < mean_r and wins > 0.5,
                   f"mean best loss: coarse-to-fine {mean_c:.2e} vs random {mean_r:.2e}; "
                   f"better on {wins:.0%} of {seeds} seeds",
                   {"coarse_to_fine_best": mean_c, "random_best": mean_r, "win_rate": wins},
                   plots=plot(config, "04_coarse_to_fine", draw))


# ---------------------------------------------------------------- 12. Adam's defaults

ADAM_DEFAULTS = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
TUNE_LR = {"learning_rate": LogUniform(1e-4, 1e-1)}
TUNE_BETAS = {"beta_1": OneMinusLogUniform(0.8, 0.99), "beta_2": OneMinusLogUniform(0.99, 0.9999),
              "epsilon": LogUniform(1e-10, 1e-6)}


def adam_accuracy(params: dict[str, Any], epochs: int, seed: int) -> float:
    """Validation accuracy of the course's network trained with `Adam(**params)`."""
    optimizer = optim.Adam(**{**ADAM_DEFAULTS, **params})
    return final_accuracy(network(seed=seed), optimizer, epochs=epochs, seed=seed)[0]


@section(12, "Adam's defaults are rarely worth tuning",
         claim="Adam's defaults beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-8 are rarely worth "
               "tuning.",
         criterion="over the same number of random trials on digits, the spread (max - min) of "
                   "validation accuracy when beta_1, beta_2 and epsilon are tuned (learning rate "
                   "1e-3) is smaller than when the learning rate is tuned (defaults otherwise)")
def adam_defaults(config: Config) -> Outcome:
    n, epochs = config.pick(10, 4), config.pick(5, 2)
    objective = functools.partial(adam_accuracy, epochs=epochs, seed=config.seed)
    default = objective({})
    by_space = {name: random_search(objective, space, n, seed=config.seed, direction="maximize",
                                    progress=False)
                for name, space in (("lr", TUNE_LR), ("betas", TUNE_BETAS))}
    accuracy = {name: values(s) for name, s in by_space.items()}
    spreads = {name: spread(v) for name, v in accuracy.items()}
    gains = {name: max(v) - default for name, v in accuracy.items()}
    details = [f"tuning {name:5}: accuracies {fmt(sorted(v))}" for name, v in accuracy.items()]
    details.append(f"defaults (lr 1e-3): {default:.3f}; best lr found "
                   f"{by_space['lr'].best_params['learning_rate']:.2e}")
    return Outcome(spreads["betas"] < spreads["lr"],
                   f"accuracy spread: tuning betas/eps {spreads['betas']:.3f} vs tuning lr "
                   f"{spreads['lr']:.3f}; best gain over defaults {gains['betas']:+.3f} vs "
                   f"{gains['lr']:+.3f}",
                   {"spread_betas": spreads["betas"], "spread_lr": spreads["lr"],
                    "gain_betas": gains["betas"], "gain_lr": gains["lr"], "default": default},
                   details)
