"""tape.function: replay is bit-identical to eager; signatures, guards, trace-time errors."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nn
import optim
import tape
from optim import schedules
from tape import Tape, Variable
from tape.trace import signature

STEPS = 20


def _run(make: Callable[[], tuple[Callable[..., Any], list[Any], Any]], compiled: bool,
         batches: list[tuple[Any, ...]], **options: Any) -> tuple[list[Any], list[Any], Any]:
    """Run `make()`'s step over `batches`; return the losses, the variables' values and the
    optimizer's state."""
    step, variables, opt = make()
    f = tape.function(step, **options) if compiled else step
    losses = [np.array(f(*b)) for b in batches]
    if compiled:
        assert f.trace_count == 1
    return losses, [v.numpy() for v in variables], opt.state_dict() if opt else {}


def assert_same(make: Callable[[], Any], batches: list[tuple[Any, ...]]) -> None:
    eager = _run(make, False, batches)
    replay = _run(make, True, batches)
    for a, b in zip(eager[0], replay[0], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(eager[1], replay[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert eager[2].keys() == replay[2].keys()
    for k in eager[2]:
        np.testing.assert_array_equal(eager[2][k], replay[2][k], err_msg=k)


def _batches(shape: tuple[int, ...], dtype: Any = np.float64, n: int = STEPS,
             labels: int | None = None) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(1)
    out: list[tuple[Any, ...]] = []
    for _ in range(n):
        x = rng.standard_normal(shape).astype(dtype)
        out.append((x,) if labels is None else (x, rng.integers(0, labels, shape[0])))
    return out


# -- primitives, first order ----------------------------------------------------------------
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add/multiply": lambda w, x: (w * x + x).sum(),
    "subtract/divide": lambda w, x: ((w - x) / (x * x + 1)).sum(),
    "power": lambda w, x: (w ** 2 + w ** 3).sum(),
    "exp/log": lambda w, x: tape.log(tape.exp(w * x) + 1).sum(),
    "sqrt/abs": lambda w, x: tape.sqrt(tape.abs(w * x) + 1).sum(),
    "tanh/sigmoid": lambda w, x: (tape.tanh(w) * tape.sigmoid(x * w)).sum(),
    "relu": lambda w, x: tape.relu(w * x).sum(),
    "maximum/minimum": lambda w, x: (tape.maximum(w, x) + tape.minimum(w, 0.5 * x)).sum(),
    "where on a comparison": lambda w, x: tape.where(w * x > 0, w, -w).sum(),
    "clip": lambda w, x: tape.clip(w * x, -0.5, 0.5).sum(),
    "mean/max/min": lambda w, x: tape.mean(w * x) + tape.max(w * x) - tape.min(w),
    "var/logsumexp": lambda w, x: tape.var(w * x) + tape.logsumexp(w * x),
    "matmul/transpose": lambda w, x: (tape.matmul(w.reshape(2, 3), x.reshape(3, 2))
                                      .T.sum()),
    "expand_dims/squeeze": lambda w, x: tape.squeeze(tape.expand_dims(w * x, 0), 0).sum(),
    "broadcast_to/concatenate/stack": lambda w, x: (
        tape.concatenate([w, x]).sum() + tape.stack([w, x]).sum()
        + tape.broadcast_to(w, (2, 6)).sum()),
    "indexing": lambda w, x: (w[1:4] * x[:3]).sum() + w[0],
    "numpy ufunc on tensors": lambda w, x: np.sum(np.exp(w) * x),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_replay_of_primitives_is_bit_identical(name: str) -> None:
    def make() -> Any:
        w = Variable(np.linspace(-1.0, 1.0, 6))
        opt = optim.SGD(0.1)

        def step(x: Any) -> Any:
            with Tape() as t:
                loss = OPS[name](w, x)
            opt.apply_gradients(zip(t.gradient(loss, [w]), [w]))
            return loss
        return step, [w], opt

    assert_same(make, _batches((6,), n=5))


# -- every optimizer ------------------------------------------------------------------------
OPTIMIZERS: dict[str, Callable[[], optim.Optimizer]] = {
    "sgd": lambda: optim.SGD(0.05),
    "momentum+nesterov": lambda: optim.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop+clipnorm": lambda: optim.RMSprop(0.01, clipnorm=0.5),
    "adam+inverse time schedule": lambda: optim.Adam(
        schedules.InverseTimeDecay(0.05, decay_steps=3, decay_rate=0.5)),
    "adam+amsgrad+global_clipnorm": lambda: optim.Adam(0.02, amsgrad=True, global_clipnorm=1.0),
    "adamw+cosine": lambda: optim.AdamW(schedules.CosineDecay(0.05, decay_steps=10),
                                        weight_decay=0.1),
}


def _model(dtype: Any, batchnorm: bool = True) -> nn.Sequential:
    layers: list[Any] = [nn.Dense(8, use_bias=not batchnorm, seed=0, dtype=dtype)]
    if batchnorm:
        layers.append(nn.BatchNorm(dtype=dtype))
    return nn.Sequential([*layers, nn.ReLU(), nn.Dense(4, seed=1, dtype=dtype)])


def _classifier_step(model: Any, opt: Any) -> Callable[..., Any]:
    def step(x: Any, y: Any) -> Any:
        with Tape() as t:
            loss = nn.softmax_cross_entropy(model(x, training=True), y)
        grads = t.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return step


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_replays_bit_identically(name: str) -> None:
    def make() -> Any:
        model, opt = _model(np.float64, batchnorm=False), OPTIMIZERS[name]()
        step = _classifier_step(model, opt)
        step(*_batches((6, 5), labels=4, n=1)[0])  # builds the model
        return step, model.variables, opt

    assert_same(make, _batches((6, 5), labels=4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_softmax_model_replays_bit_identically(dtype: Any) -> None:
    def make() -> Any:
        model, opt = _model(dtype), optim.Adam(0.01)
        step = _classifier_step(model, opt)
        step(*_batches((6, 5), dtype, labels=4, n=1)[0])
        return step, model.variables, opt  # includes the running statistics

    assert_same(make, _batches((6, 5), dtype, labels=4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layernorm_model_replays_bit_identically(dtype: Any) -> None:
    def make() -> Any:
        model = nn.Sequential([nn.Dense(8, seed=0, dtype=dtype), nn.LayerNorm(dtype=dtype),
                               nn.ReLU(), nn.Dense(4, seed=1, dtype=dtype)])
        opt = optim.Adam(0.01)
        step = _classifier_step(model, opt)
        step(*_batches((6, 5), dtype, labels=4, n=1)[0])
        return step, model.variables, opt

    assert_same(make, _batches((6, 5), dtype, labels=4))


def test_population_with_per_member_learning_rates_replays_bit_identically() -> None:
    def make() -> Any:
        pop = nn.Population(lambda: _model(np.float64), size=3, seed=0)
        opt = optim.Adam(np.array([0.01, 0.02, 0.05]), per_member_nonfinite=True)

        def step(x: Any, y: Any) -> Any:
            with Tape() as t:
                out = pop(x, training=True)
                losses = pop.member_losses(nn.softmax_cross_entropy, out, y, shared=True)
                total = tape.sum(losses)
            grads = t.gradient(total, pop.trainable_variables)
            opt.apply_gradients(zip(grads, pop.trainable_variables), active=np.ones(3, bool))
            return losses
        step(*_batches((6, 5), labels=4, n=1)[0])
        return step, pop.variables, opt

    assert_same(make, _batches((6, 5), labels=4))


# -- per-call state: schedules, hyperparameters, iterations, the non-finite guard -------------
def _quadratic(opt: Any) -> tuple[Variable, Any]:
    w = Variable([1.0, -2.0])

    @tape.function
    def step(x: Any) -> Any:
        with Tape() as t:
            loss = tape.sum((w - x) ** 2)
        opt.apply_gradients(zip(t.gradient(loss, [w]), [w]))
        return loss
    return w, step


def test_hyperparameters_and_iterations_are_read_at_every_call() -> None:
    opt = optim.SGD(0.1)
    w, step = _quadratic(opt)
    x = np.zeros(2)
    step(x)
    step(x)
    opt.set_hyperparameters(learning_rate=0.5)  # takes effect at the next call
    step(x)
    assert step.trace_count == 1 and opt.iterations == 3
    np.testing.assert_array_equal(w.numpy(), np.array([1.0, -2.0]) * 0.8 * 0.8 * 0.0)


def test_nonfinite_gradient_updates_nothing_and_raises_on_replay() -> None:
    opt = optim.Adam(0.1)
    w, step = _quadratic(opt)
    step(np.zeros(2))
    before, state = w.numpy(), opt.state_dict()
    with pytest.raises(FloatingPointError, match="non-finite"):
        step(np.array([np.nan, 0.0]))
    assert step.trace_count == 1
    np.testing.assert_array_equal(w.numpy(), before)
    assert opt.iterations == state["iterations"]


# -- signatures and guards ------------------------------------------------------------------
def test_new_shapes_dtypes_and_python_values_retrace_and_are_cached() -> None:
    calls = []

    @tape.function
    def f(x: Any, scale: float) -> Any:
        calls.append(1)  # a Python side effect: at trace time only
        return x * scale

    f(np.ones(3), 2.0)
    f(np.zeros(3), 2.0)
    assert f.trace_count == 1 and len(calls) == 1
    np.testing.assert_array_equal(f(np.arange(3.0), 2.0).numpy(), [0.0, 2.0, 4.0])
    f(np.ones(4), 2.0)
    f(np.ones(3, np.float32), 2.0)
    f(np.ones(3), 3.0)
    assert f.trace_count == 4
    np.testing.assert_array_equal(f(np.ones(3), 3.0).numpy(), [3.0, 3.0, 3.0])
    assert f.trace_count == 4


def test_excessive_retracing_warns_once_naming_the_argument() -> None:
    @tape.function
    def f(x: Any, n: int) -> Any:
        return x * n

    with pytest.warns(RuntimeWarning, match=r"traced 6 times.*differ in n\b"):
        for n in range(6):
            f(np.ones(2), n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(np.ones(2), 7)


def test_a_replaced_variable_array_retraces() -> None:
    w = Variable([1.0, 2.0])
    f = tape.function(lambda x: w * x)
    f(np.ones(2))
    w._value = np.array([5.0, 6.0])  # not written in place: the trace read the old array
    np.testing.assert_array_equal(f(np.ones(2)).numpy(), [5.0, 6.0])
    assert f.trace_count == 2


def test_the_same_array_passed_twice_has_its_own_signature() -> None:
    f = tape.function(lambda a, b: a - b)
    x = np.ones(2)
    f(x, x)
    np.testing.assert_array_equal(f(np.ones(2), np.zeros(2)).numpy(), [1.0, 1.0])
    assert f.trace_count == 2


def test_returned_values_are_fresh_arrays() -> None:
    f = tape.function(lambda x: x * 2)
    a = f(np.ones(2))
    b = f(np.full(2, 3.0))
    np.testing.assert_array_equal(a.numpy(), [2.0, 2.0])
    assert not np.shares_memory(a.numpy(), b.numpy())


# -- what cannot be replayed ----------------------------------------------------------------
@pytest.mark.parametrize("convert, what", [
    (lambda y: float(y.sum()), r"float\(\)"),
    (lambda y: bool(y.sum() > 0), r"bool\(\)"),
    (lambda y: y.numpy(), r"numpy\(\)"),
    (lambda y: np.asarray(y) + 1, r"np.asarray\(\)"),
    (lambda y: y.sum().item(), r"item\(\)"),
    (lambda y: y.tolist(), r"tolist\(\)"),
    (lambda y: f"{y.sum():.3f}", r"format\(\)"),
])
def test_converting_a_traced_value_raises_naming_the_line(convert: Any, what: str) -> None:
    def f(x: Any) -> Any:
        return convert(x * 2)

    with pytest.raises(tape.TracingError, match=what + r".*test_function.py:\d+.*tape.where"):
        tape.function(f)(np.ones(2))


def test_an_if_on_a_traced_value_raises() -> None:
    @tape.function
    def f(x: Any) -> Any:
        if tape.sum(x) > 0:
            return x
        return -x

    with pytest.raises(tape.TracingError, match=r"if tape.sum\(x\) > 0"):
        f(np.ones(2))


def test_fallback_eager_warns_once_and_runs_eagerly() -> None:
    def f(x: Any) -> Any:
        return x if float(tape.sum(x)) > 0 else -x

    g = tape.function(f, fallback="eager")
    with pytest.warns(RuntimeWarning, match=r"runs eagerly on every call: float\(\)"):
        np.testing.assert_array_equal(g(np.ones(2)).numpy(), [1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(g(-np.ones(2)).numpy(), [1.0, 1.0])
    assert g.trace_count == 1


def test_a_call_under_a_recording_tape_runs_eagerly() -> None:
    w = Variable(3.0)
    f = tape.function(lambda: w * w)
    with Tape() as t:
        y = f()
    assert float(t.gradient(y, w)) == 6.0 and f.trace_count == 0


def test_validate_compares_eager_and_replay() -> None:
    opt = optim.Adam(0.1)
    w, step = _quadratic(opt)
    checked = tape.function(step.__wrapped__, validate=3)
    for _ in range(5):
        checked(np.ones(2))
    rng = np.random.default_rng(0)
    noisy = tape.function(lambda x: x + rng.standard_normal(2), validate=1)  # frozen draw
    noisy(np.ones(2))
    with pytest.raises(tape.TracingError, match="validate.*returned value"):
        noisy(np.ones(2))


def test_a_numpy_view_of_a_traced_array_is_refused() -> None:
    bn = nn.BatchNorm()

    def f(x: Any) -> Any:
        y, mean, var = nn.batch_norm_with_stats(x)
        return y + mean[:1]  # a NumPy slice of a residual

    with pytest.raises(tape.TracingError, match="NumPy view"):
        tape.function(f)(np.ones((4, 2)))
    assert bn.momentum > 0


_LEAVES = [np.zeros(3), np.zeros((2, 2), np.float32), np.float64(2.0), 1, 1.5, True, "s", None,
           tape.constant([1.0, 2.0]), tape.Variable(1.0), [np.zeros(1)], (1, 2), {"k": 1},
           object()]


@given(st.lists(st.integers(0, len(_LEAVES) - 1), max_size=5))
def test_the_fast_call_key_is_the_general_one(picks: list[int]) -> None:
    args = tuple(_LEAVES[i] for i in picks)  # repeated picks: the same array twice
    fast, leaves = signature.call_key(args, {})
    general, general_leaves = signature.general_key(args, {})
    assert fast == general
    assert len(leaves) == len(general_leaves)
    for a, b in zip(leaves, general_leaves):  # NumPy scalars are made arrays afresh
        assert a is b or (isinstance(a, np.ndarray) and a.shape == b.shape == () and a == b)


def test_a_call_without_arguments_has_the_general_key() -> None:
    assert signature.call_key((), {}) == signature.general_key((), {})
    traced = tape.function(lambda: tape.constant(1.0) * 2.0)
    traced()
    assert float(traced()) == 2.0 and traced.trace_count == 1
    assert "def replay():" in traced.replay_source()
