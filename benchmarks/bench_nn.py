"""nn against hand-written NumPy: one training step of a batch-norm MLP, and the digits run.

The network is 784 -> 256 -> BN -> ReLU -> 128 -> BN -> ReLU -> 10 with softmax cross-entropy
in float32, trained by Adam. The reference writes the forward pass, the closed-form batch-norm
and softmax gradients and an in-place Adam by hand. Rows: the whole step, its phases
(forward + record, backward, update), peak memory, and 20 epochs on digits (wall seconds).
PyTorch appears as extra rows when it is installed (the `compare` extra), timed in a process
of its own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import numpy as np

import nn
import optim
from benchmarks.timing import Row, compare, peak_memory
from tape import Tape

SIZES = (784, 256, 128, 10)
EPS_BN, LR, BETA_1, BETA_2, EPS_ADAM = 1e-3, 1e-3, 0.9, 0.999, 1e-8


def make_model(seed: int = 0) -> nn.Sequential:
    return nn.Sequential([
        nn.Dense(SIZES[1], use_bias=False, seed=seed), nn.BatchNorm(), nn.ReLU(),
        nn.Dense(SIZES[2], use_bias=False, seed=seed + 1), nn.BatchNorm(), nn.ReLU(),
        nn.Dense(SIZES[3], seed=seed + 2),
    ])


class Reference:
    """The same step in plain NumPy: closed-form gradients, Adam updating arrays in place."""

    def __init__(self, params: list[np.ndarray]) -> None:
        self.params = [p.copy() for p in params]  # W1, g1, b1, W2, g2, b2, W3, c3
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.scratch = [np.empty_like(p) for p in self.params]
        self.t = 0

    @staticmethod
    def _bn_forward(z: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> tuple[Any, ...]:
        xc = z - z.mean(axis=0)
        rstd = 1 / np.sqrt(np.mean(xc * xc, axis=0) + EPS_BN)
        xhat = np.multiply(xc, rstd, out=xc)
        return xhat * gamma + beta, xhat, rstd

    @staticmethod
    def _bn_backward(dy: np.ndarray, xhat: np.ndarray, gamma: np.ndarray, rstd: np.ndarray
                     ) -> tuple[np.ndarray, ...]:
        n = len(dy)
        dbeta = dy.sum(axis=0)
        dgamma = np.sum(dy * xhat, axis=0)
        dz = dy * n
        dz -= dbeta
        dz -= xhat * dgamma
        dz *= gamma * rstd / n
        return dz, dgamma, dbeta

    def forward(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, Any]:
        W1, g1, b1, W2, g2, b2, W3, c3 = self.params
        y1, xh1, r1 = self._bn_forward(x @ W1, g1, b1)
        a1 = np.maximum(y1, 0)
        y2, xh2, r2 = self._bn_forward(a1 @ W2, g2, b2)
        a2 = np.maximum(y2, 0)
        logits = a2 @ W3 + c3
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(len(x))
        loss = float(np.mean(np.log(s[:, 0]) - shifted[rows, labels]))
        return loss, (x, labels, rows, xh1, r1, y1, a1, xh2, r2, y2, a2, e, s)

    def backward(self, cache: Any) -> list[np.ndarray]:
        x, labels, rows, xh1, r1, y1, a1, xh2, r2, y2, a2, e, s = cache
        W1, g1, b1, W2, g2, b2, W3, c3 = self.params
        dlogits = e / s
        dlogits[rows, labels] -= 1
        dlogits /= len(x)
        dW3, dc3 = a2.T @ dlogits, dlogits.sum(axis=0)
        da2 = dlogits @ W3.T
        da2 *= y2 > 0
        dz2, dg2, db2 = self._bn_backward(da2, xh2, g2, r2)
        dW2 = a1.T @ dz2
        da1 = dz2 @ W2.T
        da1 *= y1 > 0
        dz1, dg1, db1 = self._bn_backward(da1, xh1, g1, r1)
        return [x.T @ dz1, dg1, db1, dW2, dg2, db2, dW3, dc3]

    def adam(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        lr = LR * np.sqrt(1 - BETA_2**self.t) / (1 - BETA_1**self.t)
        for p, g, m, v, tmp in zip(self.params, grads, self.m, self.v, self.scratch, strict=True):
            m *= BETA_1
            m += np.multiply(g, 1 - BETA_1, out=tmp)
            v *= BETA_2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - BETA_2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += EPS_ADAM
            np.divide(m, tmp, out=tmp)
            tmp *= lr
            p -= tmp

    def step(self, x: np.ndarray, labels: np.ndarray) -> float:
        loss, cache = self.forward(x, labels)
        self.adam(self.backward(cache))
        return loss


def _engine(batch: int) -> tuple[Any, ...]:
    """Data, a built model, and the engine's step and phases (each a function of nothing)."""
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], batch)
    model = make_model()
    model.build((None, SIZES[0]))
    variables = model.trainable_variables
    opt = optim.Adam(LR, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPS_ADAM)

    def step() -> None:
        nn.train_step(model, x, labels, nn.softmax_cross_entropy, opt, variables)

    def record(persistent: bool = False) -> tuple[Tape, Any]:
        with Tape(persistent=persistent) as t:
            loss = nn.softmax_cross_entropy(model(x, training=True), labels)
        return t, loss

    def phases() -> dict[str, Any]:
        """Recorded once now: time them in this order (only the last one updates weights)."""
        recorded, loss = record(persistent=True)
        grads = recorded.gradient(loss, variables)
        return {
            "forward + record": record,
            "backward": lambda: recorded.gradient(loss, variables),
            "Adam update": lambda: opt.apply_gradients(zip(grads, variables, strict=True)),
        }

    return x, labels, model, step, phases


