"""Claim 11: the notes' TensorFlow example, line for line, with this library's names
(`tf.Variable` -> `tape.Variable`, `tf.GradientTape` -> `tape.Tape`,
`tf.keras.optimizers.Adam` -> `optim.Adam`)."""

from __future__ import annotations

import numpy as np

from optim import Adam
from tape import Tape, Tensor, Variable

from .common import Config, Outcome, section


def with_apply_gradients(steps: int = 1000) -> float:
    """The first version: a `train_step` with a tape and `apply_gradients`.

    Example:
        >>> round(with_apply_gradients(), 3)
        5.0
    """
    w = Variable(0, dtype=np.float32)
    optimizer = Adam(0.1)

    def train_step() -> None:
        with Tape() as tape:
            cost = w ** 2 - 10 * w + 25
        trainable_variables = [w]
        grads = tape.gradient(cost, trainable_variables)
        optimizer.apply_gradients(zip(grads, trainable_variables))

    for _ in range(steps):
        train_step()
    return float(w)


def with_minimize(steps: int = 1000) -> float:
    """The second version: the cost's coefficients in `x`, and `optimizer.minimize`.

    Example:
        >>> round(with_minimize(), 3)
        5.0
    """
    w = Variable(0, dtype=np.float32)
    x = np.array([1.0, -10.0, 25.0], dtype=np.float32)
    optimizer = Adam(0.1)

    def training(x: np.ndarray, w: Variable, optimizer: Adam) -> Variable:
        def cost_fn() -> Tensor:
            return x[0] * w ** 2 + x[1] * w + x[2]
        for _ in range(steps):
            optimizer.minimize(cost_fn, [w])
        return w

    w = training(x, w, optimizer)
    return float(w)


@section(11, "the TensorFlow example",
         claim="The TensorFlow example from the notes, line for line in this library: w "
               "reaches 5.0, both with apply_gradients and with minimize and the coefficients "
               "x = [1, -10, 25].",
         criterion="after the notes' 1000 Adam(0.1) steps, |w - 5| < 1e-3 in both versions")
def tensorflow_example(config: Config) -> Outcome:
    w1, w2 = with_apply_gradients(), with_minimize()
    return Outcome(abs(w1 - 5) < 1e-3 and abs(w2 - 5) < 1e-3,
                   f"w = {w1:.6f} (apply_gradients), {w2:.6f} (minimize)",
                   {"w_apply_gradients": w1, "w_minimize": w2})
