"""What the sections of the tour share: the registry, the result types, the digits data, the
course's network, training, sampling a search space and plotting.

A section is a function `Config -> Outcome` registered with `@section(...)`, which states the
claim and the pass criterion before anything is measured.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import nn
from optim.search import Distribution, Study
from tape.utils.files import atomic_write

T = TypeVar("T")


# ---------------------------------------------------------------- results and the registry

@dataclass(frozen=True)
class Config:
    """How to run the tour: `quick` shrinks every section, `out` is where plots go (None: no
    plots), `seed` seeds every section.

    Example:
        >>> Config(quick=True).pick(default=100, quick=10)
        10
    """

    quick: bool = False
    out: Path | None = Path("runs/course")
    seed: int = 0

    def pick(self, default: T, quick: T) -> T:
        """`quick` in quick mode, else `default`."""
        return quick if self.quick else default


@dataclass
class Outcome:
    """What a section measured: whether the claim held, a one-line `headline` for the summary
    table, the measured `numbers` (by name), extra `details` lines and the plots written.

    Example:
        >>> Outcome(True, "w = 5.0000", {"w": 5.0}).held
        True
    """

    held: bool
    headline: str
    numbers: dict[str, float]
    details: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:  # NumPy bools and scalars become plain Python ones
        self.held = bool(self.held)
        self.numbers = {name: float(value) for name, value in self.numbers.items()}


@dataclass(frozen=True)
class Section:
    """One claim of the notes: its number, a short title, the claim, the pass criterion and the
    function that measures it."""

    number: int
    title: str
    claim: str
    criterion: str
    measure: Callable[[Config], Outcome]


SECTIONS: dict[int, Section] = {}


def section(number: int, title: str, *, claim: str, criterion: str
            ) -> Callable[[Callable[[Config], Outcome]], Callable[[Config], Outcome]]:
    """Register the decorated function as the section measuring claim `number`.

    Example:
        >>> @section(99, "demo", claim="1 + 1 = 2", criterion="exactly 2")
        ... def demo(config: Config) -> Outcome:
        ...     return Outcome(1 + 1 == 2, "2", {"sum": 2.0})
        >>> SECTIONS.pop(99).measure(Config()).held
        True
    """
    def register(measure: Callable[[Config], Outcome]) -> Callable[[Config], Outcome]:
        if number in SECTIONS:
            raise ValueError(f"section {number} is registered twice")
        SECTIONS[number] = Section(number, title, claim, criterion, measure)
        return measure
    return register


# ---------------------------------------------------------------- data, network, training

@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits, standardized: `(X_train, y_train, X_val, y_val)` (1438 / 359)."""
    return nn.datasets.load_digits(seed=0)


def network(*, batch_norm: bool = True, hidden: Sequence[int] = (64, 32), seed: int = 0,
            bias_before_bn: bool = False, momentum: float = 0.99, dtype: Any = np.float32
            ) -> nn.Sequential:
    """The course's classifier: `[Dense -> BatchNorm -> ReLU] * len(hidden) -> Dense` logits.

    Without batch norm the hidden layers keep their bias; with it they have none unless
    `bias_before_bn` (claim 7). The same `seed` gives the same kernels either way. `momentum`
    is the batch norm layers' (Keras' default 0.99 weights the old running value).

    Example:
        >>> network(batch_norm=False)(np.zeros((2, 64))).shape
        (2, 10)
    """
    layers: list[Any] = []
    for k, units in enumerate(hidden):
        use_bias = bias_before_bn or not batch_norm
        layers.append(nn.Dense(units, use_bias=use_bias, seed=seed + k, dtype=dtype))
        if batch_norm:
            layers.append(nn.BatchNorm(momentum=momentum, dtype=dtype))
        layers.append(nn.ReLU())
    layers.append(nn.Dense(10, seed=seed + len(hidden), dtype=dtype))
    return nn.Sequential(layers)


def train(model: nn.Module, optimizer: Any, *, epochs: int, seed: int, batch_size: int = 64,
          callbacks: Sequence[Any] = ()) -> nn.History:
    """`nn.fit` on the digits' training split, validated on the validation split.

    Example:
        >>> import optim
        >>> h = train(network(), optim.Adam(0.01), epochs=1, seed=0)
        >>> len(h.val_accuracy)
        1
    """
    X, y, X_val, y_val = digits()
    return nn.fit(model, X, y, loss=nn.softmax_cross_entropy, optimizer=optimizer,
                  epochs=epochs, batch_size=batch_size, validation_data=(X_val, y_val),
                  seed=seed, callbacks=callbacks, verbose=0)


def val_accuracy(model: nn.Module) -> float:
    """The model's accuracy on the validation split, in inference mode."""
    _, _, X_val, y_val = digits()
    return nn.accuracy(model(X_val), y_val)


def final_accuracy(model: nn.Module, optimizer: Any, *, epochs: int, seed: int,
                   batch_size: int = 64, callbacks: Sequence[Any] = ()) -> tuple[float, bool]:
    """`(validation accuracy after training, diverged)`.

    A run whose loss turns NaN/inf stops there (`fit` refuses that update) and is scored as
    the model it left behind, so a diverged run counts, at about chance level.
    """
    try:
        history = train(model, optimizer, epochs=epochs, seed=seed, batch_size=batch_size,
                        callbacks=callbacks)
    except FloatingPointError:
        return val_accuracy(model), True
    return history.val_accuracy[-1], False


