"""Caviar in one process: 32 digits models trained one by one, on a 2-process pool, and as one
`nn.Population`.

The network is 64 -> 64 -> BN -> ReLU -> 32 -> BN -> ReLU -> 10 with softmax cross-entropy in
float32, Adam with a different learning rate per model, mini-batches of 64, 20 epochs (2 with
`--quick`), the same initialization and data order for every arm, every arm with `fit`'s
default `compile=True` (one model after another is also timed with `compile=False`); best of 2
(3 with `--quick`) interleaved repeats. Rows: each arm's wall time, the population against the
others (targets: at least 5x faster than one by one, 2.5x faster than the pool), and peak
traced memory of one model's and of the population's training.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

import nn
import optim
from benchmarks.timing import Row, peak_memory

MODELS, BATCH, WORKERS = 32, 64, 2
LEARNING_RATES = np.geomspace(1e-4, 1e-1, MODELS)


def make_model(seed: int | None = None) -> nn.Sequential:
    return nn.Sequential([
        nn.Dense(64, use_bias=False, seed=seed), nn.BatchNorm(), nn.ReLU(),
        nn.Dense(32, use_bias=False, seed=None if seed is None else seed + 1), nn.BatchNorm(),
        nn.ReLU(),
        nn.Dense(10, seed=None if seed is None else seed + 2),
    ])


@functools.lru_cache(maxsize=1)
def _data() -> tuple[np.ndarray, np.ndarray]:
    X, y, _, _ = nn.datasets.load_digits(seed=0)
    return X, y


def train_one(k: int, epochs: int, compile: bool = True) -> float:
    """Model k alone (seed k, learning rate k); returns its last training loss."""
    X, y = _data()
    history = nn.fit(make_model(k), X, y, loss=nn.softmax_cross_entropy,
                     optimizer=optim.Adam(float(LEARNING_RATES[k])), epochs=epochs,
                     batch_size=BATCH, verbose=0, compile=compile)
    return history.loss[-1]


def train_population(epochs: int) -> np.ndarray:
    """All models as one population (member k: seed k, learning rate k); last losses."""
    X, y = _data()
    pop = nn.Population(make_model, MODELS, seed=list(range(MODELS)))
    history = nn.fit(pop, X, y, loss=nn.softmax_cross_entropy,
                     optimizer=optim.Adam(LEARNING_RATES), epochs=epochs, batch_size=BATCH,
                     verbose=0)
    return history.loss[-1]


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(quick: bool = False) -> list[Row]:
    epochs = 2 if quick else 20
    try:
        _data()  # loaded (and cached) outside the timings
    except ImportError as e:
        return [Row("pop", "population of digits models", float("nan"), note=str(e))]
    # The arms' repeats are interleaved (best of each kept) so that all three see the same
    # background load, as in benchmarks.timing.compare.
    t_seq = t_eager = t_pool = t_pop = float("inf")
    with ProcessPoolExecutor(WORKERS) as pool:
        list(pool.map(train_one, [0] * WORKERS, [1] * WORKERS))  # start and warm the workers
        for _ in range(3 if quick else 2):
            t, seq = _timed(lambda: [train_one(k, epochs) for k in range(MODELS)])
            t_seq = min(t_seq, t)
            t, _ = _timed(lambda: [train_one(k, epochs, compile=False) for k in range(MODELS)])
            t_eager = min(t_eager, t)
            t, _ = _timed(lambda: list(pool.map(train_one, range(MODELS), [epochs] * MODELS)))
            t_pool = min(t_pool, t)
            t, pop = _timed(lambda: train_population(epochs))
            t_pop = min(t_pop, t)
    agree = float(np.max(np.abs(np.asarray(seq) - pop) / np.abs(pop)))
    what = f"{MODELS} models, {epochs} epochs"
    one = peak_memory(lambda: train_one(0, 1)) / 2**20
    all_ = peak_memory(lambda: train_population(1)) / 2**20
    return [
        Row("pop", f"{what}, one after another", t_seq),
        Row("pop", f"{what}, one after another, compile=False", t_eager),
        Row("pop", f"{what}, {WORKERS}-process pool", t_pool),
        Row("pop", f"{what}, one population", t_pop, note=f"last losses agree to {agree:.0e}"),
        Row("pop", "population vs one after another", t_pop, t_seq, target=0.2,
            note="target: >= 5x faster; both compiled"),
        Row("pop", "population vs one after another, compile=False", t_pop, t_eager,
            note="the population compiled"),
        Row("pop", f"population vs {WORKERS}-process pool", t_pop, t_pool, target=0.4,
            note="target: >= 2.5x faster"),
        Row("pop", "peak memory, one model (1 epoch)", one, unit="MB"),
        Row("pop", f"peak memory, population of {MODELS} (1 epoch)", all_, unit="MB"),
    ]
