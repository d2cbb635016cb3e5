"""Layers and activations users of the course expect: gelu, softplus, elu, Flatten, Dropout."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nn
import optim
import tape
from tape import Tape

X = np.array([-30.0, -2.0, -0.5, 0.0, 0.3, 1.5, 40.0])


def test_gelu_exact_and_tanh_forms_match_their_definitions():
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in X])
    np.testing.assert_allclose(nn.gelu(X).numpy(), exact, rtol=1e-15, atol=1e-300)
    approx = 0.5 * X * (1 + np.tanh(np.sqrt(2 / np.pi) * (X + 0.044715 * X**3)))
    np.testing.assert_allclose(nn.gelu(X, approximate=True).numpy(), approx, rtol=1e-15)
    assert nn.layers.activations.get("gelu") is nn.gelu


@pytest.mark.parametrize("fn", [nn.gelu, lambda x: nn.gelu(x, approximate=True), nn.softplus,
                                lambda x: nn.elu(x, alpha=0.7)])
def test_new_activations_have_checked_first_and_second_derivatives(fn):
    x = np.array([-1.7, -0.4, 0.35, 1.2])
    tape.check_gradients(fn, x)
    tape.check_gradients(lambda v: fn(v) ** 2, x, order=2, rtol=1e-4, atol=1e-5)


def test_softplus_and_elu_are_exact_in_the_tails():
    np.testing.assert_allclose(nn.softplus(X).numpy(), np.logaddexp(0, X), rtol=1e-15)
    np.testing.assert_allclose(nn.elu(X).numpy(), np.where(X > 0, X, np.expm1(np.minimum(X, 0))),
                               rtol=1e-15)
    w = tape.Variable(0.0)
    with Tape() as t:
        y = nn.softplus(w)
    assert float(t.gradient(y, w)) == 0.5
    assert nn.Activation("elu")(np.array([-1.0])).numpy()[0] == pytest.approx(math.expm1(-1))


def test_flatten_keeps_the_batch_axis_and_passes_gradients():
    x = tape.Variable(np.arange(24.0).reshape(2, 3, 4))
    with Tape() as t:
        y = tape.sum(nn.Flatten()(x) * np.arange(12.0))
    assert nn.Flatten()(np.zeros((5, 2, 2))).shape == (5, 4)
    assert nn.Flatten()(np.zeros(5)).shape == (5, 1)
    np.testing.assert_array_equal(t.gradient(y, x).numpy(), np.tile(np.arange(12.0), 2)
                                  .reshape(2, 3, 4))


def test_dropout_is_inverted_and_training_aware():
    layer = nn.Dropout(0.25, seed=1)
    x = np.ones((200, 50))
    assert layer(x) is x
    y = layer(x, training=True).numpy()
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02 and abs(y.mean() - 1) < 0.03
    with pytest.raises(ValueError, match=r"Dropout rate must lie in \[0, 1\)"):
        nn.Dropout(1.0)


def _dropout_step():
    model = nn.Sequential([nn.Dense(8, seed=0), nn.Dropout(0.5, seed=3), nn.Dense(2, seed=1)])
    opt = optim.SGD(0.1)

    def step(x, y):
        with Tape() as t:
            loss = nn.softmax_cross_entropy(model(x, training=True), y)
        opt.apply_gradients(zip(t.gradient(loss, model.trainable_variables),
                                model.trainable_variables))
        return loss
    model.build((None, 4))
    return step, model


def test_a_traced_step_with_dropout_equals_the_eager_step_for_the_same_seed():
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(6, 4)), rng.integers(0, 2, 6)) for _ in range(5)]
    eager, eager_model = _dropout_step()
    traced, traced_model = _dropout_step()
    traced = tape.function(traced)
    for x, y in batches:
        np.testing.assert_array_equal(np.asarray(eager(x, y)), np.asarray(traced(x, y)))
    assert traced.trace_count == 1
    for a, b in zip(eager_model.variables, traced_model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
