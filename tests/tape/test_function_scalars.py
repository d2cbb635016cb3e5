"""tape.function scalar runs: 0-d float64 values of known kernels replayed as Python floats,
bit for bit as NumPy (special values, warnings and np.errstate included); everything else keeps
its NumPy kernel."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optim
import tape
from tape import Tape, Tensor, Variable
from tape.trace import scalars

SPECIAL = [0.0, -0.0, 1.0, -1.5, math.inf, -math.inf, math.nan, 5e-324, -5e-324,
           2.2250738585072014e-308, 1e-160, 1e154, 1e308, -1e308, 1.7976931348623157e308,
           3.0, 0.5, 1 + 2 ** -52, 134217729.0]
FLOATS = st.one_of(st.sampled_from(SPECIAL), st.floats(width=64))


def _with_grads(f: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def step(a: Any, b: Any) -> Any:
        with Tape() as t:
            t.watch([a, b])
            y = f(a, b)
        return (y, *t.gradient(y, [a, b], unconnected_gradients="zero"))
    return step


# Each case exercises a table entry: its forward and its gradient rules (the power rules by
# branch of the exponent, the squares as NumPy does them: an array base is np.square, a
# NumPy scalar base is C pow).
CASES: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
    "negative": lambda a, b: -a * b,
    "power 2 of an array": lambda a, b: a ** 2 - b,
    "power 2 of a NumPy scalar": lambda a, b: (a * b) ** 2,
    "power 3": lambda a, b: a ** 3 + (a * b) ** 3,
    "power 0 and 1": lambda a, b: a ** 0 + b ** 1,
    "power 0.5 (sqrt)": lambda a, b: a ** 0.5 * b,
    "square": lambda a, b: tape.square(a) + tape.square(a * b),
    "sqrt": lambda a, b: tape.sqrt(a) / b,
    "cotangent sums": lambda a, b: a * a + a * b - b / a,
}
TRACED = {name: tape.function(_with_grads(f)) for name, f in CASES.items()}


def _bits(x: Any) -> tuple[Any, ...]:
    """What must be the same: the types and bytes (NaN payloads and signed zeros)."""
    if isinstance(x, (tuple, list)):
        return tuple(_bits(v) for v in x)
    v = x._value if isinstance(x, Tensor) else x
    return (type(x), type(v), np.asarray(v).dtype, np.asarray(v).tobytes())


def _run(f: Callable[..., Any], *args: Any) -> tuple[Any, list[tuple[Any, str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = f(*args)
    return out, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=60, deadline=None)
@given(a=FLOATS, b=FLOATS)
def test_scalar_runs_are_bit_identical_to_numpy_with_the_same_warnings(
        name: str, a: float, b: float) -> None:
    x, y = np.array(a), np.array(b)
    eager, eager_warnings = _run(_with_grads(CASES[name]), tape.constant(x), tape.constant(y))
    TRACED[name](np.array(1.25), np.array(-0.75))  # traced once, on ordinary values
    traced, traced_warnings = _run(TRACED[name], x, y)
    assert _bits(traced) == _bits(eager)
    assert traced_warnings == eager_warnings
    assert TRACED[name].trace_count == 1


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_runs_its_arithmetic_as_python_floats(name: str) -> None:
    x, y = np.array(1.25), np.array(2.5)
    TRACED[name](x, y)
    source = TRACED[name].replay_source(x, y)
    assert "raise _SlowPath" in source and "= float(" in source


@pytest.mark.parametrize("a, b", [(1e308, 10.0), (0.0, 0.0), (1e-200, 1e-200), (-1.0, 0.0)])
def test_np_errstate_raise_applies_to_a_replay_as_to_eager(a: float, b: float) -> None:
    f = _with_grads(lambda a, b: a * b + a / b + tape.sqrt(a))
    traced = tape.function(f)
    traced(np.array(2.0), np.array(3.0))
    with np.errstate(all="raise"):
        with pytest.raises(FloatingPointError) as eager:
            f(tape.constant(a), tape.constant(b))
        with pytest.raises(FloatingPointError) as replayed:
            traced(np.array(a), np.array(b))
    assert str(replayed.value) == str(eager.value)
    assert traced.trace_count == 1


def test_each_pow_mapping_is_numpy_bit_for_bit() -> None:
    """The two squares differ from each other (C pow is not x * x everywhere), each equals
    its NumPy kernel; found over many values, so checked here on a fixed sample."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(20000) * 10.0 ** rng.integers(-160, 160, 20000),
                             1 + rng.integers(0, 2 ** 26, 20000) * 2.0 ** -26])
    with np.errstate(all="ignore"):
        for v in values.tolist():
            assert np.float64(v * v).tobytes() == np.float64(np.array(v) ** 2).tobytes()
            try:
                square = v ** 2.0
            except OverflowError:  # where NumPy overflows: the replay takes NumPy's kernel
                assert np.isinf(np.float64(v) ** 2)
            else:
                assert np.float64(square).tobytes() == np.float64(np.float64(v) ** 2).tobytes()
            assert math.sqrt(abs(v)) == np.sqrt(np.array(abs(v)))
        assert any(v * v != np.float64(v) ** 2 for v in values.tolist())


