"""Forward mode on the 784-256-BN-128-BN-10 MLP loss (fused batch norm and cross-entropy).

- JVP along one random direction of all parameters (a `ForwardAccumulator` around the loss),
  as a ratio to one forward pass of the loss without a tape (target: at most 1.5x);
- Hessian-vector product forward-over-reverse (`tape.hvp`: the gradient computed inside an
  accumulator) as a ratio to one gradient (target: at most 2x), and reverse-over-reverse (an
  outer tape around the inner tape's backward pass) for comparison.
"""

from __future__ import annotations

import numpy as np

import nn
import tape
from benchmarks.bench_higher_order import hvp_reverse_over_reverse
from benchmarks.timing import Row, compare
from tape import ForwardAccumulator, Tape, Variable

SIZES = (784, 256, 128, 10)


def make_params(rng: np.random.Generator) -> list[Variable]:
    """[W1, gamma1, beta1, W2, gamma2, beta2, W3, b3] in float32.

    Example:
        >>> [tuple(p.shape) for p in make_params(np.random.default_rng(0))][:3]
        [(784, 256), (256,), (256,)]
    """
    params = []
    for k, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)
        params.append(Variable(w.astype(np.float32), name=f"W{k + 1}"))
        if k < len(SIZES) - 2:
            params += [Variable(np.ones(fan_out, np.float32)),
                       Variable(np.zeros(fan_out, np.float32))]
        else:
            params.append(Variable(np.zeros(fan_out, np.float32)))
    return params


def bn_mlp_loss(params: list[Variable], x: np.ndarray, labels: np.ndarray) -> tape.Tensor:
    """Mean softmax cross-entropy of Dense-BN-ReLU, Dense-BN-ReLU, Dense (batch statistics).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((4, 784)).astype(np.float32)
        >>> bn_mlp_loss(make_params(rng), x, np.arange(4)).shape
        ()
    """
    w1, g1, b1, w2, g2, b2, w3, b3 = params
    h = tape.relu(nn.batch_norm(x @ w1, g1, b1))
    h = tape.relu(nn.batch_norm(h @ w2, g2, b2))
    return nn.softmax_cross_entropy(h @ w3 + b3, labels)


def run(quick: bool = False) -> list[Row]:
    rng = np.random.default_rng(0)
    params = make_params(rng)
    direction = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    rows = []
    for batch in (64,) if quick else (64, 256):
        x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
        labels = rng.integers(0, SIZES[-1], batch)

        def forward(x=x, labels=labels) -> None:
            bn_mlp_loss(params, x, labels)

        def jvp(x=x, labels=labels) -> None:
            with ForwardAccumulator(params, direction) as acc:
                loss = bn_mlp_loss(params, x, labels)
            acc.jvp(loss)

        def gradient(x=x, labels=labels) -> None:
            with Tape() as t:
                loss = bn_mlp_loss(params, x, labels)
            t.gradient(loss, params)

        def hvp(x=x, labels=labels) -> None:
            tape.hvp(lambda p: bn_mlp_loss(p, x, labels), params, direction)

        def hvp_reverse(x=x, labels=labels) -> None:
            hvp_reverse_over_reverse(lambda p: bn_mlp_loss(p, x, labels), params, direction)

        case = f"BN MLP, batch {batch}"
        engine, reference = compare(jvp, forward, repeat=5)
        rows.append(Row("forward", f"{case}: JVP", engine, reference, target=1.5,
                        note="ratio to one forward pass"))
        engine, reference = compare(hvp, gradient, repeat=5)
        rows.append(Row("forward", f"{case}: HVP fwd-over-rev", engine, reference, target=2.0,
                        note="ratio to one gradient"))
        engine, reference = compare(hvp_reverse, gradient, repeat=5)
        rows.append(Row("forward", f"{case}: HVP rev-over-rev", engine, reference,
                        note="ratio to one gradient"))
    return rows
