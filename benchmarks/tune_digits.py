"""The main job: tune the batch-norm softmax network on digits, coarse to fine, on all cores.

    python -m benchmarks.tune_digits                  # about a minute on 2 cores
    python -m benchmarks.tune_digits --quick          # a few seconds (what CI runs)
    python -m benchmarks.tune_digits --no-population  # each trial on its own, to compare
    python -m benchmarks.tune_digits --resume         # finish a run that was killed

Searches the learning rate (log scale), Adam's beta_1 (on the `1 - 10**r` scale), the hidden
width and the mini-batch size of `Dense -> BatchNorm -> ReLU -> Dense -> BatchNorm -> ReLU ->
Dense -> softmax` on scikit-learn's digits, coarse to fine; prints the trials table and the
best configuration's test accuracy; writes the study file and, with matplotlib, the plots.
Trials that share the hidden width and batch size are trained together as one `nn.Population`
(learning rate and beta_1 per member); each member trains exactly as its trial would alone.
A run killed at any moment (SIGKILL or SIGTERM) leaves no worker behind, and `--resume`
with the same arguments finishes it with the same trials and values as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import nn
import optim
from optim.search import (
    Choice,
    LogUniform,
    OneMinusLogUniform,
    PopulationObjective,
    coarse_to_fine,
    plot_learning_curves,
    plot_pairs,
)

SPACE = {
    "learning_rate": LogUniform(1e-4, 3e-1),
    "beta_1": OneMinusLogUniform(0.5, 0.999),
    "hidden_units": Choice([32, 64, 96]),
    "batch_size": Choice([32, 64, 128]),
}
STRUCTURAL = ("hidden_units", "batch_size", "epochs")  # what the members of a population share


@functools.lru_cache(maxsize=1)
def _splits(seed: int = 0) -> dict[str, Any]:
    """Standardized digits: train / validation (for the search) / test (for the final model)."""
    X_train, y_train, X_test, y_test = nn.datasets.load_digits(seed=seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X_train))
    n_val = len(X_train) // 5
    val, train = order[:n_val], order[n_val:]
    return {"train": (X_train[train], y_train[train]), "val": (X_train[val], y_train[val]),
            "full_train": (X_train, y_train), "test": (X_test, y_test)}


def build_model(hidden_units: int, seed: int = 0) -> nn.Sequential:
    """The course's network: two batch-normalized hidden layers, then softmax logits."""
    return nn.Sequential([
        nn.Dense(hidden_units, use_bias=False, seed=seed), nn.BatchNorm(), nn.ReLU(),
        nn.Dense(max(hidden_units // 2, 8), use_bias=False, seed=seed + 1), nn.BatchNorm(),
        nn.ReLU(),
        nn.Dense(10, seed=seed + 2),
    ])


def train(params: dict[str, Any], epochs: int, train_data: Any, validation: Any,
          seed: int = 0) -> tuple[nn.Sequential, Any]:
    model = build_model(int(params["hidden_units"]), seed)
    optimizer = optim.Adam(params["learning_rate"], beta_1=params["beta_1"])
    history = nn.fit(model, *train_data, loss=nn.softmax_cross_entropy, optimizer=optimizer,
                     epochs=epochs, batch_size=int(params["batch_size"]),
                     validation_data=validation, seed=seed, verbose=False)
    return model, history


def train_population(batch: list[dict[str, Any]], epochs: int, train_data: Any, validation: Any,
                     seed: int = 0) -> tuple[nn.Population, Any]:
    """`train` for every configuration of `batch` (one hidden width and batch size) at once:
    member k starts, and is trained, exactly as `train(batch[k], ...)` would train it."""
    first = batch[0]
    pop = nn.Population(functools.partial(build_model, int(first["hidden_units"])), len(batch),
                        seed=[seed] * len(batch))
    optimizer = optim.Adam(np.array([p["learning_rate"] for p in batch]),
                           beta_1=np.array([p["beta_1"] for p in batch]))
    history = nn.fit(pop, *train_data, loss=nn.softmax_cross_entropy, optimizer=optimizer,
                     epochs=epochs, batch_size=int(first["batch_size"]),
                     validation_data=validation, seed=seed, verbose=False)
    return pop, history


def _errors(accuracies: Any, report: Any) -> float:
    """Report the validation errors epoch by epoch; return the last."""
    errors = [1.0 - float(accuracy) for accuracy in accuracies]
    for epoch, error in enumerate(errors, start=1):
        report(epoch, error)
    return errors[-1]


def objective(params: dict[str, Any], report: Any) -> float:
    """Validation error after training; the learning curve is reported epoch by epoch."""
    data = _splits()
    _, history = train(params, params["epochs"], data["train"], data["val"])
    return _errors(history.val_accuracy, report)


def population_objective(batch: list[dict[str, Any]], report: Any) -> list[Any]:
    """`objective` for a batch of trials trained as one population; a member that diverged
    fails with the error its trial would have raised alone."""
    if len(batch) == 1:  # a population of one is slower than the model alone
        try:
            return [objective(batch[0], functools.partial(report, 0))]
        except Exception as e:
            return [e]
    data = _splits()
    _, history = train_population(batch, batch[0]["epochs"], data["train"], data["val"])
    return [FloatingPointError(history.frozen[k]) if k in history.frozen else
            _errors([a[k] for a in history.val_accuracy], functools.partial(report, k))
            for k in range(len(batch))]


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tune_digits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 4 short trials")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--trials-per-round", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/tune_digits"))
    parser.add_argument("--resume", action="store_true",
                        help="continue the study in --out instead of starting afresh")
    parser.add_argument("--population", type=int, default=32,
                        help="train trials that share hidden units and batch size as "
                             "populations of up to this many models")
    parser.add_argument("--no-population", action="store_true",
                        help="train every trial on its own (same trials, to compare)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.trials_per_round, args.epochs = 2, 4, 3

    args.out.mkdir(parents=True, exist_ok=True)
    storage = args.out / "study.jsonl"
    if storage.exists() and not args.resume:
        storage.unlink()
    space = {**SPACE, "epochs": args.epochs}
    start = time.perf_counter()
    batched = not args.no_population
    study = coarse_to_fine(PopulationObjective(population_objective, STRUCTURAL) if batched
                           else objective, space, rounds=args.rounds,
                           trials_per_round=args.trials_per_round, seed=args.seed,
                           n_jobs=args.n_jobs, storage=str(storage), progress=True,
                           population=args.population if batched else None)
    search_seconds = time.perf_counter() - start
    print(study.table(top=10))
    print(f"{len(study)} trials in {search_seconds:.1f} s on {args.n_jobs} process(es); "
          f"best validation error {study.best_value:.4f}")

    data = _splits()
    best = study.best_params
    model, _ = train(best, args.epochs, data["full_train"], None, seed=args.seed)
    X_test, y_test = data["test"]
    test_accuracy = float(nn.accuracy(model(X_test), y_test))
    shown = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in best.items()}
    print(f"best configuration {shown}: test accuracy {test_accuracy:.4f}")

    try:
        written = [plot_pairs(study, str(args.out / "pairs.png")),
                   plot_learning_curves(study, str(args.out / "curves.png"))]
        print("plots:", ", ".join(written))
    except ImportError as e:
        print(f"plots skipped: {e}")
    print(f"study: {storage}")
    return test_accuracy


if __name__ == "__main__":
    main()
