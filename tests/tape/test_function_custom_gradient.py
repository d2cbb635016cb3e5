"""tape.function over `@tape.custom_gradient` functions and higher-order gradients: the
forward, the user's grad_fn and the differentiable backward sweep are traced kernel by kernel,
so every replay recomputes them from the current inputs, bit-identically to eager."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optim
import tape
from tape import Tape, Variable, nest

STEPS = 20
HERE = r"test_function_custom_gradient\.py:\d+"


# -- custom_gradient functions used by the steps below ----------------------------------------
@tape.custom_gradient
def clip_gradient_by_norm(x: Any, norm: Any) -> Any:
    """The identity, with its gradient's norm clipped to `norm`."""
    def grad(upstream: Any) -> Any:
        scale = tape.minimum(1.0, norm / tape.sqrt(tape.sum(upstream * upstream)))
        return upstream * scale, None

    return tape.identity(x), grad


@tape.custom_gradient
def log1pexp(x: Any) -> Any:
    """log(1 + e^x) with a gradient that stays finite where e^x overflows."""
    e = tape.exp(x)
    return tape.log1p(e), lambda upstream: upstream * (1 - 1 / (1 + e))


@tape.custom_gradient
def product_and_ratio(x: Any, y: Any) -> Any:
    """Two inputs, two outputs (a dict): x * y and x / (1 + y^2)."""
    d = 1 + y * y

    def grad(g_prod: Any, g_ratio: Any) -> Any:
        return g_prod * y + g_ratio / d, g_prod * x - g_ratio * x * 2 * y / (d * d)

    return {"prod": x * y, "ratio": x / d}, grad


# -- eager against traced ---------------------------------------------------------------------
Make = Callable[[], tuple[Callable[..., Any], list[Variable]]]


def _run(make: Make, traced: bool, batches: list[tuple[Any, ...]]) -> tuple[list[Any], Any]:
    step, variables = make()
    f = tape.function(step) if traced else step
    calls = batches if traced else [tuple(tape.constant(a) for a in b) for b in batches]
    returned = [[np.asarray(v) for v in nest.flatten(f(*b))] for b in calls]
    if traced:
        assert f.trace_count == 1
    return returned, [v.numpy() for v in variables]


def assert_same(make: Make, batches: list[tuple[Any, ...]]) -> None:
    """`make()`'s step, eager and traced over `batches`: the same returned values (losses,
    gradients) at every step and the same Variables at the end, bit for bit."""
    (eager, w_eager), (replay, w_replay) = _run(make, False, batches), _run(make, True, batches)
    for a, b in zip(eager, replay, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    for x, y in zip(w_eager, w_replay, strict=True):
        np.testing.assert_array_equal(x, y)


def _batches(*shapes: tuple[int, ...], scale: float = 1.0) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(7)
    return [tuple(rng.standard_normal(s) * scale for s in shapes) for _ in range(STEPS)]


def _regression(loss_of: Callable[[Any, Any, Any], Any], shape: tuple[int, ...] = (3, 2)
                ) -> Make:
    """A step minimizing `loss_of(w, x, y)` over one Variable with Adam; returns the loss and
    the gradient."""
    def make() -> tuple[Callable[..., Any], list[Variable]]:
        w = Variable(np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape), name="w")
        opt = optim.Adam(0.05)

        def step(x: Any, y: Any) -> Any:
            with Tape() as t:
                loss = loss_of(w, x, y)
            g = t.gradient(loss, w)
            opt.apply_gradients([(g, w)])
            return loss, g

        return step, [w]

    return make


