"""Claim 16: the notes' ranking of hyperparameters by importance, checked with fANOVA on digits.

The notes rank what to tune: the learning rate first; then the momentum term (Adam's beta_1),
the number of hidden units and the mini-batch size; then the number of layers and the
learning-rate decay; Adam's beta_2 and epsilon almost never. A random search over all eight on
digits, each on its own scale, then `study.importance()` (the share of the variance of the
validation error each explains, on a random forest of the trials) measures the ranking.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import optim
from optim.schedules import InverseTimeDecay
from optim.search import (
    Choice,
    IntUniform,
    LogIntUniform,
    LogUniform,
    OneMinusLogUniform,
    random_search,
)

from .common import Config, Outcome, digits, final_accuracy, fmt, network, section

# the notes' tiers, most important first
TIERS = (("learning_rate",), ("beta_1", "hidden_units", "batch_size"),
         ("layers", "decay_rate"), ("beta_2", "epsilon"))
SPACE = {
    "learning_rate": LogUniform(1e-4, 1e-1),
    "beta_1": OneMinusLogUniform(0.9, 0.999),      # the notes' range for a momentum beta
    "hidden_units": LogIntUniform(16, 256),
    "batch_size": Choice([32, 64, 128, 256]),
    "layers": IntUniform(1, 4),
    "decay_rate": LogUniform(1e-2, 1.0),           # lr / (1 + decay_rate * epoch)
    "beta_2": OneMinusLogUniform(0.99, 0.9999),
    "epsilon": LogUniform(1e-10, 1e-6),
}
NEGLIGIBLE = 0.05  # "almost never matters": less than 5% of the variance


def error(params: dict[str, Any], *, epochs: int, seed: int) -> float:
    """Validation error of the course's network (`layers` hidden layers of `hidden_units`,
    batch norm) trained `epochs` epochs with Adam and inverse-time learning-rate decay. A run
    that diverges counts as the model it left behind.

    Example:
        >>> p = {"learning_rate": 1e-2, "beta_1": 0.9, "hidden_units": 32, "batch_size": 64,
        ...      "layers": 1, "decay_rate": 0.1, "beta_2": 0.999, "epsilon": 1e-8}
        >>> 0 <= error(p, epochs=1, seed=0) < 0.5
        True
    """
    batch = int(params["batch_size"])
    steps = math.ceil(len(digits()[0]) / batch)
    rate = InverseTimeDecay(params["learning_rate"], params["decay_rate"], steps_per_epoch=steps)
    optimizer = optim.Adam(rate, beta_1=params["beta_1"], beta_2=params["beta_2"],
                           epsilon=params["epsilon"])
    model = network(hidden=[int(params["hidden_units"])] * int(params["layers"]), seed=seed)
    return 1.0 - final_accuracy(model, optimizer, epochs=epochs, seed=seed, batch_size=batch)[0]


def tier_means(shares: dict[str, float]) -> list[float]:
    """The mean importance share of each of the notes' tiers.

    Example:
        >>> tier_means({"learning_rate": 0.5, "beta_1": 0.2, "hidden_units": 0.1,
        ...             "batch_size": 0.0, "layers": 0.1, "decay_rate": 0.0, "beta_2": 0.0,
        ...             "epsilon": 0.02})
        [0.5, 0.1, 0.05, 0.01]
    """
    return [round(float(np.mean([shares[n] for n in tier])), 12) for tier in TIERS]


@section(16, "which hyperparameters matter",
         claim="The learning rate matters most; then momentum (Adam's beta_1), hidden units and "
               "mini-batch size; then layers and learning-rate decay; Adam's beta_2 and "
               "epsilon almost never matter.",
         criterion="random search over all eight on digits (each on its scale), fANOVA "
                   "importance shares of the validation error: the learning rate has the "
                   "largest share, beta_2 and epsilon each explain under 5% of the variance, "
                   "and the mean share falls from tier to tier (second > third > fourth)")
def importance_ranking(config: Config) -> Outcome:
    n, epochs = config.pick(40, 8), config.pick(3, 1)
    study = random_search(lambda p: error(p, epochs=epochs, seed=config.seed), SPACE, n,
                          seed=config.seed, progress=False)
    shares = study.importance(seed=config.seed)
    means = tier_means(shares)
    first = next(iter(shares))
    negligible = all(shares[name] < NEGLIGIBLE for name in TIERS[3])
    falling = means[1] > means[2] > means[3]
    held = first == "learning_rate" and negligible and falling
    ranked = ", ".join(f"{name} {share:.2f}" for name, share in shares.items())
    details = [f"importance (share of variance), most first: {ranked}",
               f"tier means (notes' order): {fmt(means)}; {n} trials of {epochs} epochs, "
               f"best validation error {study.best_value:.3f}"]
    return Outcome(held, f"first: {first}; tier means {fmt(means, 2)}",
                   {**{f"share_{name}": share for name, share in shares.items()},
                    **{f"tier{k + 1}_mean": m for k, m in enumerate(means)}}, details)
