"""Claims 6, 13 and 14: what batch norm does to the training of a deep network: the learning
rates it tolerates, how far a deeper layer's inputs drift, and how fast it learns.

The three sections read one experiment, `sweep`, run once per `(quick, seed)`: the same deep
ReLU network (`DEPTH` hidden Dense layers of `WIDTH` units; the same He-normal kernels for a
seed, with and without batch norm) trained on digits with plain SGD (no momentum, batch
`BATCH`) at every learning rate of a log grid, from several seeds. A seed's learning rates
train side by side as one `nn.Population` (member k: learning rate k, the seed's
initialization, the seed's batch order). Every `EVERY` steps the sweep records each member's
validation accuracy and the distribution of its layer-2 pre-activations on a fixed probe batch.

Accuracy is measured in inference mode, with the running statistics. BatchNorm's momentum is
0.9 here, not Keras' 0.99: the running averages cover about the last 10 steps, and after 2
epochs (46 steps) under 1% of their initial values remains (0.99 would leave 63%), so the
accuracy measures the weights, not how far the averages lag behind them. The accuracy with the
validation set's own batch statistics is reported beside it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

import nn
import optim

from . import common
from .common import Config, Outcome, fmt, plot, section

DEPTH, WIDTH, BATCH = 8, 64, 64
MOMENTUM = 0.9  # BatchNorm's, for runs of a few hundred steps (see the module doc)
TARGET = 0.90  # validation accuracy that counts as "trained"
EVERY = 5  # steps between two records
PROBE = 256  # training examples whose layer-2 pre-activations are tracked


# ---------------------------------------------------------------- the experiment

@dataclass(frozen=True)
class Design:
    """The sweep's grid: learning rates `10**k` for k in `exponents`, `epochs` of training,
    one run per seed in `seeds`.

    Example:
        >>> design(quick=True, seed=0).rates
        array([1.e-03, 1.e-02, 1.e-01, 1.e+00, 1.e+01, 1.e+02])
    """

    exponents: tuple[float, ...]
    epochs: int
    seeds: tuple[int, ...]

    @property
    def rates(self) -> np.ndarray:
        """The learning rates, lowest first."""
        return 10.0 ** np.array(self.exponents)

    @property
    def decades_per_rate(self) -> float:
        """The grid's spacing in decades: the width of learning rates one grid point stands for."""
        return float(self.exponents[1] - self.exponents[0])


def design(quick: bool, seed: int) -> Design:
    """Half-decade grid from 1e-3 to 100, 10 epochs, 3 seeds (quick: whole decades, 3
    epochs, 1 seed)."""
    step, epochs, seeds = (1.0, 3, 1) if quick else (0.5, 10, 3)
    exponents = tuple(float(k) for k in np.arange(-3.0, 2.0 + step / 2, step))
    return Design(exponents, epochs, tuple(range(seed, seed + seeds)))


@dataclass
class Runs:
    """One model's sweep; arrays are indexed (seed, learning rate) and, for the records taken
    every `EVERY` steps, (seed, learning rate, record).

    `steps`: the SGD steps at each record (0 first, the last step last). `accuracy`: validation
    accuracy, inference mode. `batch_accuracy`: after the last step, with the validation set's
    own batch statistics. `diverged`: a non-finite loss (the member was frozen) or a mean
    training loss over the last epoch above the loss of the first step (before any update).
    `drift`: how far the layer-2 pre-activations on the probe batch moved from step 0
    (`distribution_change`); `mean_shift` and `std_change` split the last record's drift into
    moments. `kernel_change`: the first layer's `|W - W0| / |W0|` after the last step (how
    much the earlier layer learned).
    """

    steps: np.ndarray
    accuracy: np.ndarray
    batch_accuracy: np.ndarray
    diverged: np.ndarray
    drift: np.ndarray
    mean_shift: np.ndarray
    std_change: np.ndarray
    kernel_change: np.ndarray