def _seed(traced: bool) -> tuple[Callable[[], Any], Variable, optim.Adam]:
    x = np.array([1.0, -10.0, 25.0])
    w, opt = Variable(0.0), optim.Adam(0.1)

    def step() -> Any:
        with Tape() as t:
            cost = x[0] * w**2 + x[1] * w + x[2]
        opt.apply_gradients(zip(t.gradient(cost, [w]), [w]))
        return cost

    return (tape.function(step) if traced else step), w, opt


def test_the_seed_loop_traced_matches_eager_for_50_steps() -> None:
    (eager, we, oe), (traced, wt, ot) = _seed(False), _seed(True)
    for _ in range(50):
        le, lt = eager(), traced()
        assert _bits(lt) == _bits(le)
        np.testing.assert_array_equal(wt.numpy(), we.numpy())
    se, st_ = oe.state_dict(), ot.state_dict()
    assert se.keys() == st_.keys()
    for k in se:
        np.testing.assert_array_equal(st_[k], se[k], err_msg=k)
    assert traced.trace_count == 1 and ot.iterations == 50
    assert "raise _SlowPath" in traced.replay_source()


def test_a_program_mixing_arrays_and_scalars_matches_eager() -> None:
    def make() -> tuple[Callable[..., Any], list[Variable], optim.Adam]:
        w, v = Variable(0.5), Variable(np.linspace(-1.0, 1.0, 5))
        opt = optim.Adam(0.05)

        def step(x: Any) -> Any:
            with Tape() as t:
                r = tape.sum((x * w - v) ** 2)  # an array kernel gives a 0-d value
                loss = r / 5.0 + w * w * 0.1 + tape.exp(w) * 0.01  # exp keeps its kernel
            opt.apply_gradients(zip(t.gradient(loss, [w, v]), [w, v]))
            return loss, r * 2.0
        return step, [w, v], opt

    (fe, ve, oe), (ft, vt, ot) = make(), make()
    ft = tape.function(ft)
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.standard_normal(5)
        assert _bits(ft(x)) == _bits(fe(x))
        for a, b in zip(ve, vt):
            np.testing.assert_array_equal(b.numpy(), a.numpy())
    assert ft.trace_count == 1
    se, st_ = oe.state_dict(), ot.state_dict()
    for k in se:
        np.testing.assert_array_equal(st_[k], se[k], err_msg=k)
    source = ft.replay_source(x)
    assert "raise _SlowPath" in source and "float(" in source


def test_float32_scalars_keep_their_numpy_kernels() -> None:
    w = Variable(np.float32(1.5))
    traced = tape.function(_with_grads(lambda a, b: a * b + a))
    x = np.float32(2.0)
    out = traced(w, tape.constant(x))
    out = traced(w, tape.constant(x))
    eager = _with_grads(lambda a, b: a * b + a)(w, tape.constant(x))
    assert _bits(out) == _bits(eager) and out[0].dtype == np.float32
    assert "_SlowPath" not in traced.replay_source(w, tape.constant(x))


def test_a_kernel_outside_the_table_gets_the_numpy_value_it_got_when_traced() -> None:
    seen: list[Any] = []

    @tape.kernel
    def look(g: Any, h: Any) -> Any:
        seen.append((type(g), type(g._value), type(h)))
        return h * 3.0

    def f(a: Any) -> Any:
        with Tape() as t:
            t.watch(a)
            y = a * a * 2.0
        (g,) = t.gradient(y, [a])
        return look(g, (y * 1.5)._value) + g

    traced = tape.function(f)
    x = np.array(3.0)
    first = traced(x)
    second = traced(x)
    assert _bits(second) == _bits(first) == _bits(f(tape.constant(x)))
    assert seen[0] == seen[1] == (Tensor, np.ndarray, np.float64)
    source = traced.replay_source(x)
    assert "_f64(" in source and "_T(_a0(" in source


def test_a_kernel_declaring_floats_gets_python_floats() -> None:
    seen: list[Any] = []

    @tape.kernel(floats=True)
    def look(gs: list[Any]) -> Any:
        seen.append([type(g) for g in gs])
        return [float(np.asarray(g)) * 2.0 for g in gs]

    def f(a: Any) -> Any:
        with Tape() as t:
            t.watch(a)
            y = a * a
        return look(t.gradient(y, [a]))

    traced = tape.function(f)
    x = np.array(3.0)
    assert traced(x) == traced(x) == [12.0]
    assert seen == [[Tensor], [float]]


