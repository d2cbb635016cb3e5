"""tape.function buffers: single-ufunc kernels write into buffers planned per trace, reused
when dead; values that escape the call (returned, kept by a tape.kernel) never do."""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np

import nn
import optim
import tape

RNG = np.random.default_rng(5)


def buffers(source: str) -> set[str]:
    return set(re.findall(r"out=\(?(c\d+)", source))


def test_a_chain_reuses_dead_buffers_and_matches_eager() -> None:
    def f(x: Any) -> Any:
        a = tape.exp(x * 2.0)
        b = tape.maximum(a + 1.0, x)
        c = tape.exp(b * 0.5)
        return (c - x).sum()

    traced = tape.function(f)
    x = RNG.standard_normal((64, 32))
    traced(x)
    for _ in range(3):
        x = RNG.standard_normal((64, 32))
        np.testing.assert_array_equal(f(x).numpy(), traced(x).numpy())
    source = traced.replay_source(x)
    assert source.count("out=") == 7 and len(buffers(source)) == 2  # two live at a time


def test_returned_values_and_their_views_are_fresh_each_call() -> None:
    traced = tape.function(lambda x: ((x * 2.0).reshape(-1), tape.exp(x)))
    x = np.ones((4, 4))
    first = traced(x)
    second = traced(x + 1.0)
    np.testing.assert_array_equal(first[0].numpy(), np.full(16, 2.0))
    np.testing.assert_array_equal(first[1].numpy(), np.exp(x))
    assert not np.shares_memory(first[1].numpy(), second[1].numpy())
    assert "out=" not in traced.replay_source(x)


def test_a_value_given_to_a_kernel_is_never_overwritten() -> None:
    kept: list[Any] = []

    @tape.kernel
    def keep(v: Any) -> None:
        kept.append(v)

    @tape.function
    def f(x: Any) -> Any:
        y = x * 3.0
        keep(y)
        return tape.exp(y + 1.0).sum()

    for i in range(3):
        f(np.full((8, 8), float(i)))
    assert [float(np.asarray(k)[0, 0]) for k in kept] == [0.0, 3.0, 6.0]


def test_mlp_step_uses_buffers_and_stays_bit_identical() -> None:
    def make() -> tuple[Any, Any]:
        model = nn.Sequential([nn.Dense(32, use_bias=False, seed=0), nn.BatchNorm(),
                               nn.ReLU(), nn.Dense(4, seed=1)])
        model.build((None, 8))
        opt = optim.Adam(0.01)

        def step(x: Any, y: Any) -> Any:
            with tape.Tape() as t:
                loss = nn.softmax_cross_entropy(model(x, training=True), y)
            variables = model.trainable_variables
            opt.apply_gradients(zip(t.gradient(loss, variables), variables))
            return loss
        return model, step

    (me, eager), (mt, step) = make(), make()
    traced = tape.function(step)
    for _ in range(5):
        x, y = RNG.standard_normal((64, 8)).astype(np.float32), RNG.integers(0, 4, 64)
        np.testing.assert_array_equal(eager(x, y).numpy(), traced(x, y).numpy())
    for k, v in me.state_dict().items():
        np.testing.assert_array_equal(v, mt.state_dict()[k], err_msg=k)
    assert len(buffers(traced.replay_source(x, y))) >= 4


def test_a_call_while_another_thread_replays_runs_eagerly_with_the_same_result() -> None:
    traced = tape.function(lambda x: tape.exp(x * 2.0).sum())
    x = RNG.standard_normal((16, 16))
    expected = traced(x).numpy()
    replay = next(iter(traced._cache.values()))
    assert replay.lock is not None
    results: list[Any] = []
    with replay.lock:  # as if another thread were inside the replay
        thread = threading.Thread(target=lambda: results.append(traced(x).numpy()))
        thread.start()
        thread.join()
    np.testing.assert_array_equal(results[0], expected)


def test_a_buffer_is_used_only_when_the_operands_have_their_traced_shapes() -> None:
    def f(x: Any) -> Any:
        y = x[x > 0] * 2.0  # as many elements as x has positive ones
        return tape.sum(y * y)

    traced = tape.function(f)
    x = np.array([1.0, 2.0, 3.0, -1.0])
    traced(x)
    fewer = np.array([1.0, -2.0, -3.0, -1.0])
    np.testing.assert_array_equal(traced(fewer).numpy(), f(fewer).numpy())
    np.testing.assert_array_equal(traced(x).numpy(), f(x).numpy())
    assert ".shape == (3,) else None)" in traced.replay_source(x)


def test_a_tensor_made_by_a_kernel_is_passed_on_without_rewrapping() -> None:
    seen: list[Any] = []

    @tape.kernel
    def keep(gs: list[Any]) -> None:
        seen.append(gs[0])

    w = tape.Variable(np.ones(3))

    @tape.function
    def f(x: Any) -> Any:
        with tape.Tape() as t:
            y = tape.sum(w * x)
        (g,) = t.gradient(y, [w])
        keep([g])
        return g

    x = np.arange(3.0)
    f(x)
    returned = f(x)
    assert seen[-1] is returned  # one tensor, as eager
    np.testing.assert_array_equal(returned.numpy(), x)
    assert "_T(" not in f.replay_source(x)


def test_only_operands_whose_shape_may_change_are_checked() -> None:
    @tape.kernel
    def same(a: Any) -> Any:
        return a  # a kernel's result: its shape may change between calls

    def f(x: Any) -> Any:
        h = tape.exp(x * 2.0)  # fixed shape
        return tape.sum(tape.constant(same(x)) * h + h)

    traced = tape.function(f)
    x = RNG.standard_normal((8, 4))
    traced(x)
    np.testing.assert_array_equal(traced(x).numpy(), f(tape.constant(x)).numpy())
    source = traced.replay_source(x)
    checks = [line for line in source.splitlines() if ".shape ==" in line]
    assert checks and all(line.count(".shape ==") == 1 for line in checks)
