"""Learning-rate schedules match their formulas and plug into optimizers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optim import SGD, Adam, schedules
from tape import Variable

STEPS = range(0, 40)

FORMULAS = [
    ("inverse time", schedules.InverseTimeDecay(0.2, decay_rate=1.0),
     lambda e: 0.2 / (1 + 1.0 * e)),
    ("inverse time, staircase every 10",
     schedules.InverseTimeDecay(0.2, 0.5, decay_steps=10, staircase=True),
     lambda e: 0.2 / (1 + 0.5 * math.floor(e / 10))),
    ("exponential 0.95**epoch", schedules.ExponentialDecay(0.1, 0.95),
     lambda e: 0.95**e * 0.1),
    ("exponential, staircase", schedules.ExponentialDecay(0.1, 0.5, 4, staircase=True),
     lambda e: 0.1 * 0.5 ** (e // 4)),
    ("k / sqrt(epoch)", schedules.InverseSqrtDecay(0.1, k=3.0),
     lambda e: 3.0 / math.sqrt(e + 1) * 0.1),
    ("cosine", schedules.CosineDecay(0.1, decay_steps=20, alpha=0.1),
     lambda e: 0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(e, 20) / 20)) + 0.1)),
    ("piecewise constant", schedules.PiecewiseConstantDecay([5, 15], [1.0, 0.5, 0.1]),
     lambda e: 1.0 if e <= 5 else 0.5 if e <= 15 else 0.1),
]


@pytest.mark.parametrize("name, schedule, formula", FORMULAS, ids=[f[0] for f in FORMULAS])
def test_schedule_matches_formula(name, schedule, formula):
    for step in STEPS:
        assert schedule(step) == pytest.approx(formula(step), rel=1e-14, abs=1e-15), step


def test_first_epochs_of_inverse_time_decay():
    # the lecture's table: alpha0 = 0.2, decay_rate = 1 -> 0.2, 0.1, 0.067, 0.05 per epoch
    s = schedules.InverseTimeDecay(0.2, 1.0, steps_per_epoch=100)
    assert [round(s(100 * e + 50), 3) for e in range(4)] == [0.2, 0.1, 0.067, 0.05]


def test_steps_per_epoch_changes_the_rate_once_per_epoch():
    s = schedules.ExponentialDecay(0.1, 0.95, steps_per_epoch=3)
    assert [s(i) for i in range(6)] == [0.1] * 3 + [0.1 * 0.95] * 3


def test_optimizer_evaluates_schedule_on_its_step_and_counts_epochs():
    w = Variable(0.0)
    opt = SGD(schedules.InverseTimeDecay(1.0, decay_rate=1.0, steps_per_epoch=2))
    lrs = []
    for _ in range(6):
        lrs.append(opt.current_learning_rate)
        opt.apply_gradients([(-1.0, w)])  # a constant gradient: w grows by the lr
    assert lrs == [1.0, 1.0, 0.5, 0.5, 1 / 3, 1 / 3]
    assert float(w) == pytest.approx(sum(lrs))


def test_a_plain_function_is_a_schedule_and_can_be_swapped_between_steps():
    w = Variable(0.0)
    opt = Adam(lambda step: 0.1 * 0.5**step)
    opt.apply_gradients([(1.0, w)])
    opt.apply_gradients([(1.0, w)])
    assert float(w) == pytest.approx(-0.15, rel=1e-6)  # Adam's first steps move by ~lr
    opt.learning_rate = 0.0
    opt.apply_gradients([(1.0, w)])
    assert float(w) == pytest.approx(-0.15, rel=1e-6)


def test_array_initial_rates_give_one_rate_per_member():
    s = schedules.ExponentialDecay(np.array([0.1, 1.0]), 0.5)
    np.testing.assert_allclose(s(2), [0.025, 0.25])


def test_schedule_attributes_can_change_between_steps():
    s = schedules.ExponentialDecay(0.1, 0.5)
    s.decay_rate = 1.0
    assert s(10) == 0.1


@pytest.mark.parametrize("make", [
    lambda: schedules.InverseTimeDecay(-0.1, 1.0),
    lambda: schedules.InverseTimeDecay(0.1, -1.0),
    lambda: schedules.ExponentialDecay(float("nan"), 0.9),
    lambda: schedules.ExponentialDecay(0.1, 0.9, decay_steps=0),
    lambda: schedules.InverseSqrtDecay(0.1, steps_per_epoch=0),
    lambda: schedules.CosineDecay(0.1, 10, alpha=2.0),
    lambda: schedules.PiecewiseConstantDecay([10, 5], [1.0, 0.5, 0.1]),
    lambda: schedules.PiecewiseConstantDecay([10], [1.0]),
    lambda: schedules.PiecewiseConstantDecay([10], [1.0, -0.5]),
])
def test_bad_schedule_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_schedule_returning_a_bad_rate_is_refused_before_any_update():
    w = Variable(1.0)
    opt = SGD(lambda step: -0.1)
    with pytest.raises(ValueError, match="learning rate from schedule"):
        opt.apply_gradients([(1.0, w)])
    assert float(w) == 1.0 and opt.iterations == 0
