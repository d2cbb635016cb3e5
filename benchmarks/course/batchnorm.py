"""Claims 7-9: what batch norm does to a layer's bias, at test time, and as noise (its effect on
training is `batchnorm_training`)."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

import nn
import optim
from tape import Tape

from .common import (
    Config,
    Outcome,
    digits,
    fmt,
    forward_with_batch_statistics,
    network,
    plot,
    section,
    train,
    val_accuracy,
)

L = TypeVar("L", bound=nn.Module)

# ---------------------------------------------------------------- 7. the bias is redundant

def max_relative_difference(a: Any, b: Any) -> float:
    """`max |a - b| / max |b|`.

    Example:
        >>> max_relative_difference(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
        0.5
    """
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@section(7, "the bias before batch norm is redundant",
         claim="With batch norm, a layer's bias is redundant: use_bias=True before batch norm "
               "reaches the same function as without (its bias gradient is zero).",
         criterion="in float64 (to measure the maths, not float32 rounding): with random "
                   "non-zero biases, the bias gradient is below 1e-9 of the kernel gradient "
                   "and the training-mode outputs differ by under 1e-9 (relative); after "
                   "training both networks the same way, their inference outputs differ by "
                   "under 1e-6 (relative)")
def redundant_bias(config: Config) -> Outcome:
    X, y, X_val, _ = digits()
    X, X_val = X.astype(np.float64), X_val.astype(np.float64)
    biased, plain = bias_pair(config.seed, X)
    dense = first_layer(biased, nn.Dense)
    dense.bias.assign(np.random.default_rng(config.seed).normal(0, 1, dense.bias.shape))
    with Tape() as t:
        out = biased(X[:64], training=True)
        loss = nn.softmax_cross_entropy(out, y[:64])
    g_bias, g_kernel = (np.asarray(g) for g in t.gradient(loss, [dense.bias, dense.kernel]))
    grad_ratio = float(np.linalg.norm(g_bias) / np.linalg.norm(g_kernel))
    train_diff = max_relative_difference(out, plain(X[:64], training=True))

    biased, plain = bias_pair(config.seed, X)  # biases start at zero as usual
    for model in (biased, plain):
        train(model, optim.SGD(0.1), epochs=config.pick(3, 1), seed=config.seed)
    infer_diff = max_relative_difference(biased(X_val), plain(X_val))
    bias_after = float(np.max(np.abs(first_layer(biased, nn.Dense).bias.numpy())))
    held = grad_ratio < 1e-9 and train_diff < 1e-9 and infer_diff < 1e-6
    return Outcome(held, f"|grad b| / |grad W| = {grad_ratio:.1e}; outputs differ by "
                         f"{train_diff:.1e} (training), {infer_diff:.1e} (after training)",
                   {"bias_grad_ratio": grad_ratio, "train_output_diff": train_diff,
                    "inference_output_diff": infer_diff, "max_bias_after_training": bias_after},
                   [f"the first layer's bias after training: max |b| = {bias_after:.1e} "
                    f"(it started at 0 and its gradient is 0)"])


def bias_pair(seed: int, X: np.ndarray) -> tuple[nn.Sequential, nn.Sequential]:
    """Two float64 copies of the course's network with the same kernels, built on `X`: one
    with a bias before each batch norm, one without."""
    biased, plain = (network(bias_before_bn=b, seed=seed, dtype=np.float64) for b in (True, False))
    biased(X[:1]), plain(X[:1])
    return biased, plain


def first_layer(model: nn.Sequential, kind: type[L]) -> L:
    """The first layer of `model` that is a `kind`.

    Example:
        >>> first_layer(network(), nn.BatchNorm).momentum
        0.99
    """
    return next(layer for layer in model.layers if isinstance(layer, kind))


# ---------------------------------------------------------------- 8. test-time statistics

def refusal(model: nn.Sequential, x: np.ndarray) -> str:
    """What the library says when asked to normalize one example with its own statistics."""
    try:
        model(x[:1], training=True)
    except ValueError as e:
        return f"the library refuses a batch of one in training mode ({str(e)[:60]}...)"
    return "the library accepted a batch of one in training mode"


@section(8, "batch norm at test time",
         claim="Batch norm at test time uses the EWA of mini-batch statistics; using a single "
               "test example's own statistics instead breaks inference.",
         criterion="accuracy with the running (EWA) statistics exceeds accuracy with each test "
                   "example normalized by its own statistics by at least 0.5; and for one "
                   "example the first batch norm layer outputs beta (within 1e-6)")
def statistics_at_test_time(config: Config) -> Outcome:
    _, _, X_val, y_val = digits()
    model = network(seed=config.seed)
    train(model, optim.Adam(0.01), epochs=config.pick(5, 2), seed=config.seed)
    ewa = val_accuracy(model)
    single = [int(np.argmax(forward_with_batch_statistics(model.layers, x[None])))
              for x in X_val]
    own = float(np.mean(np.array(single) == y_val))
    first_bn = forward_with_batch_statistics(model.layers[:2], X_val[:1])
    off_beta = float(np.max(np.abs(first_bn - first_layer(model, nn.BatchNorm).beta.numpy())))
    saved = model.state_dict()  # a training-mode call updates the running statistics
    whole = nn.accuracy(model(X_val, training=True), y_val)
    details = [refusal(model, X_val), f"one example's first batch-norm output minus beta: max "
               f"{off_beta:.1e} (x - mean(x) = 0 for a batch of one)",
               f"classes predicted with per-example statistics: {sorted(set(single))}",
               f"the whole validation set as one batch (its own statistics): accuracy "
               f"{whole:.3f}"]
    model.load_state_dict(saved)
    return Outcome(ewa - own >= 0.5 and off_beta <= 1e-6,
                   f"accuracy {ewa:.3f} with running statistics vs {own:.3f} with one "
                   f"example's own", {"accuracy_ewa": ewa, "accuracy_single_example": own,
                                      "accuracy_whole_batch": whole, "single_minus_beta": off_beta},
                   details)


# ---------------------------------------------------------------- 9. batch norm as noise

def normalization_noise(z: np.ndarray, batch_size: int, probes: int, draws: int,
                        rng: np.random.Generator) -> float:
    """How much an example's normalized activation moves with the company it keeps.

    For each of `probes` examples, normalize it (`nn.batch_norm`) inside `draws` random
    mini-batches of `batch_size` drawn from the rows of `z`, and take the standard deviation of
    its normalized activations over the draws; return the mean over probes and features.
    """
    noise = []
    for i in range(probes):
        others = np.delete(np.arange(len(z)), i)
        index = np.stack([np.r_[i, rng.choice(others, batch_size - 1, replace=False)]
                          for _ in range(draws)])
        xhat = np.asarray(nn.batch_norm(z[index], axis=(0, 2)))  # statistics per draw
        noise.append(xhat[:, 0, :].std(axis=0).mean())
    return float(np.mean(noise))


@section(9, "batch norm as a regularizer",
         claim="Batch norm has a slight regularizing effect that shrinks as the mini-batch "
               "grows.",
         criterion="the noise (std over random mini-batches) in an example's normalized "
                   "first-layer activations falls strictly from batch size 16 to 64 to 256")
def normalization_noise_by_batch(config: Config) -> Outcome:
    X = digits()[0]
    z = np.asarray(nn.Dense(64, use_bias=False, seed=config.seed)(X))
    sizes = [16, 64, 256]
    rng = np.random.default_rng(config.seed)
    noise = [normalization_noise(z, b, config.pick(32, 12), config.pick(64, 24), rng)
             for b in sizes]
    scaled = [n * np.sqrt(b) for n, b in zip(noise, sizes)]

    def draw(ax: Any) -> None:
        ax.loglog(sizes, noise, "o-", label="measured")
        ax.loglog(sizes, noise[0] * np.sqrt(sizes[0] / np.array(sizes)), "--",
                  label="1/sqrt(batch size)")
        ax.set(xlabel="mini-batch size", ylabel="std of normalized activation")
        ax.legend(fontsize=8)

    return Outcome(noise[0] > noise[1] > noise[2],
                   f"noise {fmt(noise)} for batch sizes {sizes}",
                   {f"noise_{b}": n for b, n in zip(sizes, noise)},
                   [f"noise * sqrt(batch size): {fmt(scaled)} (constant if the noise "
                    f"scaled as 1/sqrt(batch size))"], plot(config, "09_bn_noise", draw))
