"""tape.function over nn pieces that compute on raw values: activations, populations, and
`np.errstate` blocks inside a traced step."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import nn
import optim
import tape

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("activation", [nn.leaky_relu, nn.log_softmax, nn.softmax])
def test_activations_replay_bit_identically(activation: Any) -> None:
    w = tape.Variable(RNG.standard_normal((3, 4)))

    def step(x: Any) -> Any:
        with tape.Tape() as t:
            y = (activation(x @ w) * (x @ w)).sum()
        return y, t.gradient(y, w)

    traced = tape.function(step)
    for _ in range(3):
        x = RNG.standard_normal((5, 3)) * 50  # large logits: the max shift matters
        (a, ga), (b, gb) = step(x), traced(x)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(ga.numpy(), gb.numpy())
    assert traced.trace_count == 1


def test_population_train_step_replays_and_freezes_like_eager() -> None:
    def make() -> tuple[Any, Any]:
        pop = nn.Population(lambda: nn.Sequential([nn.Dense(4, dtype=np.float64),
                                                   nn.BatchNorm(dtype=np.float64),
                                                   nn.Dense(1, dtype=np.float64)]), 3, seed=0)
        pop.build((None, 5))
        return pop, optim.SGD(np.array([0.01, 1e200, 0.02]))

    x, y = RNG.standard_normal((16, 5)), RNG.standard_normal((16, 1))
    (pe, oe), (pt, ot) = make(), make()
    traced = tape.function(lambda x, y: pt.train_step(x, y, nn.mean_squared_error, ot))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the step's errstate blocks hold on replay too
        for _ in range(4):
            ve = pe.train_step(x, y, nn.mean_squared_error, oe)[0]
            vt = traced(x, y)[0]
            np.testing.assert_array_equal(ve, vt)
            assert pe.last_frozen.tolist() == pt.last_frozen.tolist()
    assert traced.trace_count == 1 and pt.frozen.tolist() == [False, True, False]
    for k, v in pe.state_dict().items():
        np.testing.assert_array_equal(v, pt.state_dict()[k], err_msg=k)


def test_errstate_inside_the_step_holds_on_replay_and_is_restored() -> None:
    @tape.function
    def step(x: Any) -> Any:
        with np.errstate(divide="raise"):
            y = tape.log(x)
        return y + tape.log(x)  # outside the block: the caller's settings

    step(np.ones(2))
    with np.errstate(divide="ignore"):
        with pytest.raises(FloatingPointError, match="divide by zero"):
            step(np.zeros(2))
        assert np.geterr()["divide"] == "ignore"
        assert "_seterr" in step.replay_source(np.ones(2))
        with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
            step(np.array([1.0, 0.0]))
