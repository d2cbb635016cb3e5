"""Optimizer.update_plan, the step a tape.function replay runs: bit-identical to
apply_gradients, reading hyperparameters, schedules and iterations per call, with the same
all-or-nothing finite checks."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optim
import tape
from optim import schedules

MAKERS: dict[str, Callable[[], Any]] = {
    "adam": lambda: optim.Adam(0.01),
    "adam schedule": lambda: optim.Adam(schedules.ExponentialDecay(0.05, 3, 0.5)),
    "amsgrad": lambda: optim.Adam(0.01, amsgrad=True),
    "adamw": lambda: optim.AdamW(0.01, weight_decay=0.1),
    "sgd momentum": lambda: optim.SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optim.RMSprop(0.01),
    "clipped": lambda: optim.Adam(0.01, clipnorm=0.5),
}


def variables(dtype: Any) -> list[tape.Variable]:
    rng = np.random.default_rng(0)
    return [tape.Variable(rng.standard_normal((4, 3)).astype(dtype), name="kernel"),
            tape.Variable(rng.standard_normal(3).astype(dtype), name="bias")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_plan_steps_bit_identically_to_apply_gradients(name: str, dtype: Any) -> None:
    (ve, oe), (vp, op) = (variables(dtype), MAKERS[name]()), (variables(dtype), MAKERS[name]())
    plan = op.update_plan(vp)
    rng = np.random.default_rng(1)
    for i in range(8):
        grads = [rng.standard_normal(v.shape).astype(dtype) for v in ve]
        if i == 4:  # takes effect at the next step, in both
            oe.learning_rate = op.learning_rate = 0.002
        assert oe.apply_gradients(zip(grads, ve)) == plan(grads)
        for a, b in zip(ve, vp):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    se, sp = oe.state_dict(), op.state_dict()
    assert se.keys() == sp.keys() and op.iterations == 8
    for k in se:
        np.testing.assert_array_equal(se[k], sp[k], err_msg=k)


def test_plan_refuses_nonfinite_gradients_like_apply_gradients() -> None:
    (ve, oe), (vp, op) = (variables(np.float64), optim.Adam(0.1)), (variables(np.float64),
                                                                    optim.Adam(0.1))
    good = [np.ones((4, 3)), np.ones(3)]
    oe.apply_gradients(zip(good, ve))
    op.update_plan(vp)(good)
    bad = [np.ones((4, 3)), np.array([1.0, np.nan, 1.0])]
    with pytest.raises(FloatingPointError) as eager:
        oe.apply_gradients(zip(bad, ve))
    before = [v.numpy() for v in vp]
    with pytest.raises(FloatingPointError) as planned:
        op.update_plan(vp)(bad)
    assert str(eager.value) == str(planned.value) and "non-finite" in str(planned.value)
    for a, b in zip(before, vp):
        np.testing.assert_array_equal(a, b.numpy())
    assert op.iterations == 1


def test_plan_takes_the_checked_path_for_a_step_not_proved_finite() -> None:
    def run(use_plan: bool) -> tuple[list[Any], Any, list[str]]:
        vs, opt = variables(np.float32), optim.Adam(0.1, skip_nonfinite=True)
        step = opt.update_plan(vs) if use_plan else (lambda g: opt.apply_gradients(zip(g, vs)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step([np.ones((4, 3), np.float32), np.ones(3, np.float32)])
            step([np.full((4, 3), 1e30, np.float32), np.ones(3, np.float32)])  # v overflows
        return [v.numpy() for v in vs], opt.state_dict(), [str(w.message) for w in caught]

    (ve, se, we), (vp, sp, wp) = run(False), run(True)
    assert we == wp and "skipped step" in we[0]
    for a, b in zip(ve, vp):
        np.testing.assert_array_equal(a, b)
    for k in se:
        np.testing.assert_array_equal(se[k], sp[k], err_msg=k)


def test_traced_steps_call_the_plan_and_match_eager() -> None:
    def make() -> tuple[Any, Any, Any]:
        w, opt = tape.Variable(np.array([0.5, -1.0])), optim.Adam(schedules.ExponentialDecay(
            0.1, 5, 0.5))

        def step(x: Any) -> Any:
            with tape.Tape() as t:
                cost = tape.sum((w * x - 1.0) ** 2)
            opt.apply_gradients(zip(t.gradient(cost, [w]), [w]))
            return cost
        return w, opt, step

    (we, oe, eager), (wt, ot, step) = make(), make()
    traced = tape.function(step)
    for i in range(12):
        x = np.array([1.0 + i, 2.0])
        if i == 6:
            oe.beta_1 = ot.beta_1 = 0.5
        np.testing.assert_array_equal(eager(x).numpy(), traced(x).numpy())
        np.testing.assert_array_equal(we.numpy(), wt.numpy())
    assert traced.trace_count == 1 and ot.iterations == 12
    (replay,) = traced._cache.values()
    assert any(getattr(v, "__name__", "") == "_run_plan" for v in replay.__globals__.values())
