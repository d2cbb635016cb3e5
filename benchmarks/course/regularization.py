"""Claim 15: dropout is the explicit regularizer; batch norm's mini-batch noise regularizes only
slightly. Measured on a small training set of digits, where a network overfits."""

from __future__ import annotations

from typing import Any

import numpy as np

import nn
import optim

from .common import Config, Outcome, digits, fmt, network, plot, section

HIDDEN = (128, 64)
RATE = 0.5  # dropout after each hidden ReLU
TRAIN_SIZE = 150  # of the 1438 training digits: small enough to overfit
VARIANTS = {"plain": (False, 0.0), "dropout": (False, RATE), "batch norm": (True, 0.0),
            "both": (True, RATE)}


def regularized_network(*, batch_norm: bool, rate: float, seed: int) -> nn.Sequential:
    """The course's network (`common.network`, hidden layers `HIDDEN`) with a `Dropout(rate)`
    after each hidden ReLU when `rate > 0`; the same `seed` gives the same kernels.

    Example:
        >>> [type(m).__name__ for m in regularized_network(batch_norm=False, rate=0.5,
        ...                                                  seed=0).layers]
        ['Dense', 'ReLU', 'Dropout', 'Dense', 'ReLU', 'Dropout', 'Dense']
    """
    layers: list[nn.Module] = []
    for layer in network(batch_norm=batch_norm, hidden=HIDDEN, seed=seed).layers:
        layers.append(layer)
        if rate and isinstance(layer, nn.ReLU):
            layers.append(nn.Dropout(rate, seed=seed + 100 + len(layers)))
    return nn.Sequential(layers)


def overfit_run(batch_norm: bool, rate: float, *, epochs: int, seed: int
                ) -> tuple[float, float, float]:
    """Train on `TRAIN_SIZE` digits drawn with `seed` (Adam 3e-3, batches of 32); return
    `(training accuracy, validation accuracy, validation loss)`, both in inference mode."""
    X, y, X_val, y_val = digits()
    rows = np.random.default_rng(seed).choice(len(X), TRAIN_SIZE, replace=False)
    model = regularized_network(batch_norm=batch_norm, rate=rate, seed=seed)
    nn.fit(model, X[rows], y[rows], loss=nn.softmax_cross_entropy, optimizer=optim.Adam(3e-3),
           epochs=epochs, batch_size=32, seed=seed, verbose=0)
    outputs = model(X_val)
    return (nn.accuracy(model(X[rows]), y[rows]), nn.accuracy(outputs, y_val),
            float(np.asarray(nn.softmax_cross_entropy(outputs, y_val))))


@section(15, "dropout vs batch norm as regularizers",
         claim="Batch norm adds noise to each layer's activations through the mini-batch "
               "statistics, a slight regularization effect; dropout is the regularizer to use "
               "when a network overfits.",
         criterion=f"on {TRAIN_SIZE} training digits (mean over seeds), dropout (rate {RATE}) "
                   f"narrows the train-minus-validation accuracy gap of the plain network, and "
                   f"by more than batch norm does")
def dropout_vs_batch_norm(config: Config) -> Outcome:
    seeds = [config.seed + k for k in range(config.pick(3, 1))]
    epochs = config.pick(50, 10)
    runs = {name: np.array([overfit_run(bn, rate, epochs=epochs, seed=s) for s in seeds])
            for name, (bn, rate) in VARIANTS.items()}
    gap = {name: r[:, 0] - r[:, 1] for name, r in runs.items()}
    mean_gap = {name: float(g.mean()) for name, g in gap.items()}
    val = {name: float(r[:, 1].mean()) for name, r in runs.items()}
    by_dropout = mean_gap["plain"] - mean_gap["dropout"]
    by_bn = mean_gap["plain"] - mean_gap["batch norm"]

    def draw(ax_gap: Any, ax_val: Any) -> None:
        names = list(VARIANTS)
        for ax, values, label in ((ax_gap, gap, "train - validation accuracy"),
                                  (ax_val, {n: r[:, 1] for n, r in runs.items()},
                                   "validation accuracy")):
            ax.bar(names, [float(np.mean(values[n])) for n in names], color="0.8")
            for k, n in enumerate(names):
                ax.plot([k] * len(seeds), values[n], "o", color="C0", ms=4)
            ax.set(ylabel=label, title=f"{TRAIN_SIZE} training digits, {len(seeds)} seeds")

    details = [f"{name:<10} train accuracy {float(r[:, 0].mean()):.3f}, validation accuracy "
               f"{val[name]:.3f}, gap {mean_gap[name]:.3f} {fmt(gap[name])}, validation loss "
               f"{float(r[:, 2].mean()):.3f}" for name, r in runs.items()]
    numbers = {f"gap_{name.replace(' ', '_')}": g for name, g in mean_gap.items()}
    numbers |= {f"val_accuracy_{name.replace(' ', '_')}": v for name, v in val.items()}
    return Outcome(by_dropout > 0 and by_dropout > by_bn,
                   f"gap {mean_gap['plain']:.3f} plain, {mean_gap['dropout']:.3f} dropout, "
                   f"{mean_gap['batch norm']:.3f} batch norm, {mean_gap['both']:.3f} both",
                   numbers, details, plot(config, "15_dropout_vs_bn", draw, n_axes=2))
