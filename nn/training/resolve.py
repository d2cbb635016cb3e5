"""`fit`'s arguments by name, checked before the first step: Keras' strings for losses,
optimizers and metrics, and the plain settings (`epochs`, `verbose`, ...).

Losses named as in Keras are computed from logits, like every loss here (Keras'
`from_logits=True`): a model trained with `loss="categorical_crossentropy"` ends with a plain
`Dense` layer, and `nn.softmax(model(x))` gives the probabilities.

Example:
    >>> loss_function("sparse_categorical_crossentropy").__name__
    'softmax_cross_entropy'
    >>> type(optimizer("adam")).__name__
    'Adam'
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nn import losses
from nn.training import metrics
from tape.utils import checks, names

_LOSSES: dict[str, Callable[..., Any]] = {
    "sparse_categorical_crossentropy": losses.softmax_cross_entropy,
    "categorical_crossentropy": losses.softmax_cross_entropy,
    "softmax_cross_entropy": losses.softmax_cross_entropy,
    "binary_crossentropy": losses.sigmoid_binary_cross_entropy,
    "sigmoid_binary_cross_entropy": losses.sigmoid_binary_cross_entropy,
    "mse": losses.mean_squared_error,
    "mean_squared_error": losses.mean_squared_error,
}
_CLASSIFIERS = (losses.softmax_cross_entropy, losses.sigmoid_binary_cross_entropy)

# Keras' default learning rates; names are looked up in `optim` from this allow-list only.
_OPTIMIZERS: dict[str, tuple[str, float]] = {
    "sgd": ("SGD", 0.01), "adam": ("Adam", 1e-3), "adamw": ("AdamW", 1e-3),
    "rmsprop": ("RMSprop", 1e-3),
}


def base_loss(loss: Callable[..., Any]) -> Callable[..., Any]:
    """The function under a `functools.partial` (e.g. a loss with `label_smoothing` set).

    Example:
        >>> base_loss(functools.partial(losses.mean_squared_error, reduction="sum")).__name__
        'mean_squared_error'
    """
    return loss.func if isinstance(loss, functools.partial) else loss


def is_builtin(loss: Callable[..., Any]) -> bool:
    """Whether `loss` is one of nn's losses (possibly with options set by a partial).

    Example:
        >>> is_builtin(functools.partial(losses.softmax_cross_entropy, label_smoothing=0.1))
        True
    """
    return base_loss(loss) in _LOSSES.values()


def loss_function(loss: str | Callable[..., Any]) -> Callable[..., Any]:
    """A loss by Keras name (see `_LOSSES`) or as given; anything else is a clear error.

    Example:
        >>> loss_function("mse").__name__
        'mean_squared_error'
    """
    if isinstance(loss, str):
        return names.pick(_LOSSES, loss, "loss", "a function loss(outputs, labels) -> scalar")
    if not callable(loss):
        raise TypeError(f"loss must be a name or a function loss(outputs, labels), got "
                        f"{type(loss).__name__} {loss!r}")
    return loss


def optimizer(opt: Any) -> Any:
    """An optimizer object as given, or a new one from its Keras name with Keras' default
    learning rate (`'sgd'` 0.01, `'adam'`, `'adamw'`, `'rmsprop'` 0.001).

    A name needs the `optim` package, imported here rather than when `nn` is imported
    (`nn` depends on `tape` only); without it this is an `ImportError` saying so. A name gives a
    new optimizer on each `fit` call: to keep its state (Adam's moments) across calls, pass the
    object, `optim.Adam()`.

    Example:
        >>> optimizer("SGD").learning_rate
        0.01
    """
    if isinstance(opt, str):
        key = opt.lower()
        if key not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {opt!r}; use one of {sorted(_OPTIMIZERS)} or "
                             f"an optimizer object such as optim.Adam(1e-3)")
        try:
            import optim
        except ImportError as e:
            raise ImportError(f"optimizer={opt!r} needs the `optim` package (it builds "
                              f"optim.{_OPTIMIZERS[key][0]}); install it, or pass an optimizer "
                              f"object with apply_gradients(grads_and_vars)") from e
        cls_name, rate = _OPTIMIZERS[key]
        return getattr(optim, cls_name)(learning_rate=rate)
    if not callable(getattr(opt, "apply_gradients", None)):
        raise TypeError(f"optimizer must be a name ({sorted(_OPTIMIZERS)}) or an object with "
                        f"apply_gradients(grads_and_vars), got {type(opt).__name__} {opt!r}")
    return opt


def metric_list(metric: Any, metric_names: Iterable[Any] | None, loss: Callable[..., Any]
                ) -> list[tuple[str, metrics.Metric]]:
    """`(name, function)` for every metric to log: `metrics=[...]` (names and callables, as in
    Keras), or the single `metric`, where `'auto'` means accuracy for the classification losses
    and nothing otherwise. Names must be distinct and must not be `loss` or start with `val_`.

    Example:
        >>> [n for n, _ in metric_list("auto", None, losses.softmax_cross_entropy)]
        ['accuracy']
        >>> [n for n, _ in metric_list("auto", ["mae", "mse"], losses.mean_squared_error)]
        ['mae', 'mse']
    """
    if metric_names is not None:
        if metric != "auto":
            raise ValueError("pass either metric= or metrics=[...], not both")
        if isinstance(metric_names, (str, bytes)) or callable(metric_names):
            raise TypeError(f"metrics must be a list of names or functions, got "
                            f"{metric_names!r}; for one metric write metrics=[{metric_names!r}]")
        chosen = [metrics.get(m) for m in metric_names]
    elif metric == "auto":
        chosen = [metrics.get("accuracy")] if base_loss(loss) in _CLASSIFIERS else []
    elif metric is None:
        chosen = []
    else:
        chosen = [metrics.get(metric)]
    names = [n for n, _ in chosen]
    for name in names:
        if name == "loss" or name.startswith("val_") or names.count(name) > 1:
            raise ValueError(f"metric names must be distinct, not 'loss' and not start with "
                             f"'val_'; got {names}")
    return chosen


def count(name: str, value: Any, minimum: int) -> int:
    """An integer argument `>= minimum`, or a `ValueError` naming it.

    Example:
        >>> count("epochs", 3, 1)
        3
    """
    return checks.integer(name, value, minimum)


def verbosity(verbose: Any) -> int:
    """0, 1 or 2 (`True`/`False` count as 1/0).

    Example:
        >>> verbosity(False), verbosity(2)
        (0, 2)
    """
    if verbose not in (0, 1, 2) or not isinstance(verbose, (int, np.integer)):
        raise ValueError(f"verbose must be 0 (silent), 1 (a progress bar) or 2 (one line per "
                         f"epoch), got {verbose!r}")
    return int(verbose)