def distribution_change(z: np.ndarray, z0: np.ndarray) -> tuple[np.ndarray, ...]:
    """How far the per-unit distributions of `z` moved from those of `z0` (arrays of shape
    (..., examples, units), the same examples): `(drift, mean_shift, std_change)`, each
    averaged over units and divided by the layer's initial spread (the root mean per-unit
    variance of `z0`). `drift` is the Wasserstein-1 distance between a unit's values in `z`
    and in `z0` (mean |difference| of the sorted values); `mean_shift` is |mean - mean0|,
    `std_change` |std - std0|.

    Example:
        >>> z0 = np.array([[-1.0], [1.0]])
        >>> [float(v) for v in distribution_change(z0 + 0.5, z0)]
        [0.5, 0.5, 0.0]
        >>> [float(v) for v in distribution_change(-z0, z0)]  # the same distribution
        [0.0, 0.0, 0.0]
    """
    spread0 = np.sqrt(z0.var(axis=-2).mean(axis=-1))
    w1 = np.abs(np.sort(z, axis=-2) - np.sort(z0, axis=-2)).mean(axis=(-2, -1))
    shift = np.abs(z.mean(axis=-2) - z0.mean(axis=-2)).mean(axis=-1)
    std = np.abs(z.std(axis=-2) - z0.std(axis=-2)).mean(axis=-1)
    return w1 / spread0, shift / spread0, std / spread0


def layer_2_input(layers: list[nn.Module]) -> list[nn.Module]:
    """The layers before the second ReLU: they compute layer 2's pre-activations (the
    batch-normalized values with batch norm, the Dense outputs without).

    Example:
        >>> [type(m).__name__ for m in layer_2_input(common.network().layers)]
        ['Dense', 'BatchNorm', 'ReLU', 'Dense', 'BatchNorm']
    """
    return layers[:[i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)][1]]


def run_seed(batch_norm: bool, rates: np.ndarray, epochs: int, seed: int
             ) -> dict[str, np.ndarray]:
    """Train the deep network with or without batch norm at every learning rate in `rates`
    (one population, seed `seed`) for `epochs` epochs; the fields of `Runs` for this seed."""
    X, y, X_val, y_val = common.digits()
    build = functools.partial(common.network, batch_norm=batch_norm, hidden=(WIDTH,) * DEPTH,
                              momentum=MOMENTUM)
    pop = nn.Population(build, size=len(rates), seed=[seed] * len(rates))
    pop.build((None, X.shape[1]))
    layers = pop.submodules
    prefix, probe = layer_2_input(layers), pop.stack(X[:PROBE])
    first = layers[0]
    assert isinstance(first, nn.Dense)
    kernel0 = first.kernel.numpy()
    z0 = common.forward_with_batch_statistics(prefix, probe)
    optimizer = optim.SGD(rates)
    batches = nn.MiniBatches(X, y, BATCH, seed=seed)
    total = epochs * len(batches)
    steps, accuracy, drift = [], [], []
    val_labels = pop.stack(y_val)

    def record(step: int) -> None:
        steps.append(step)
        accuracy.append(nn.accuracy(common.by_rows(pop, X_val), val_labels, per_member=True))
        z = common.forward_with_batch_statistics(prefix, probe)
        drift.append(distribution_change(z, z0)[0])

    # a diverging member overflows before it is frozen; that is reported, not warned about
    with np.errstate(over="ignore", invalid="ignore"):
        record(0)
        step, first_loss = 0, np.zeros(len(rates))
        for epoch in range(epochs):
            loss_sum = np.zeros(len(rates))
            for xb, yb in batches.epoch(epoch):
                values, _ = nn.train_step(pop, xb, yb, nn.softmax_cross_entropy, optimizer)
                if step == 0:
                    first_loss = np.asarray(values)
                loss_sum += values * len(xb)
                step += 1
                if step % EVERY == 0 or step == total:
                    record(step)
        last_epoch_loss = loss_sum / batches.num_examples
        logits = common.forward_with_batch_statistics(layers, pop.stack(X_val))
        _, shift, std = distribution_change(common.forward_with_batch_statistics(prefix, probe), z0)
        kernel_change = (np.linalg.norm(first.kernel.numpy() - kernel0, axis=(1, 2))
                         / np.linalg.norm(kernel0, axis=(1, 2)))
    return {"steps": np.array(steps), "accuracy": np.stack(accuracy, axis=-1),
            "batch_accuracy": nn.accuracy(logits, val_labels, per_member=True),
            "diverged": pop.frozen | ~(last_epoch_loss <= first_loss),  # NaN: diverged
            "drift": np.stack(drift, axis=-1), "mean_shift": shift, "std_change": std,
            "kernel_change": kernel_change}