def test_an_array_changed_in_place_by_a_kernel_is_read_back() -> None:
    @tape.kernel
    def bump(g: Any) -> None:
        g._value[...] += 1.0  # in place, as a kernel may

    def f(a: Any) -> Any:
        with Tape() as t:
            t.watch(a)
            y = a * a
        (g,) = t.gradient(y, [a])
        bump(g)
        return g * 2.0  # reads the bumped array

    traced = tape.function(f)
    x = np.array(3.0)
    traced(x)
    assert _bits(traced(x)) == _bits(f(tape.constant(x))) and float(traced(x)) == 14.0


def test_a_value_whose_shape_may_change_keeps_its_kernel() -> None:
    size = [()]

    @tape.kernel
    def make(a: Any) -> Any:
        return np.full(size[0], 2.0) * a

    traced = tape.function(lambda a: tape.constant(make(a)) * 3.0 + 1.0)
    x = np.array(1.5)
    np.testing.assert_array_equal(traced(x).numpy(), 10.0)
    size[0] = (2,)
    np.testing.assert_array_equal(traced(x).numpy(), [10.0, 10.0])
    assert traced.trace_count == 1


def test_a_kernel_under_np_errstate_in_the_function_keeps_its_kernel() -> None:
    def f(a: Any, b: Any) -> Any:
        with np.errstate(over="ignore"):
            return a * b

    traced = tape.function(f)
    x = np.array(1e308)
    traced(x, x)
    out, caught = _run(traced, x, x)
    assert np.isinf(out.numpy()) and caught == []
    assert "_SlowPath" not in traced.replay_source(x, x)


def test_the_table_names_its_kernels() -> None:
    assert scalars.is_number(3) and not scalars.is_number(2 ** 60)
    assert not scalars.is_number(np.zeros((), np.float32))
    assert all(callable(k) for k in scalars.TABLE)


def test_a_variable_written_in_the_function_is_read_after_the_write() -> None:
    def make() -> tuple[Callable[[Any], Any], Variable]:
        w = Variable(2.0)

        def f(a: Any) -> Any:
            y = w * a
            w.assign_add(y)  # in place: the next read sees it
            return w * 3.0 + y
        return f, w

    (fe, we), (ft, wt) = make(), make()
    ft = tape.function(ft)
    for v in (0.5, -1.25, 3.0):
        assert _bits(ft(np.array(v))) == _bits(fe(tape.constant(v)))
        np.testing.assert_array_equal(wt.numpy(), we.numpy())
    assert ft.trace_count == 1
    assert ft.replay_source(np.array(1.0)).count("float(c0)") == 4  # 2 runs, 2 paths each


def test_an_unhashable_callable_can_be_a_kernel() -> None:
    class Scale:
        __hash__ = None  # type: ignore[assignment]

        def __eq__(self, other: object) -> bool:
            return True  # equal to every kernel of the engine: never mistaken for one

        def __call__(self, x: Any) -> Any:
            return x * 3.0

    scale = tape.kernel(Scale())
    traced = tape.function(lambda x: tape.constant(scale(x * 2.0)) + 1.0)
    x = np.array(1.5)
    assert float(traced(x)) == float(traced(x)) == 10.0 and traced.trace_count == 1


def test_a_lone_operator_on_numpy_scalars_keeps_numpy() -> None:
    traced = tape.function(lambda x: tape.sum(x) * 2.0)  # np.float64 * float: as fast
    x = np.arange(4.0)
    traced(x)
    assert _bits(traced(x)) == _bits(tape.sum(tape.constant(x)) * 2.0)
    assert "_SlowPath" not in traced.replay_source(x)
    twice = tape.function(lambda x: tape.sum(x) * 2.0 + 1.0)  # two: floats
    twice(x)
    assert _bits(twice(x)) == _bits(tape.sum(tape.constant(x)) * 2.0 + 1.0)
    assert "_SlowPath" in twice.replay_source(x)


def test_a_floats_kernel_gets_keyword_arguments_as_floats_too() -> None:
    seen: list[Any] = []

    @tape.kernel(floats=True)
    def look(a: Any, *, scale: Any, rows: Any) -> None:
        seen.append((type(a), type(scale), type(rows)))

    def f(x: Any, m: Any) -> Any:
        y = x * 2.0 + 1.0
        look(y, scale=y * 3.0, rows=m * 2.0)
        return y

    traced = tape.function(f)
    x, m = np.array(1.5), np.ones((2, 2))
    traced(x, m)
    assert float(traced(x, m)) == 4.0
    assert seen[0] == (Tensor, Tensor, Tensor) and seen[1] == (float, float, Tensor)