def _input_gradient(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A step returning the gradient of `sum(f(x))` with respect to its argument `x`."""
    def step(x: Any) -> Any:
        with Tape() as t:
            t.watch(x)
            y = tape.sum(f(x))
        return t.gradient(y, x)

    return step


# -- supported forms --------------------------------------------------------------------------
def test_a_clipped_gradient_identity_replays_bit_identically() -> None:
    def loss(w: Any, x: Any, y: Any) -> Any:
        return tape.sum((clip_gradient_by_norm(x @ w, 0.5) - y) ** 2)

    assert_same(_regression(loss), _batches((4, 3), (4, 2), scale=3.0))


@pytest.mark.parametrize("shape", [(), (5,)])
def test_log1pexp_replays_bit_identically(shape: tuple[int, ...]) -> None:
    # shape (): the upstream gradient reaches grad_fn as a NumPy scalar, converted per call
    def make() -> tuple[Callable[..., Any], list[Variable]]:
        w = Variable(np.full(shape, 0.5))
        opt = optim.SGD(0.01)

        def step(x: Any) -> Any:
            with Tape() as t, np.errstate(over="ignore"):  # e^x overflows, its gradient not
                loss = tape.sum(log1pexp(w * x) * x)
            g = t.gradient(loss, w)
            opt.apply_gradients([(g, w)])
            return loss, g

        return step, [w]

    assert_same(make, _batches(shape, scale=30.0))


def test_a_custom_gradient_reading_variables_replays_bit_identically() -> None:
    def make() -> tuple[Callable[..., Any], list[Variable]]:
        w = Variable([[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]], name="w")
        b = Variable([0.5, -0.5], name="b")
        opt = optim.SGD(0.05, momentum=0.9)

        @tape.custom_gradient
        def dense(x: Any) -> Any:  # reads w and b: grad_fn gets them as `variables`
            def grad(upstream: Any, variables: Any = None) -> Any:
                return upstream @ tape.transpose(w), [tape.transpose(x) @ upstream,
                                                     tape.sum(upstream, axis=0)]
            return x @ w + b, grad

        def step(x: Any) -> Any:
            with Tape() as t:
                loss = tape.mean(tape.tanh(dense(x)) ** 2)
            grads = t.gradient(loss, [w, b])
            opt.apply_gradients(zip(grads, [w, b]))
            return loss, grads

        return step, [w, b]

    assert_same(make, _batches((4, 3)))


def test_several_inputs_and_outputs_replay_bit_identically() -> None:
    def make() -> tuple[Callable[..., Any], list[Variable]]:
        u, v = Variable([0.3, -0.2, 0.1]), Variable([1.0, 0.5, -0.5])
        opt = optim.Adam(0.01)

        def step(x: Any) -> Any:
            with Tape() as t:
                out = product_and_ratio(u * x, v)
                loss = tape.sum(out["prod"] ** 2) + tape.sum(tape.sin(out["ratio"]) * x)
            grads = t.gradient(loss, [u, v])
            opt.apply_gradients(zip(grads, [u, v]))
            return {"loss": loss, "ratio": out["ratio"]}, grads

        return step, [u, v]

    assert_same(make, _batches((3,)))


def test_an_output_without_gradient_gets_zeros_in_the_replay_too() -> None:
    def make() -> tuple[Callable[..., Any], list[Variable]]:
        u, v = Variable([0.3, -0.2]), Variable([1.0, 0.5])

        def step(x: Any) -> Any:
            with Tape() as t:
                loss = tape.sum(product_and_ratio(u * x, v)["ratio"])
            return t.gradient(loss, [u, v])

        return step, [u, v]

    assert_same(make, _batches((2,)))


def test_new_shapes_trace_again_and_each_trace_replays_its_own() -> None:
    w = Variable(np.ones((3, 2)))

    def step(x: Any) -> Any:
        with Tape() as t:
            loss = tape.sum(log1pexp(clip_gradient_by_norm(x @ w, 1.0)))
        return loss, t.gradient(loss, w)

    traced = tape.function(step)
    rng = np.random.default_rng(0)
    for rows in [4, 6, 4, 6, 1]:
        x = rng.standard_normal((rows, 3))
        for a, b in zip(step(x), traced(x), strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert traced.trace_count == 3


def test_the_replay_runs_grad_fn_on_the_current_values() -> None:
    # a grad_fn whose gradient is far from the true one: the replay must follow grad_fn
    @tape.custom_gradient
    def fake(x: Any) -> Any:
        return tape.exp(x), lambda upstream: upstream * x * 100.0

    step = _input_gradient(fake)

    traced = tape.function(step)
    for v in [1.0, 2.0, -3.0]:
        np.testing.assert_array_equal(traced(np.full(2, v)).numpy(), [100.0 * v] * 2)


# -- refused forms ----------------------------------------------------------------------------
@tape.custom_gradient
def converting(x: Any) -> Any:
    """A grad_fn that turns a traced gradient into a Python number: refused under trace."""
    def grad(upstream: Any) -> Any:
        return upstream / max(float(tape.sum(upstream * upstream)), 1.0)

    return tape.identity(x), grad


def _converting_step(w: Variable) -> Callable[[Any], Any]:
    def step(x: Any) -> Any:
        with Tape() as t:
            loss = tape.sum(converting(w * x) ** 2)
        return t.gradient(loss, w)

    return step


def test_a_grad_fn_converting_a_traced_value_is_refused_naming_the_line() -> None:
    step = tape.function(_converting_step(Variable([1.0, 2.0])))
    with pytest.raises(tape.TracingError,
                       match=rf"float\(\) of a traced value at .*{HERE} \(return upstream / "
                             rf"max\(float\(tape\.sum\(upstream \* upstream\)\), 1\.0\)\).*"
                             rf"fallback='eager'"):
        step(np.ones(2))


def test_a_grad_fn_reading_numpy_of_a_closure_value_is_refused() -> None:
    @tape.custom_gradient
    def square(x: Any) -> Any:
        return x * x, lambda upstream: upstream * 2 * x.numpy()

    step = _input_gradient(square)

    with pytest.raises(tape.TracingError, match=rf"numpy\(\) of a traced value at .*{HERE}"):
        tape.function(step)(np.ones(2))


def test_fallback_eager_runs_a_refused_grad_fn_eagerly_on_every_call() -> None:
    w_eager, w_traced = Variable([1.0, 2.0]), Variable([1.0, 2.0])
    eager, traced = _converting_step(w_eager), _converting_step(w_traced)
    f = tape.function(traced, fallback="eager")
    with pytest.warns(RuntimeWarning, match=rf"runs eagerly on every call: float\(\) .*{HERE}"):
        np.testing.assert_array_equal(f(np.ones(2)).numpy(), eager(np.ones(2)).numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for (x,) in _batches((2,))[:5]:
            np.testing.assert_array_equal(f(x).numpy(), eager(x).numpy())
    assert f.trace_count == 1


def test_a_python_value_read_by_grad_fn_is_a_constant_of_the_trace() -> None:
    # as in TensorFlow, Python state is read once, at trace time; validate= shows the change
    settings = {"scale": 2.0}

    @tape.custom_gradient
    def scaled(x: Any) -> Any:
        return tape.identity(x), lambda upstream: upstream * settings["scale"]

    step = _input_gradient(scaled)

    traced = tape.function(step)
    traced(np.ones(2))
    settings["scale"] = 3.0
    np.testing.assert_array_equal(traced(np.ones(2)).numpy(), [2.0, 2.0])
    checked = tape.function(step, validate=1)
    checked(np.ones(2))
    settings["scale"] = 4.0
    with pytest.raises(tape.TracingError, match="validate.*returned value"):
        checked(np.ones(2))


# -- higher-order gradients -------------------------------------------------------------------
def test_a_gradient_of_a_gradient_replays_bit_identically() -> None:
    def make() -> tuple[Callable[..., Any], list[Variable]]:
        w = Variable(1.5)

        def second(x: Any) -> Any:
            with Tape() as outer:
                with Tape() as inner:
                    y = w ** 3 * x + tape.sin(w * x)
                dy = inner.gradient(y, w)
            return dy, outer.gradient(dy, w)

        return second, [w]

    assert_same(make, _batches(()))


def test_a_gradient_penalty_step_replays_bit_identically() -> None:
    # WGAN-GP style: the input gradient's norm, from an inner tape, is part of the outer loss
    def loss(w: Any, x: Any, y: Any) -> Any:
        with Tape() as inner:
            inner.watch(x)
            out = tape.tanh(x @ w)
            total = tape.sum(out)
        gx = inner.gradient(total, x)
        penalty = tape.mean((tape.sqrt(tape.sum(gx * gx, axis=1) + 1e-12) - 1.0) ** 2)
        return tape.mean((out - y) ** 2) + 10.0 * penalty

    assert_same(_regression(loss), _batches((4, 3), (4, 2)))


def test_a_custom_gradient_differentiated_twice_replays_bit_identically() -> None:
    # grad_fn written with tape ops: its own ops are recorded by the outer tape and traced
    def loss(w: Any, x: Any, y: Any) -> Any:
        with Tape() as inner:
            inner.watch(x)
            out = tape.sum(log1pexp(x @ w) * y)
        gx = inner.gradient(out, x)
        return out + tape.sum(gx * gx)

    assert_same(_regression(loss), _batches((4, 3), (4, 2), scale=2.0))


def test_a_hessian_vector_product_replays_bit_identically() -> None:
    # forward over reverse: the accumulator's tangent rules are kernels of the trace
    def hvp(x: Any, v: Any) -> Any:
        return tape.hvp(lambda z: tape.sum(tape.sin(z) * z ** 2), x, v)

    assert_same(lambda: (hvp, []), _batches((3,), (3,)))


def test_forward_mode_replays_bit_identically() -> None:
    def directional(x: Any, v: Any) -> Any:
        with tape.ForwardAccumulator(x, v) as acc:
            y = tape.sin(x) * x
        return y, acc.jvp(y)

    assert_same(lambda: (directional, []), _batches((3,), (3,)))


def test_a_custom_gradient_forward_rule_replays_bit_identically() -> None:
    @tape.custom_gradient
    def square(x: Any) -> Any:
        return x * x, lambda upstream: upstream * 2 * x

    @square.defjvp
    def _(primals: Any, tangents: Any) -> Any:
        return 2 * primals[0] * tangents[0]

    def directional(x: Any, v: Any) -> Any:
        with tape.ForwardAccumulator(x, v) as acc:
            y = square(tape.sin(x))
        return y, acc.jvp(y)

    assert_same(lambda: (directional, []), _batches((3,), (3,)))


def test_a_tangent_converted_to_its_primals_dtype_is_read_on_every_replay() -> None:
    def jvp(x: Any, d: Any) -> Any:
        with tape.ForwardAccumulator(x, d) as acc:
            y = tape.sin(x) * 2.0
        return acc.jvp(y)

    traced = tape.function(jvp)
    x = np.array([0.5, 1.0])
    for d in (np.array([1, 2]), np.array([3, -1]), np.array([0, 5])):  # integer tangents
        np.testing.assert_array_equal(traced(x, d).numpy(), jvp(tape.constant(x), d).numpy())
    assert traced.trace_count == 1