@functools.lru_cache(maxsize=2)
def sweep(quick: bool, seed: int) -> dict[bool, Runs]:
    """The experiment behind sections 6, 13 and 14, by `batch_norm` (True, False); run once
    per `(quick, seed)` and shared by the three sections."""
    d = design(quick, seed)
    out = {}
    for batch_norm in (True, False):
        per_seed = [run_seed(batch_norm, d.rates, d.epochs, s) for s in d.seeds]
        out[batch_norm] = Runs(per_seed[0]["steps"], *(
            np.stack([r[name] for r in per_seed]) for name in
            ("accuracy", "batch_accuracy", "diverged", "drift", "mean_shift", "std_change",
             "kernel_change")))
    return out


# ---------------------------------------------------------------- what the runs say

def majority(flags: np.ndarray) -> np.ndarray:
    """Per learning rate (column), whether more than half of the seeds (rows) say True.

    Example:
        >>> majority(np.array([[True, True, False], [True, False, False]]))
        array([ True, False, False])
    """
    return 2 * np.sum(flags, axis=0) > len(flags)


def trains(runs: Runs) -> np.ndarray:
    """Per learning rate: on a majority of seeds, the run ends at validation accuracy >=
    `TARGET` (inference mode) without diverging."""
    return majority((runs.accuracy[..., -1] >= TARGET) & ~runs.diverged)


def highest_stable(rates: np.ndarray, diverged: np.ndarray) -> float:
    """The highest learning rate at which no seed (row of `diverged`) diverged; 0 if none.

    Example:
        >>> highest_stable(np.array([0.1, 1.0, 10.0]),
        ...                np.array([[False, False, True], [False, True, True]]))
        0.1
    """
    stable = ~np.any(diverged, axis=0)
    return float(rates[stable].max()) if stable.any() else 0.0


