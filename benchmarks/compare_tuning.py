"""Four ways to spend the same training budget on digits, compared.

    python -m benchmarks.compare_tuning            # about half a minute on 2 cores
    python -m benchmarks.compare_tuning --quick    # a few seconds (what the tests run)

The network and data of ``benchmarks.tune_digits`` (two batch-normalized hidden layers of 64
and 32 units, mini-batches of 64, Adam), searching the learning rate (log scale) and Adam's
beta_1 (``1 - 10**r`` scale). Every method gets (about) the budget Hyperband with
``max_resource=R`` epochs and ``eta=3`` spends, counted in training epochs of one model:

- random search: ``budget // R`` trials of R epochs each;
- successive halving: ``optim.search.hyperband`` (brackets of successive halving, each
  configuration retrained from scratch at each rung);
- population-based training: ``nn.population_based_training`` with ``budget // R`` members
  trained R epochs, the worst quarter copying the best every ``R // 4`` epochs;
- population culling: ``nn.cull``, the most members whose halvings (keep the best half every
  ``interval`` epochs until one is left) fit in the budget.

For each: the epochs spent, the best validation accuracy the method saw, the test accuracy of
its winner (the winning model itself for the populations; for the searches the best trial's
configuration trained again exactly as in its trial: same seed, same epochs, same weights),
and the wall time of the search. Everything is seeded; one process.
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import nn
import optim
from benchmarks import tune_digits
from optim.search import LogUniform, OneMinusLogUniform, hyperband, random_search
from optim.search.halving import brackets

SEARCHED = {"learning_rate": LogUniform(1e-4, 3e-1), "beta_1": OneMinusLogUniform(0.5, 0.999)}
FIXED = {"hidden_units": 64, "batch_size": 64}


@dataclass
class Row:
    """One method's line of the table."""

    method: str
    epochs: int
    val_accuracy: float
    test_accuracy: float
    seconds: float


def budget(max_resource: int, eta: int = 3) -> int:
    """The epochs Hyperband spends: the budget every method gets.

    >>> budget(3), budget(9)
    (12, 78)
    """
    return sum(n * r for bracket in brackets(max_resource, eta) for n, r in bracket)


def cull_plan(total: int, interval: int) -> tuple[int, int]:
    """The largest population whose halvings every ``interval`` epochs fit in ``total``
    epochs, and the epochs they spend.

    >>> cull_plan(12, 1)
    (6, 12)
    """
    def spent(k: int) -> int:
        sizes = [k]
        while sizes[-1] > 1:
            sizes.append(math.ceil(sizes[-1] / 2))
        return interval * sum(sizes)

    k = 2
    while spent(k + 1) <= total:
        k += 1
    return k, spent(k)


def _test_accuracy(model: Any) -> float:
    X, y = tune_digits._splits()["test"]
    return float(nn.accuracy(model(X), y))


def _search_row(name: str, run: Callable[[], Any], seed: int) -> Row:
    start = time.perf_counter()
    study = run()
    seconds = time.perf_counter() - start
    best = study.best_trial
    data = tune_digits._splits()
    model, _ = tune_digits.train(best.params, best.params["epochs"], data["train"], data["val"])
    return Row(name, sum(len(t.intermediate) for t in study.trials), 1 - best.value,
               _test_accuracy(model), seconds)


def _population(size: int, seed: int) -> tuple[nn.Population, Any, Callable, Callable]:
    """A population of the network, its Adam, and ``train(epoch)`` / ``score()`` for it."""
    data = tune_digits._splits()
    pop = nn.Population(functools.partial(tune_digits.build_model, FIXED["hidden_units"]),
                        size, seed=seed)
    rng = np.random.default_rng(seed)
    optimizer = optim.Adam(np.array([SEARCHED["learning_rate"].sample(rng) for _ in range(size)]),
                           beta_1=np.array([SEARCHED["beta_1"].sample(rng) for _ in range(size)]))

    def train(epoch: int) -> None:
        nn.fit(pop, *data["train"], loss=nn.softmax_cross_entropy, optimizer=optimizer,
               epochs=1, batch_size=FIXED["batch_size"], seed=seed + epoch, verbose=False)

    def score() -> np.ndarray:
        X, y = data["val"]
        return (np.asarray(pop(X)).argmax(-1) == y).mean(-1)

    return pop, optimizer, train, score


def compare(max_resource: int, seed: int = 0) -> list[Row]:
    """The four methods at the budget of Hyperband with ``max_resource`` epochs (see the
    module doc)."""
    total, r = budget(max_resource), max_resource
    space = {**SEARCHED, **FIXED}
    tune_digits._splits()  # load the data before any clock starts
    rows = [
        _search_row("random search", lambda: random_search(
            tune_digits.objective, {**space, "epochs": r}, total // r, seed=seed,
            progress=False), seed),
        _search_row("successive halving (hyperband)", lambda: hyperband(
            tune_digits.objective, space, r, eta=3, seed=seed, resource="epochs",
            progress=False), seed),
    ]

    size, interval = max(2, total // r), max(1, r // 4)
    start = time.perf_counter()
    pop, optimizer, train, score = _population(size, seed)
    nn.population_based_training(pop, optimizer, train, score, epochs=r, interval=interval,
                                 space=SEARCHED, seed=seed)
    scores = score()
    seconds = time.perf_counter() - start
    best = int(np.argmax(scores))
    rows.append(Row("population-based training", size * r, float(scores[best]),
                    _test_accuracy(pop.member(best)), seconds))

    interval = max(1, r // 3)
    size, spent = cull_plan(total, interval)
    start = time.perf_counter()
    pop, optimizer, train, score = _population(size, seed)
    result = nn.cull(pop, optimizer, train, score, interval=interval, eta=2)
    seconds = time.perf_counter() - start
    rows.append(Row(f"population culling ({size} members)", spent,
                    float(max(max(s) for s in result.scores)), _test_accuracy(pop.member(0)),
                    seconds))
    return rows


def table(rows: list[Row]) -> str:
    """The rows as a fixed-width table.

    >>> print(table([Row("random search", 12, 0.9, 0.88, 1.5)]))  # doctest: +NORMALIZE_WHITESPACE
    method          epochs  best val acc  winner test acc  wall s
    random search       12         0.900            0.880     1.5
    """
    width = max(len("method"), *(len(r.method) for r in rows))
    lines = [f"{'method':<{width}}  epochs  best val acc  winner test acc  wall s"]
    lines += [f"{r.method:<{width}}  {r.epochs:>6}  {r.val_accuracy:>12.3f}  "
              f"{r.test_accuracy:>15.3f}  {r.seconds:>6.1f}" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_tuning",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="max_resource=3 (12 epochs)")
    parser.add_argument("--max-resource", type=int, default=9,
                        help="Hyperband's longest training, in epochs (default 9)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    r = 3 if args.quick else args.max_resource
    rows = compare(r, args.seed)
    print(f"digits, budget {budget(r)} epochs (Hyperband with max_resource={r}, eta=3), "
          f"seed {args.seed}")
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
