"""Weight penalties: the regularizers, Module.regularization_losses, and fit minimizing them."""

import numpy as np
import pytest

import nn
import optim
import tape
from tape import Tape


def _data(n=32):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 4))
    return X, X @ rng.standard_normal((4, 2)) + 0.1 * rng.standard_normal((n, 2))


def test_penalties_are_keras_formulas():
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert float(nn.regularizers.L2(0.01)(w)) == 0.01 * np.sum(w ** 2)
    assert float(nn.regularizers.L1(0.1)(w)) == 0.1 * np.sum(np.abs(w))
    both = nn.regularizers.L1L2(l1=0.1, l2=0.01)(w)
    assert float(both) == 0.1 * np.sum(np.abs(w)) + 0.01 * np.sum(w ** 2)
    assert float(nn.regularizers.L1L2()(w)) == 0.0
    assert nn.regularizers.get("l2").l2 == 0.01 and nn.regularizers.get("L1").l1 == 0.01


def test_bad_regularizers_are_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"unknown regularizer 'l3': use 'l1', 'l2'"):
        nn.Dense(2, kernel_regularizer="l3")
    with pytest.raises(ValueError, match=r"regularizer l2 must be a finite number >= 0, got -1"):
        nn.regularizers.L2(-1)


def test_regularization_losses_collect_every_sublayer_once():
    shared = nn.Dense(3, input_dim=3, kernel_regularizer=nn.regularizers.L1(0.5), seed=2)
    model = nn.Sequential([nn.Dense(3, input_dim=4, kernel_regularizer="l2", seed=0),
                           shared, nn.Sequential([shared, nn.ReLU()]),
                           nn.Dense(1, input_dim=3, seed=1)])
    penalties = model.regularization_losses()
    expected = [0.01 * np.sum(model.layers[0].kernel.numpy() ** 2),
                0.5 * np.sum(np.abs(shared.kernel.numpy()))]
    np.testing.assert_allclose([float(p) for p in penalties], expected, rtol=1e-6)
    assert nn.Dense(2).regularization_losses() == []  # not built: no kernel yet


def test_the_regularized_gradient_is_the_hand_computed_one():
    X, y = _data()
    model = nn.Sequential([nn.Dense(3, kernel_regularizer=nn.regularizers.L2(0.1), seed=0,
                                    dtype=np.float64),
                           nn.Dense(2, kernel_regularizer="l1", seed=1, dtype=np.float64)])
    model(X)
    w1, w2 = model.layers[0].kernel, model.layers[1].kernel
    variables = model.trainable_variables
    before = [v.numpy() for v in variables]
    with Tape() as t:
        value = (nn.mean_squared_error(model(X, training=True), y)
                 + 0.1 * tape.sum(w1 * w1) + 0.01 * tape.sum(tape.abs(w2)))
    expected = t.gradient(value, variables)
    lr = 0.1
    loss, _ = nn.train_step(model, X, y, nn.mean_squared_error, optim.SGD(lr))
    assert loss == float(value)
    for v, b, g in zip(variables, before, expected, strict=True):
        np.testing.assert_array_equal(v.numpy(), b - lr * g.numpy())


def test_fit_with_a_large_l2_gives_smaller_weights_and_logs_the_penalty():
    X, y = _data(64)

    def run(regularizer):
        model = nn.Dense(2, kernel_regularizer=regularizer, seed=0)
        h = nn.fit(model, X, y, loss="mse", optimizer=optim.Adam(0.05), epochs=30,
                   batch_size=64, shuffle=False, verbose=0)
        return model, h

    plain, h_plain = run(None)
    strong, h_strong = run(nn.regularizers.L2(1.0))
    assert np.sum(strong.kernel.numpy() ** 2) < 0.5 * np.sum(plain.kernel.numpy() ** 2)
    # one batch per epoch: the logged loss of the last epoch is the loss of its step, penalty
    # included (the weights before that step's update)
    before = nn.Dense(2, kernel_regularizer=nn.regularizers.L2(1.0), seed=0)
    nn.fit(before, X, y, loss="mse", optimizer=optim.Adam(0.05), epochs=29, batch_size=64,
           shuffle=False, verbose=0)
    mse = float(nn.mean_squared_error(before(X), y))
    penalty = float(np.sum(before.kernel.numpy() ** 2))
    np.testing.assert_allclose(h_strong.loss[-1], mse + penalty, rtol=1e-5)
    assert h_plain.loss[-1] < h_strong.loss[-1]


def test_a_population_refuses_kernel_regularizers():
    pop = nn.Population(lambda: nn.Dense(2, kernel_regularizer="l2"), size=2, seed=0)
    with pytest.raises(ValueError, match="kernel_regularizer is not supported inside an "
                                         "nn.Population"):
        pop(np.ones((3, 4)))