def steps_to_target(steps: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """The steps of the first record at which `accuracy` (records on the last axis) reaches
    `TARGET`; infinity where it never does.

    Example:
        >>> steps_to_target(np.array([0, 5, 10]), np.array([[0.1, 0.92, 0.95], [0.1, 0.5, 0.8]]))
        array([ 5., inf])
    """
    hit = accuracy >= TARGET
    return np.where(hit.any(axis=-1), steps[np.argmax(hit, axis=-1)], np.inf)


def label(batch_norm: bool) -> str:
    """How a model is named in the reports.

    Example:
        >>> label(False)
        'without batch norm'
    """
    return "with batch norm" if batch_norm else "without batch norm"


# ---------------------------------------------------------------- what the criteria say

SETUP = (f"The runs: a ReLU network of {DEPTH} hidden Dense layers of {WIDTH} units (the same "
         f"He-normal kernels with and without batch norm) trained with plain SGD, batch "
         f"{BATCH}, for 10 epochs at learning rates on a half-decade grid from 1e-3 to 100, from "
         f"3 seeds (--quick: 3 epochs, whole decades, 1 seed)")
TRAINS = (f"A network trains at a rate if on more than half of the seeds the run ends at "
          f"validation accuracy >= {TARGET} (inference mode, batch norm momentum {MOMENTUM}) "
          f"without diverging: a non-finite loss, or a mean training loss over the last epoch "
          f"above the loss of the first step.")
DRIFT = (f"Pre-activations: the input of layer 2's ReLU (batch-normalized values with batch "
         f"norm, Dense outputs without) on {PROBE} fixed training examples, with that batch's "
         f"statistics. Drift: per unit, the Wasserstein-1 distance between its values now and "
         f"at step 0, averaged over the units, over the layer's initial standard deviation.")
# what each section requires of batch norm, given those definitions
MORE_RATES = ("With batch norm (a) the learning rates that train span more decades (the number "
              "of grid rates that train x the grid spacing), and (b) the highest grid rate at "
              "which no seed diverges is higher.")
LESS_DRIFT = ("At every grid learning rate at which both networks train, the drift of layer 2's "
              "pre-activations from step 0 to the last step, averaged over seeds, is smaller "
              "with batch norm.")
FEWER_STEPS = (f"Each network at its best grid learning rate (of those at which it trains, the "
               f"one with the fewest steps to validation accuracy >= {TARGET}, checked every "
               f"{EVERY} steps; median over seeds) reaches that accuracy in fewer SGD steps with "
               f"batch norm.")


def experiment(config: Config) -> tuple[Design, dict[bool, Runs]]:
    """The design and the runs (by `batch_norm`) that sections 6, 13 and 14 read."""
    return design(config.quick, config.seed), sweep(config.quick, config.seed)


# ---------------------------------------------------------------- 6. larger learning rates

@section(6, "batch norm and the learning rate",
         claim="Batch norm allows larger learning rates and makes training less sensitive to "
               "the learning rate (Ioffe and Szegedy 2015; Santurkar et al. 2018).",
         criterion=f"{MORE_RATES} {SETUP}. {TRAINS}")
def learning_rate_range(config: Config) -> Outcome:
    d, runs = experiment(config)
    rates = d.rates
    ok = {bn: trains(r) for bn, r in runs.items()}
    width = {bn: float(ok[bn].sum() * d.decades_per_rate) for bn in runs}
    top = {bn: highest_stable(rates, r.diverged) for bn, r in runs.items()}
    details = [f"learning rates {fmt(rates, 4)}; {d.epochs} epochs; seeds {list(d.seeds)}"]
    for bn, r in runs.items():
        details += [
            f"{label(bn)}: final accuracy (mean over seeds) {fmt(r.accuracy[..., -1].mean(0))}",
            f"{'':>{len(label(bn))}}  with the batch's own statistics "
            f"{fmt(r.batch_accuracy.mean(0))}",
            f"{'':>{len(label(bn))}}  seeds diverged {r.diverged.sum(0).tolist()}; trains at "
            f"{fmt(rates[ok[bn]], 4)}"]

    def draw(ax: Any, ax_batch: Any) -> None:
        for bn, r in runs.items():
            ax.semilogx(rates, r.accuracy[..., -1].mean(0), "o-", label=label(bn))
            ax_batch.semilogx(rates, r.batch_accuracy.mean(0), "o-", label=label(bn))
        for a, how in ((ax, "inference mode"), (ax_batch, "the batch's own statistics")):
            a.axhline(TARGET, color="k", lw=0.8, ls="--")
            a.set(xlabel="learning rate (plain SGD)", ylabel="validation accuracy",
                  title=f"after {d.epochs} epochs, {how}", ylim=(0, 1))
            a.legend(fontsize=8)

    numbers = {f"{key}_{'with' if bn else 'without'}_bn": value[bn]
               for key, value in (("width_decades", width), ("highest_stable_lr", top))
               for bn in runs}
    return Outcome(width[True] > width[False] and top[True] > top[False],
                   f"(a) learning rates that train span {width[True]:g} decades with BN vs "
                   f"{width[False]:g} without; (b) highest lr that does not diverge "
                   f"{top[True]:.3g} vs {top[False]:.3g}",
                   numbers, details, plot(config, "06_bn_learning_rate", draw, n_axes=2))


# ---------------------------------------------------------------- 13. covariate shift

@section(13, "batch norm and covariate shift",
         claim="With batch norm, the distribution of a deeper layer's inputs moves less while "
               "earlier layers learn (its mean and variance stay where beta and gamma put "
               "them).",
         criterion=f"{LESS_DRIFT} {DRIFT} {SETUP}. {TRAINS}")
def covariate_shift(config: Config) -> Outcome:
    d, runs = experiment(config)
    rates = d.rates
    common = trains(runs[True]) & trains(runs[False])
    final = {bn: r.drift[..., -1].mean(0) for bn, r in runs.items()}
    smaller = final[True][common] < final[False][common]
    details = [f"learning rates at which both train: {fmt(rates[common], 4)}"]
    for bn, r in runs.items():
        details += [f"{label(bn)}: drift after {r.steps[-1]} steps, per learning rate "
                    f"{fmt(final[bn], 2, 'g')}",
                    f"{'':>{len(label(bn))}}  of which mean shift "
                    f"{fmt(r.mean_shift.mean(0), 2, 'g')}, std change "
                    f"{fmt(r.std_change.mean(0), 2, 'g')}",
                    f"{'':>{len(label(bn))}}  layer 1 kernel |W - W0| / |W0| "
                    f"{fmt(r.kernel_change.mean(0), 2, 'g')}"]

    def draw(ax: Any, ax_rate: Any) -> None:
        for k in np.flatnonzero(common):
            for bn, style in ((True, "-"), (False, "--")):
                ax.plot(runs[bn].steps, runs[bn].drift[:, k].mean(0), style,
                        color=f"C{k % 10}", label=f"lr {rates[k]:.2g} {label(bn)}")
        ax.set(xlabel="SGD steps", ylabel="drift of layer-2 pre-activations",
               title="at the learning rates where both train")
        if common.any():
            ax.legend(fontsize=7)
        for bn in runs:
            ax_rate.loglog(rates, final[bn], "o-", label=label(bn))
        ax_rate.set(xlabel="learning rate (plain SGD)", ylabel="drift after the last step",
                    title="at every learning rate (diverged runs drift far)")
        ax_rate.legend(fontsize=8)

    numbers = {"learning_rates_compared": common.sum(),
               "rates_with_smaller_drift_with_bn": smaller.sum()}
    if not common.any():
        return Outcome(False, "no learning rate at which both networks train", numbers,
                       details, plot(config, "13_bn_covariate_shift", draw, n_axes=2))
    numbers |= {f"median_drift_{'with' if bn else 'without'}_bn": np.median(final[bn][common])
                for bn in runs}
    return Outcome(smaller.all(), f"drift at the {int(common.sum())} learning rates where both "
                                  f"train: {fmt(final[True][common])} with BN vs "
                                  f"{fmt(final[False][common])} without",
                   numbers, details, plot(config, "13_bn_covariate_shift", draw, n_axes=2))


# ---------------------------------------------------------------- 14. faster learning

@section(14, "batch norm speeds up learning",
         claim="Batch norm speeds up learning.",
         criterion=f"{FEWER_STEPS} {SETUP}. {TRAINS}")
def learning_speed(config: Config) -> Outcome:
    d, runs = experiment(config)
    rates, per_epoch = d.rates, len(nn.MiniBatches(common.digits()[0], batch_size=BATCH))
    need = {bn: np.where(trains(r), np.median(steps_to_target(r.steps, r.accuracy), axis=0),
                         np.inf) for bn, r in runs.items()}
    best = {bn: int(np.argmin(n)) for bn, n in need.items()}
    fastest = {bn: float(need[bn][best[bn]]) for bn in runs}
    reached = {bn: bool(np.isfinite(fastest[bn])) for bn in runs}

    def show(bn: bool) -> str:
        if not reached[bn]:
            return f"never within {runs[bn].steps[-1]} steps"
        return (f"{fastest[bn]:g} steps ({fastest[bn] / per_epoch:.2f} epochs) at lr "
                f"{rates[best[bn]]:.3g}")

    details = [f"{label(bn)}: steps to {TARGET} per learning rate (median over seeds; inf: "
               f"never, or the rate does not train) {fmt(need[bn], 0)}" for bn in runs]

    def draw(ax: Any) -> None:
        for bn, r in runs.items():
            ax.plot(r.steps, r.accuracy[:, best[bn]].mean(0),
                    label=f"{label(bn)}, lr {rates[best[bn]]:.2g}")
        ax.axhline(TARGET, color="k", lw=0.8, ls="--")
        ax.set(xlabel="SGD steps", ylabel="validation accuracy (inference mode)",
               title="each at its best learning rate", ylim=(0, 1))
        ax.legend(fontsize=8)

    numbers = {f"{key}_{'with' if bn else 'without'}_bn": value for bn in runs
               for key, value in (("reached", reached[bn]), ("best_lr", rates[best[bn]]))}
    numbers |= {f"steps_to_target_{'with' if bn else 'without'}_bn": fastest[bn] for bn in runs
                if reached[bn]}  # a target never reached has no step count
    return Outcome(reached[True] and fastest[True] < fastest[False],
                   f"steps to {TARGET}: {show(True)} with BN vs {show(False)} without",
                   numbers, details, plot(config, "14_bn_speed", draw))