def forward_with_batch_statistics(layers: Sequence[nn.Module], x: Any) -> np.ndarray:
    """`x` through `layers` with every batch norm layer normalizing by the batch's own mean
    and variance (over axis -2, the examples), without touching its running statistics.

    The layers may be a population's stacked ones (`nn.Population.submodules`, inputs of
    shape (K, batch, features)). Written out by hand because `BatchNorm(training=True)`
    updates the running statistics and refuses a batch of one (its variance is undefined);
    for one example `x - mean(x)` is 0, so each batch norm layer outputs beta.

    Example:
        >>> x = np.array([[0.0], [2.0]], np.float32)
        >>> bn = nn.BatchNorm(); _ = bn(x)  # built, in inference mode
        >>> forward_with_batch_statistics([bn], x).ravel()
        array([-0.9995004,  0.9995004], dtype=float32)
    """
    for layer in layers:
        if isinstance(layer, nn.BatchNorm):
            x = np.asarray(x)
            xhat = (x - x.mean(axis=-2, keepdims=True)) / np.sqrt(
                x.var(axis=-2, keepdims=True) + layer.epsilon)
            x = (np.expand_dims(layer.gamma.numpy(), -2) * xhat
                 + np.expand_dims(layer.beta.numpy(), -2))
        else:
            x = by_rows(layer, x)
    return np.asarray(x)


ROWS = 128


def by_rows(f: Callable[[Any], Any], x: Any, rows: int = ROWS) -> np.ndarray:
    """`f(x)` for an `f` that treats the examples (axis -2 of `x`) one by one, computed on
    `rows` examples at a time and joined along the output's axis -2.

    The same numbers, faster here: OpenBLAS runs a matrix product of more than about 200 rows
    on several threads, which on a busy 2-core machine costs 20-100 times the single-threaded
    product (a population's inference on the 359 validation examples took 130-290 ms of CPU
    instead of 7).

    Example:
        >>> by_rows(lambda a: 2 * a, np.arange(6.0).reshape(3, 2), rows=2)
        array([[ 0.,  2.],
               [ 4.,  6.],
               [ 8., 10.]])
    """
    n = np.shape(x)[-2]
    if n <= rows:
        return np.asarray(f(x))
    return np.concatenate([np.asarray(f(x[..., i:i + rows, :])) for i in range(0, n, rows)],
                          axis=-2)


# ---------------------------------------------------------------- numbers

def sample(dist: Distribution, n: int, seed: int) -> np.ndarray:
    """`n` draws of a search-space distribution, as `random_search` draws them (a uniform unit
    coordinate mapped through the distribution's scale).

    Example:
        >>> from optim.search import Uniform
        >>> sample(Uniform(0, 10), 3, seed=0).round(2)
        array([6.37, 2.7 , 0.41])
    """
    return np.array([dist.from_unit(u) for u in np.random.default_rng(seed).random(n)])


def values(study: Study) -> list[float]:
    """The objective values of a study's successful trials, in trial order."""
    return [float(t.value) for t in study.trials if t.status == "ok" and t.value is not None]


def fraction_in(x: np.ndarray, low: float, high: float) -> float:
    """The fraction of `x` in `[low, high]`.

    Example:
        >>> fraction_in(np.array([0.05, 0.5, 0.9, 2.0]), 0.1, 1.0)
        0.5
    """
    return float(np.mean((x >= low) & (x <= high)))


def spread(x: Sequence[float] | np.ndarray) -> float:
    """Largest minus smallest value.

    Example:
        >>> spread([0.9, 0.2, 0.5])
        0.7
    """
    return float(np.max(x) - np.min(x))


def fmt(numbers: Iterable[float], digits: int = 3, kind: str = "f") -> str:
    """Numbers as a short bracketed list: `digits` decimals, or significant digits with
    `kind="g"` (for numbers of any size).

    Example:
        >>> fmt([0.12345, 1.0], 2)
        '[0.12, 1.00]'
        >>> fmt([0.012345, 3.2e12], 2, "g")
        '[0.012, 3.2e+12]'
    """
    return "[" + ", ".join(f"{v:.{digits}{kind}}" for v in numbers) + "]"


# ---------------------------------------------------------------- plots

def plot(config: Config, name: str, draw: Callable[..., None], n_axes: int = 1) -> list[str]:
    """Draw `draw(*axes)` on a new figure with `n_axes` side by side; see `save_figure`."""
    def make() -> Any:
        from matplotlib.figure import Figure  # the tour works without matplotlib
        fig = Figure(figsize=(5.2 * n_axes, 3.8), layout="constrained")
        draw(*[fig.add_subplot(1, n_axes, k + 1) for k in range(n_axes)])
        return fig
    return save_figure(config, name, make)


def save_figure(config: Config, name: str, make_figure: Callable[[], Any]) -> list[str]:
    """Write the matplotlib figure `make_figure()` to `config.out/name.png`, atomically.

    Returns `[path]`, or `[]` when plots are off (`config.out` is None) or `make_figure`
    raises `ImportError` (matplotlib is not installed). Figures use matplotlib's object API,
    so no pyplot state is involved.
    """
    if config.out is None:
        return []
    try:
        fig = make_figure()
    except ImportError:
        return []
    config.out.mkdir(parents=True, exist_ok=True)
    return [atomic_write(config.out / f"{name}.png",
                         lambda f: fig.savefig(f, format="png", dpi=100))]
