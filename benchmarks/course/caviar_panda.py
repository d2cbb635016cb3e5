"""Claim 5: Caviar (many models in parallel) vs Panda (one model babysat), same epoch budget.

Caviar is `random_search` over Adam's learning rate, each model trained for its share of the
budget. Panda is one `nn.Babysitter` run started in the middle of the same range: after every
epoch, if the validation loss rose, it rolls back to the previous epoch and halves the
learning rate; epochs thrown away by a rollback count against its budget too.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import nn
import optim
from optim.search import random_search

from .common import (
    Config,
    Outcome,
    digits,
    final_accuracy,
    fmt,
    network,
    plot,
    save_figure,
    section,
    values,
)
from .tuning import TUNE_LR


def caviar_objective(params: dict[str, Any], report: Any, *, epochs: int, seed: int) -> float:
    """One Caviar model: Adam at `params['learning_rate']` for `epochs` epochs; reports the
    validation accuracy after each epoch and returns the last."""
    def report_epoch(state: nn.TrainingState) -> None:
        report(state.epoch + 1, state.logs["val_accuracy"])

    return final_accuracy(network(seed=seed), optim.Adam(params["learning_rate"]),
                          epochs=epochs, seed=seed, callbacks=[report_epoch])[0]


@dataclass
class PandaRun:
    """What the babysat run did: the kept epochs' validation accuracy, the learning rate of
    every epoch trained (kept or rolled back), the number of rollbacks, and its plot."""

    accuracy: list[float]
    rates: list[float]
    rollbacks: int
    plots: list[str]


def panda(config: Config, budget: int) -> PandaRun:
    """Babysit one model for `budget` epochs in a temporary directory (see the module doc)."""
    X, y, X_val, y_val = digits()
    lr = float(np.sqrt(TUNE_LR["learning_rate"].low * TUNE_LR["learning_rate"].high))
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, nn.Babysitter(
            network(seed=config.seed), loss=nn.softmax_cross_entropy, optimizer=optim.Adam(lr),
            train=(X, y), validation=(X_val, y_val), batch_size=64, seed=config.seed,
            directory=os.path.join(tmp, "panda")) as run:
        for _ in range(budget):
            rates.append(lr)
            run.train(epochs=1)
            losses = run.history.val_loss
            if len(losses) > 1 and losses[-1] > losses[-2]:
                run.rollback(run.epoch - 1)
                lr /= 2
                run.set(learning_rate=lr)
        rollbacks = sum(e["event"] == "rollback" for e in run.history.events)
        plots = save_figure(config, "05_panda_babysitter", run.figure)
        return PandaRun(run.history.val_accuracy, rates, rollbacks, plots)


@section(5, "Caviar vs Panda",
         claim="The same budget can be spent on many models in parallel (Caviar) or on one "
               "babysat model (Panda).",
         criterion="with the same number of epochs trained, both the best Caviar model and the "
                   "Panda model reach a validation accuracy of at least 0.90 (both are "
                   "workable ways to spend a budget; the learning curves show how they differ)")
def caviar_vs_panda(config: Config) -> Outcome:
    models, epochs_each = config.pick(8, 3), config.pick(3, 2)
    budget = models * epochs_each
    digits()  # load the data before the clocks start
    start = time.perf_counter()
    objective = functools.partial(caviar_objective, epochs=epochs_each, seed=config.seed)
    study = random_search(objective, TUNE_LR, models, seed=config.seed, direction="maximize",
                          progress=False)
    caviar_seconds = time.perf_counter() - start
    start = time.perf_counter()
    run = panda(config, budget)
    panda_seconds = time.perf_counter() - start
    best_caviar, final_panda = study.best_value, run.accuracy[-1]
    every = max(len(run.accuracy) // 6, 1)
    details = [
        f"Caviar: {models} models x {epochs_each} epochs, learning rates "
        f"{fmt(sorted(t.params['learning_rate'] for t in study.trials), 4)}, final accuracies "
        f"{fmt(sorted(values(study), reverse=True))} (best first)",
        f"Panda: 1 model, {budget} epochs trained, {run.rollbacks} rolled back, learning rate "
        f"{run.rates[0]:.2e} -> {run.rates[-1]:.2e}, accuracy every {every} kept epochs "
        f"{fmt(run.accuracy[every - 1::every])}",
        f"wall clock: Caviar {caviar_seconds:.2f} s serially, "
        f"{max(t.duration for t in study.trials):.2f} s on {models} workers; "
        f"Panda {panda_seconds:.2f} s (checkpoints included; it cannot be parallelized)",
    ]

    def draw(ax: Any, ax_rate: Any) -> None:
        for t in study.trials:
            if t.intermediate:
                steps, accuracy = zip(*t.intermediate)
                ax.plot(steps, accuracy, lw=1, alpha=0.7,
                        label=f"Caviar lr {t.params['learning_rate']:.1e}")
        ax.plot(np.arange(1, len(run.accuracy) + 1), run.accuracy, "k-", lw=2,
                label="Panda (kept epochs)")
        ax.set(xlabel="epoch of that model", ylabel="validation accuracy",
               title=f"same budget: {budget} epochs", ylim=(0, 1))
        ax.legend(fontsize=7)
        ax_rate.semilogy(np.arange(1, budget + 1), run.rates, "k.-")
        ax_rate.set(xlabel="epochs trained", ylabel="learning rate",
                    title=f"Panda's learning rate ({run.rollbacks} rollbacks)")

    return Outcome(best_caviar >= 0.9 and final_panda >= 0.9,
                   f"best Caviar {best_caviar:.3f} vs Panda {final_panda:.3f} from {budget} "
                   f"epochs", {"caviar_best": best_caviar, "panda_final": final_panda,
                               "budget_epochs": budget, "panda_rollbacks": run.rollbacks},
                   details, plot(config, "05_caviar_vs_panda", draw, n_axes=2) + run.plots)
