"""Claim 10: softmax regression with two classes is logistic regression, and the gradient of
softmax cross-entropy with respect to the logits is `y_hat - y`."""

from __future__ import annotations

import numpy as np

import nn
from tape import Tape, Variable

from .common import Config, Outcome, section

TOLERANCE = 1e-10  # float64 rounding is ~1e-16; anything near 1e-10 would be a real mismatch


def max_abs(a: object, b: object) -> float:
    """`max |a - b|` of two arrays or tensors.

    Example:
        >>> max_abs([1.0, 2.0], [1.0, 2.5])
        0.5
    """
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def two_classes_vs_logistic(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """How far 2-class softmax is from the sigmoid of the logit difference `z1 - z0`: in the
    probability of class 1 and in the loss."""
    margin = z[:, 1] - z[:, 0]
    return {
        "probability": max_abs(nn.softmax(z)[:, 1], nn.sigmoid(margin)),
        "loss": max_abs(nn.softmax_cross_entropy(z, y, reduction="none"),
                        nn.sigmoid_binary_cross_entropy(margin, y.astype(np.float64),
                                                        reduction="none")),
    }


def logit_gradients(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """How far the tape's gradients of the summed cross-entropy (the fused loss, and the same
    loss composed from `log_softmax`) are from the notes' formula `dz = y_hat - y`."""
    logits = Variable(z)
    one_hot = np.eye(z.shape[1])[y]
    with Tape(persistent=True) as t:
        fused = nn.softmax_cross_entropy(logits, y, reduction="sum")
        composed = -(one_hot * nn.log_softmax(logits)).sum()
    formula = np.asarray(nn.softmax(z)) - one_hot
    return {"fused": max_abs(t.gradient(fused, logits), formula),
            "composed": max_abs(t.gradient(composed, logits), formula)}


@section(10, "softmax regression",
         claim="Softmax with C = 2 is logistic regression; the gradient of softmax "
               "cross-entropy with respect to the logits is y_hat - y.",
         criterion=f"in float64 on random logits: 2-class softmax probabilities and losses "
                   f"match sigmoid/logistic ones of z1 - z0, and the tape's gradient matches "
                   f"y_hat - y for C = 2 and C = 10, all within {TOLERANCE:g}")
def softmax_regression(config: Config) -> Outcome:
    rng = np.random.default_rng(config.seed)
    m = config.pick(512, 64)
    z2, y2 = rng.normal(0, 3, (m, 2)), rng.integers(0, 2, m)
    z10, y10 = rng.normal(0, 3, (m, 10)), rng.integers(0, 10, m)
    numbers = {f"c2_{k}_diff": v for k, v in two_classes_vs_logistic(z2, y2).items()}
    for c, (z, y) in ((2, (z2, y2)), (10, (z10, y10))):
        numbers |= {f"c{c}_grad_{k}_diff": v for k, v in logit_gradients(z, y).items()}
    worst = max(numbers.values())
    return Outcome(worst < TOLERANCE, f"largest difference {worst:.1e} (over {m} examples)",
                   numbers)