def _reference(model: nn.Sequential, x: np.ndarray, labels: np.ndarray) -> tuple[Any, ...]:
    ref = Reference([v.numpy() for v in model.trainable_variables])
    cache = ref.forward(x, labels)[1]
    grads = ref.backward(cache)
    phases = {
        "forward + record": lambda: ref.forward(x, labels),
        "backward": lambda: ref.backward(cache),
        "Adam update": lambda: ref.adam(grads),
    }
    return lambda: ref.step(x, labels), phases


_TORCH_CHILD = """
import sys
try:
    import torch
except ImportError:
    print("none")
    raise SystemExit
from benchmarks.bench_nn import _torch_step
from benchmarks.timing import best_time
print(best_time(_torch_step(int(sys.argv[1])), repeat=int(sys.argv[2])))
"""


def _torch_time(batch: int, repeat: int) -> float | None:
    """PyTorch's step time, measured in a process of its own: in this one, OpenBLAS's threads
    still spin after the NumPy matmuls and take the cores PyTorch's threads need. None when
    PyTorch is not installed."""
    out = subprocess.run([sys.executable, "-c", _TORCH_CHILD, str(batch), str(repeat)],
                         capture_output=True, text=True, check=True).stdout.split()
    return None if not out or out[-1] == "none" else float(out[-1])


def _torch_step(batch: int) -> Any:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(SIZES[0], SIZES[1], bias=False), torch.nn.BatchNorm1d(SIZES[1]),
        torch.nn.ReLU(), torch.nn.Linear(SIZES[1], SIZES[2], bias=False),
        torch.nn.BatchNorm1d(SIZES[2]), torch.nn.ReLU(), torch.nn.Linear(SIZES[2], SIZES[3]))
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=(BETA_1, BETA_2), eps=EPS_ADAM)
    x = torch.randn(batch, SIZES[0])
    labels = torch.randint(0, SIZES[3], (batch,))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        opt.step()

    return step


def training_step(quick: bool) -> list[Row]:
    rows = []
    for batch in (64, 256) if quick else (64, 256, 1024):
        x, labels, model, step, phases = _engine(batch)
        ref_step, ref_phases = _reference(model, x, labels)
        repeat = 5 if quick else 9
        engine_time, reference_time = compare(step, ref_step, repeat=repeat)
        rows.append(Row("nn", f"train step (fwd+bwd+Adam), batch {batch}", engine_time,
                        reference_time, target=1.15))
        if not quick:
            for name, fn in phases().items():
                rows.append(Row("nn", f"  {name}, batch {batch}",
                                *compare(fn, ref_phases[name], repeat=repeat)))
        mb = 2.0**20
        rows.append(Row("nn", f"train step peak memory, batch {batch}", peak_memory(step) / mb,
                        peak_memory(ref_step) / mb, unit="MB", target=1.2))
        torch_time = _torch_time(batch, repeat)
        if torch_time is not None:
            rows.append(Row("torch", f"train step (fwd+bwd+Adam), batch {batch}", torch_time,
                            reference_time, note="for comparison: PyTorch (own process) / "
                            "NumPy reference"))
    return rows


def digits_run() -> list[Row]:
    """The digits run: 20 epochs, batch 64, Adam(1e-2); wall time and accuracy."""
    try:
        X_train, y_train, X_test, y_test = nn.datasets.load_digits(seed=0)
    except ImportError as e:
        return [Row("nn", "digits, 20 epochs", float("nan"), note=str(e))]
    model = nn.Sequential([
        nn.Dense(64, use_bias=False, seed=0), nn.BatchNorm(), nn.ReLU(),
        nn.Dense(32, use_bias=False, seed=1), nn.BatchNorm(), nn.ReLU(), nn.Dense(10, seed=2)])
    start = time.perf_counter()
    history = nn.fit(model, X_train, y_train, loss=nn.softmax_cross_entropy,
                     optimizer=optim.Adam(1e-2), epochs=20, batch_size=64,
                     validation_data=(X_test, y_test), seed=0, verbose=0)
    seconds = time.perf_counter() - start
    return [Row("nn", "digits, 20 epochs, batch 64 (wall s)", seconds, unit="s",
                note=f"test accuracy {history.val_accuracy[-1]:.4f} (target >= 0.96)")]


def run(quick: bool = False) -> list[Row]:
    return training_step(quick) + digits_run()
