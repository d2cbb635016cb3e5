"""`nn.fit` compiled (the default) against eager, for each kind of model and option the suite
trains: the same weights, optimizer slots, running statistics and history, bit for bit."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import nn
import optim
import tape

RNG = np.random.default_rng(3)
X = RNG.standard_normal((90, 5))  # batches of 16: five of 16 and a last one of 10
LABELS = np.argmax(X @ RNG.standard_normal((5, 3)), axis=1)
TARGETS = X[:, :2] @ RNG.standard_normal((2, 1))
CLASSES = {"loss": "sparse_categorical_crossentropy", "y": LABELS}
REGRESSION = {"loss": "mse", "y": TARGETS}


def dense(dtype: Any) -> nn.Module:
    return nn.Sequential([nn.Dense(8, seed=0, dtype=dtype), nn.Tanh(),
                          nn.Dense(3, seed=1, dtype=dtype)])


def batch_norm(dtype: Any) -> nn.Module:
    return nn.Sequential([nn.Dense(8, use_bias=False, seed=0, dtype=dtype),
                          nn.BatchNorm(dtype=dtype), nn.ReLU(), nn.Dense(3, seed=1, dtype=dtype)])


def layer_norm(dtype: Any) -> nn.Module:
    return nn.Sequential([nn.Dense(8, seed=0, dtype=dtype), nn.LayerNorm(dtype=dtype),
                          nn.ReLU(), nn.Dense(1, seed=1, dtype=dtype)])


def dropout(dtype: Any) -> nn.Module:
    return nn.Sequential([nn.Dense(8, seed=0, dtype=dtype), nn.Dropout(0.25, seed=5),
                          nn.ReLU(), nn.Dense(3, seed=1, dtype=dtype)])


def regularized(dtype: Any) -> nn.Module:
    return nn.Sequential([nn.Dense(8, seed=0, dtype=dtype,
                                   kernel_regularizer=nn.regularizers.L2(1e-2)), nn.ReLU(),
                          nn.Dense(1, seed=1, dtype=dtype, kernel_regularizer="l1")])


def population(dtype: Any) -> nn.Module:
    return nn.Population(lambda: batch_norm(dtype), 3, seed=[0, 1, 2])


Case = tuple[Callable[[Any], nn.Module], dict[str, Any], Callable[[], Any]]
CASES: dict[str, Case] = {
    "dense": (dense, {**CLASSES, "metrics": ["accuracy"]}, lambda: optim.SGD(0.1, momentum=0.9)),
    "batch norm, validation data": (batch_norm,
                                    {**CLASSES, "validation_data": (X[:20], LABELS[:20])},
                                    lambda: optim.Adam(0.01)),
    "layer norm, RMSprop": (layer_norm, {**REGRESSION, "metrics": ["mae"]},
                           lambda: optim.RMSprop(0.01)),
    "dropout, validation split": (dropout, {**CLASSES, "validation_split": 0.2},
                                  lambda: optim.Adam(0.01)),
    "regularizers, AdamW": (regularized, REGRESSION, lambda: optim.AdamW(0.01)),
    "sample weights": (batch_norm, {**CLASSES, "sample_weight": np.linspace(0.2, 2.0, 90)},
                       lambda: optim.Adam(0.01)),
    "class weights, schedule": (batch_norm, {**CLASSES, "class_weight": {0: 2.0, 1: 0.5, 2: 1.0}},
                                lambda: optim.Adam(optim.schedules.ExponentialDecay(0.02, 4, 0.9))),
    "population, shared data": (population, {**CLASSES, "validation_split": 0.2},
                                lambda: optim.Adam(np.array([0.001, 0.01, 0.1]))),
    "population, data per member": (population, {"loss": "sparse_categorical_crossentropy",
                                                 "X": np.stack([X, -X, 2 * X]),
                                                 "y": np.stack([LABELS] * 3)},
                                    lambda: optim.SGD(np.array([0.05, 0.1, 0.2]))),
}


def train(case: Case, dtype: Any, compile: bool) -> tuple[Any, ...]:
    make, options, make_optimizer = case
    options = dict(options)
    model, opt = make(dtype), make_optimizer()
    data = options.pop("X", X).astype(dtype)
    batch_values: list[Any] = []

    class Batches(nn.Callback):
        def on_batch_end(self, state: nn.TrainingState) -> None:
            batch_values.append(state.batch_logs)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no silent fallback to eager
        h = nn.fit(model, data, options.pop("y"), optimizer=opt, epochs=3, batch_size=16, seed=2,
                   callbacks=[Batches()], verbose=0, compile=compile, **options)
    return model.state_dict(), opt.state_dict(), h, batch_values


def assert_equal_trees(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            assert_equal_trees(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_equal_trees(u, v, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic, float, int)) and not isinstance(a, bool):
        assert type(np.asarray(a).dtype) is type(np.asarray(b).dtype), where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_compiled_fit_matches_eager_fit_bit_for_bit(name: str, dtype: Any) -> None:
    eager, compiled = (train(CASES[name], dtype, compile) for compile in (False, True))
    assert_equal_trees(eager[0], compiled[0], "weights and running statistics")
    assert_equal_trees(eager[1], compiled[1], "optimizer state")
    assert_equal_trees(eager[2].history, compiled[2].history, "history")
    assert eager[2].frozen == compiled[2].frozen
    assert_equal_trees(eager[3], compiled[3], "batch logs")
    assert len(compiled[3]) == 3 * (5 if "validation_split" in CASES[name][1] else 6)


def test_compiled_fit_is_the_default() -> None:
    runs = []
    for options in ({}, {"compile": True}, {"compile": False}):
        model = batch_norm(np.float64)
        nn.fit(model, X, LABELS, loss="sparse_categorical_crossentropy", optimizer="adam",
               epochs=1, batch_size=16, verbose=0, **options)
        runs.append(model.state_dict())
    assert_equal_trees(runs[0], runs[1])


def test_a_step_that_cannot_be_traced_warns_once_and_trains_eagerly() -> None:
    def loss(outputs: Any, labels: Any) -> Any:
        value = nn.softmax_cross_entropy(outputs, labels)
        if float(value) > 1e6:  # a Python choice on a traced value: cannot be replayed
            raise AssertionError("unexpected")
        return value

    states = []
    for compile in (False, True):
        model = batch_norm(np.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            h = nn.fit(model, X, LABELS, loss=loss, optimizer="adam", epochs=2, batch_size=16,
                       verbose=0, compile=compile)
        states.append((model.state_dict(), h.history,
                       [str(w.message) for w in caught if w.category is RuntimeWarning]))
    assert states[0][2] == []
    assert len(states[1][2]) == 1
    assert "'nn.fit step (compile=True)' runs eagerly on every call: float() of a traced " \
           "value at" in states[1][2][0] and "test_fit_compile_table.py" in states[1][2][0]
    assert_equal_trees(states[0][0], states[1][0])
    assert_equal_trees(states[0][1], states[1][1])


@pytest.mark.parametrize("loss", [nn.mean_squared_error, nn.sigmoid_binary_cross_entropy])
def test_a_traced_loss_casts_tensor_labels_like_array_labels(loss: Any) -> None:
    # float64 labels for float32 outputs: traced, the labels arrive as tensors
    x = RNG.standard_normal((16, 2)).astype(np.float32)
    labels = RNG.integers(0, 2, (16, 1)) * RNG.uniform(0.5, 1.0, (16, 1))

    def run(compiled: bool) -> np.ndarray:
        w, opt = tape.Variable(np.full((2, 1), 0.5, np.float32)), optim.SGD(0.1)

        def step(x: Any, y: Any) -> Any:
            with tape.Tape() as t:
                value = loss(x @ w, y)
            opt.apply_gradients(zip(t.gradient(value, [w]), [w]))
            return value

        f = tape.function(step) if compiled else step
        values = [f(x, labels) for _ in range(3)]
        assert all(np.asarray(v).dtype == np.float32 for v in values)
        return w.numpy()

    np.testing.assert_array_equal(run(False), run(True))
