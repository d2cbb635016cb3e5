"""tape.function writes a gradient that goes only to an update plan straight into the plan's
gradient buffer (`UpdatePlan.destinations`), and never one that escapes otherwise."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

import nn
import optim
import tape
from tape.backprop import finish

RNG = np.random.default_rng(11)


def _replay(f: Any) -> Any:
    (replay,) = f._cache.values()
    return replay


def _views_written(f: Any, opt: Any, variables: list[tape.Variable]) -> int:
    """How many lines of `f`'s replay write into the views of `opt`'s plan for `variables`."""
    replay = _replay(f)
    views = opt.update_plan(variables).gradient_views()
    ns = replay.__globals__
    names = [name for name, obj in ns.items() if any(obj is v for v in views)]
    return sum(len(re.findall(rf"out=\(?{name}\b", replay.source)) for name in names)


def _finish_calls(f: Any) -> int:
    replay = _replay(f)
    names = [name for name, obj in replay.__globals__.items() if obj is finish]
    return sum(replay.source.count(f"{name}(") for name in names)


def _mlp(seed: int) -> nn.Sequential:
    model = nn.Sequential([nn.Dense(16, use_bias=False, seed=seed), nn.BatchNorm(), nn.ReLU(),
                           nn.Dense(8, use_bias=False, seed=seed + 1), nn.BatchNorm(),
                           nn.ReLU(), nn.Dense(4, seed=seed + 2)])
    model.build((None, 12))
    return model


def _assert_same_state(a: list[tape.Variable], b: list[tape.Variable], oa: Any, ob: Any) -> None:
    for va, vb in zip(a, b, strict=True):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def test_digits_like_step_writes_weight_gradients_into_the_plan_and_matches_eager() -> None:
    x = RNG.standard_normal((32, 12)).astype(np.float32)
    labels = RNG.integers(0, 4, 32)
    runs = []
    for _ in range(2):
        model = _mlp(0)
        runs.append((model, model.trainable_variables, optim.Adam(0.01)))

    def make(model: Any, variables: list[tape.Variable], opt: Any) -> Callable[..., Any]:
        def step(x: Any, y: Any) -> Any:
            with tape.Tape() as t:
                loss = nn.softmax_cross_entropy(model(x, training=True), y)
            opt.apply_gradients(zip(t.gradient(loss, variables), variables))
            return loss
        return step

    eager = make(*runs[0])
    traced = tape.function(make(*runs[1]))
    for _ in range(20):
        np.testing.assert_array_equal(eager(x, labels).numpy(), traced(x, labels).numpy())
    assert traced.trace_count == 1
    _assert_same_state(runs[0][1], runs[1][1], runs[0][2], runs[1][2])
    for model, _, _ in runs[1:]:  # BatchNorm's running statistics too
        for va, vb in zip(runs[0][0].variables, model.variables, strict=True):
            np.testing.assert_array_equal(va.numpy(), vb.numpy())
    # the three Dense kernels' gradients are matmuls: written where the plan reads them
    assert _views_written(traced, runs[1][2], runs[1][1]) == 3


Step = Callable[[Any, Any, tape.Variable, tape.Variable, Any], Any]


def _eager_and_traced(body: Step, seed: int, make_opts: Callable[[], Any]
                      ) -> tuple[Any, list[tape.Variable], Any]:
    """Run `body(x, y, a, b, opts)` eagerly and under tape.function for 20 steps from the same
    state, check that results, weights and optimizer states are the same bits; returns
    (traced function, its variables, its optimizers)."""
    x, y = RNG.standard_normal((7, 5)), RNG.standard_normal((7, 2))
    runs = []
    for _ in range(2):
        r = np.random.default_rng(seed)
        ab = [tape.Variable(r.standard_normal((5, 3))), tape.Variable(r.standard_normal((3, 2)))]
        runs.append((ab, make_opts()))

    def bind(ab: list[tape.Variable], opts: Any) -> Callable[[Any, Any], Any]:
        return lambda x, y: body(x, y, ab[0], ab[1], opts)

    eager, traced = bind(*runs[0]), tape.function(bind(*runs[1]))
    kept = []
    for _ in range(20):
        e, t = eager(x, y), traced(x, y)
        np.testing.assert_array_equal(e.numpy(), t.numpy())
        kept.append((e.numpy().copy(), t))
    for value, t in kept:  # later calls never wrote over what an earlier one returned
        np.testing.assert_array_equal(value, t.numpy())
    assert traced.trace_count == 1
    for oe, ot in zip(runs[0][1], runs[1][1], strict=True):
        _assert_same_state(runs[0][0], runs[1][0], oe, ot)
    return traced, runs[1][0], runs[1][1]


def _loss(x: Any, y: Any, a: tape.Variable, b: tape.Variable, sign: float = -1.0) -> Any:
    return tape.sum((x @ a @ b + sign * y) ** 2)


def test_gradient_that_only_goes_to_the_step_skips_finish() -> None:
    def body(x: Any, y: Any, a: tape.Variable, b: tape.Variable, opts: Any) -> Any:
        with tape.Tape() as t:
            loss = _loss(x, y, a, b)
        opts[0].apply_gradients(zip(t.gradient(loss, [a, b]), [a, b]))
        return loss

    traced, ab, opts = _eager_and_traced(body, 0, lambda: [optim.Adam(0.05)])
    assert _views_written(traced, opts[0], ab) == 2
    assert _finish_calls(traced) == 0


def test_returned_gradient_is_not_written_into_the_plan() -> None:
    def body(x: Any, y: Any, a: tape.Variable, b: tape.Variable, opts: Any) -> Any:
        with tape.Tape() as t:
            loss = _loss(x, y, a, b)
        grads = t.gradient(loss, [a, b])
        opts[0].apply_gradients(zip(grads, [a, b]))
        return grads[0]

    traced, ab, opts = _eager_and_traced(body, 1, lambda: [optim.Adam(0.05)])
    assert _views_written(traced, opts[0], ab) == 1  # the second one's only


def test_gradient_read_after_the_step_is_not_written_into_the_plan() -> None:
    def body(x: Any, y: Any, a: tape.Variable, b: tape.Variable, opts: Any) -> Any:
        with tape.Tape() as t:
            loss = _loss(x, y, a, b)
        ga, gb = t.gradient(loss, [a, b])
        opts[0].apply_gradients(zip([ga, gb], [a, b]))
        return tape.sum(gb * gb)  # read after the step

    traced, ab, opts = _eager_and_traced(body, 2, lambda: [optim.Adam(0.05)])
    assert _views_written(traced, opts[0], ab) == 1  # the first one's only


def test_two_optimizers_in_one_step_match_eager() -> None:
    def body(x: Any, y: Any, a: tape.Variable, b: tape.Variable, opts: Any) -> Any:
        with tape.Tape() as t:
            loss = _loss(x, y, a, b)
        ga, gb = t.gradient(loss, [a, b])
        opts[0].apply_gradients(zip([ga], [a]))
        opts[1].apply_gradients(zip([gb], [b]))  # gb was made before the first step: as is
        return loss

    traced, ab, opts = _eager_and_traced(body, 3, lambda: [optim.Adam(0.05), optim.Adam(0.02)])
    assert _views_written(traced, opts[0], ab[:1]) == 1
    assert _views_written(traced, opts[1], ab[1:]) == 0


def test_same_gradients_to_two_steps_are_not_written_into_either_plan() -> None:
    def body(x: Any, y: Any, a: tape.Variable, b: tape.Variable, opts: Any) -> Any:
        with tape.Tape() as t:
            loss = _loss(x, y, a, b)
        grads = t.gradient(loss, [a, b])
        opts[0].apply_gradients(zip(grads, [a, b]))
        opts[1].apply_gradients(zip(grads, [a, b]))
        return loss

    traced, ab, opts = _eager_and_traced(body, 4, lambda: [optim.Adam(0.05), optim.SGD(1e-4)])
    assert [_views_written(traced, opt, ab) for opt in opts] == [0, 0]


def test_one_optimizer_stepping_twice_on_gradients_made_first_matches_eager() -> None:
    def body(x: Any, y: Any, a: tape.Variable, b: tape.Variable, opts: Any) -> Any:
        with tape.Tape() as t:
            loss = _loss(x, y, a, b)
        with tape.Tape() as s:
            other = _loss(x, y, a, b, sign=1.0)
        first, second = t.gradient(loss, [a, b]), s.gradient(other, [a, b])
        opts[0].apply_gradients(zip(first, [a, b]))  # both into the same plan's buffer
        opts[0].apply_gradients(zip(second, [a, b]))
        return loss

    traced, ab, opts = _eager_and_traced(body, 5, lambda: [optim.Adam(0.05)])
    assert _views_written(traced, opts[0], ab) == 2  # the first step's only
