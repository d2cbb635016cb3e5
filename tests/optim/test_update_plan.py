"""Update plans' own paths (multi-tensor Adam over flat slot arrays, Adam on Python floats for
0-d float64 variables, eager `apply_gradients` through the cached plan) against the
optimizer's per-variable code (`Optimizer._apply`): the same bits, the same refusals."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optim
import tape
from optim import schedules

Step = Callable[[list[Any]], Any]


def make_vars(dtypes: list[Any], seed: int = 0) -> list[tape.Variable]:
    rng = np.random.default_rng(seed)
    shapes = [(5, 3), (3,), (), (2, 2, 2), (7,)]
    return [tape.Variable(rng.standard_normal(shapes[i % len(shapes)]).astype(dt),
                          name=f"v{i}") for i, dt in enumerate(dtypes)]


def per_variable(opt: optim.Optimizer, vs: list[tape.Variable]) -> Step:
    """The optimizer's own per-variable code, as `apply_gradients` runs it off the plans."""
    return lambda grads: opt._apply(zip(grads, vs, strict=True), None)


def planned(opt: optim.Optimizer, vs: list[tape.Variable]) -> Step:
    plan = opt.update_plan(vs)
    return lambda grads: plan(grads)


def eager(opt: optim.Optimizer, vs: list[tape.Variable]) -> Step:
    return lambda grads: opt.apply_gradients(zip(grads, vs, strict=True))


def assert_same(a: tuple[list[tape.Variable], optim.Optimizer],
                b: tuple[list[tape.Variable], optim.Optimizer]) -> None:
    for x, y in zip(a[0], b[0], strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.name)
        assert x.dtype == y.dtype
    sa, sb = a[1].state_dict(), b[1].state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def gradients(vs: list[tape.Variable], rng: np.random.Generator, scale: float = 1.0
              ) -> list[np.ndarray]:
    return [(scale * rng.standard_normal(v.shape)).astype(v.dtype) for v in vs]


def run_pair(make_opt: Callable[[], optim.Optimizer], dtypes: list[Any], way: Callable,
             steps: int = 24, between: Callable[[int, optim.Optimizer], None] | None = None,
             scale: float = 1.0) -> None:
    ref = (make_vars(dtypes), make_opt())
    new = (make_vars(dtypes), make_opt())
    ref_step, new_step = per_variable(ref[1], ref[0]), way(new[1], new[0])
    rng = np.random.default_rng(42)
    for i in range(steps):
        if between is not None:
            between(i, ref[1])
            between(i, new[1])
        grads = gradients(ref[0], rng, scale)
        assert ref_step(grads) == new_step([g.copy() for g in grads])
        assert_same(ref, new)
    assert new[1].iterations == steps


WAYS = {"plan": planned, "eager": eager}


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize("dtypes", [[np.float32] * 5, [np.float64] * 5,
                                    [np.float32, np.float64, np.float16, np.float64,
                                     np.float32]], ids=["float32", "float64", "mixed"])
def test_flat_adam_steps_bit_identically_to_the_per_variable_code(dtypes: list[Any],
                                                                  way: str) -> None:
    run_pair(lambda: optim.Adam(0.01), dtypes, WAYS[way])


@pytest.mark.parametrize("way", sorted(WAYS))
def test_flat_adam_with_a_schedule_and_changed_hyperparameters(way: str) -> None:
    def change(i: int, opt: optim.Optimizer) -> None:
        if i == 7:
            opt.beta_1, opt.epsilon = 0.5, 1e-4
        if i == 15:
            opt.beta_2 = 0.9

    run_pair(lambda: optim.Adam(schedules.ExponentialDecay(0.05, 3, 0.5)),
             [np.float32, np.float64, np.float32], WAYS[way], between=change)


@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_large_group_reads_its_gradients_in_place_with_the_same_bits(way: str) -> None:
    from optim.update_plan import _COPY_BELOW

    def make() -> tuple[list[tape.Variable], optim.Optimizer]:
        rng = np.random.default_rng(1)
        return ([tape.Variable(rng.standard_normal(s).astype(np.float32), name=f"v{i}")
                 for i, s in enumerate([(_COPY_BELOW // 64, 64), (64,), (3, 5)])],
                optim.Adam(0.01, skip_nonfinite=True))

    ref, new = make(), make()
    step = WAYS[way](new[1], new[0])
    rng = np.random.default_rng(2)
    for i in range(6):
        grads = gradients(ref[0], rng)
        if i == 3:
            grads[0][7, 7] = np.nan
        with pytest.warns() if i == 3 else warnings.catch_warnings():
            assert per_variable(ref[1], ref[0])(grads) == step([g.copy() for g in grads])
        assert_same(ref, new)
    views = new[1].update_plan(new[0]).gradient_views()
    for view, g in zip(views, gradients(ref[0], rng)):
        view[...] = g
    assert per_variable(ref[1], ref[0])([v.copy() for v in views]) == step(views)
    assert_same(ref, new)


def test_flat_adam_after_load_state_dict_and_across_plans_sharing_a_variable() -> None:
    dtypes = [np.float32, np.float64, np.float32]
    ref, new = (make_vars(dtypes), optim.Adam(0.02)), (make_vars(dtypes), optim.Adam(0.02))
    rng = np.random.default_rng(3)
    for i in range(24):
        grads = gradients(ref[0], rng)
        if i == 8:  # the state replaced: new slot arrays, which the plan copies in
            for _, opt in (ref, new):
                saved = opt.state_dict()
                saved["slots/0/m"] = saved["slots/0/m"] * 0.5
                opt.load_state_dict(saved)
        if i % 3 == 2:  # another plan over part of the variables takes the slots over
            per_variable(ref[1], ref[0][:2])(grads[:2])
            new[1].update_plan(new[0][:2])(grads[:2])
        else:
            per_variable(ref[1], ref[0])(grads)
            new[1].update_plan(new[0])(grads)
        assert_same(ref, new)


@pytest.mark.parametrize("dtype,small_eps", [(np.float32, 1e-40), (np.float64, 1e-300)])
@pytest.mark.parametrize("way", sorted(WAYS))
def test_flat_adam_around_steps_computed_aside(dtype: Any, small_eps: float, way: str) -> None:
    # With such an epsilon no step can be proved finite (the proof divides by it), yet each
    # is: it is computed aside, checked and committed, and the slots are new arrays.
    def change(i: int, opt: optim.Optimizer) -> None:
        opt.epsilon = small_eps if i in (5, 6, 12) else 1e-7

    run_pair(lambda: optim.Adam(0.01), [dtype] * 4, WAYS[way], between=change)


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e30])  # 1e30: its square overflows float32
def test_nonfinite_gradients_and_steps_are_refused_as_in_the_per_variable_code(
        bad: float, way: str, skip: bool) -> None:
    dtypes = [np.float32, np.float32, np.float64]
    ref, new = (make_vars(dtypes), optim.Adam(0.1, skip_nonfinite=skip)), (
        make_vars(dtypes), optim.Adam(0.1, skip_nonfinite=skip))
    ref_step, new_step = per_variable(ref[1], ref[0]), WAYS[way](new[1], new[0])
    rng = np.random.default_rng(5)
    for i in range(6):
        grads = gradients(ref[0], rng)
        if i == 3:
            grads[1][1] = bad
        outcomes = []
        for step, pair in ((ref_step, ref), (new_step, new)):
            before = [v.numpy() for v in pair[0]]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    outcomes.append((step([g.copy() for g in grads]), None))
                except FloatingPointError as e:
                    outcomes.append((None, str(e)))
            outcomes[-1] += ([str(w.message) for w in caught],)
            if outcomes[-1][0] is not True:  # refused: nothing changed
                for a, v in zip(before, pair[0]):
                    np.testing.assert_array_equal(a, v.numpy())
        assert outcomes[0] == outcomes[1]
        assert_same(ref, new)
        if i == 3:
            assert outcomes[1][0] is not True
            assert "no variable was updated" in (outcomes[1][1] or "") or outcomes[1][2]


def test_gradient_views_skip_the_copy_and_give_the_same_bits() -> None:
    dtypes = [np.float32, np.float64, np.float32]
    ref, new = (make_vars(dtypes), optim.Adam(0.01)), (make_vars(dtypes), optim.Adam(0.01))
    plan = new[1].update_plan(new[0])
    views = plan.gradient_views()
    assert [v.shape for v in views] == [v.shape for v in new[0]]
    assert [v.dtype for v in views] == [v.dtype for v in new[0]]
    rng = np.random.default_rng(7)
    for _ in range(10):
        grads = gradients(ref[0], rng)
        for view, g in zip(views, grads):
            view[...] = g
        assert per_variable(ref[1], ref[0])(grads) == plan(views) is True
        assert_same(ref, new)


def test_gradient_views_need_floating_point_variables() -> None:
    plan = optim.Adam(0.1).update_plan([tape.Variable([1, 2])])
    with pytest.raises(TypeError, match="must all be floating-point tape.Variables"):
        plan.gradient_views()


def test_versions_advance_once_per_step_on_every_path() -> None:
    vs = [tape.Variable(0.5), tape.Variable(np.ones(3)), tape.Variable(np.ones(3, np.float16))]
    opt = optim.Adam(0.1)
    for v in vs:
        for _ in range(3):
            opt.apply_gradients([(np.ones(v.shape, v.dtype), v)])
        assert v._version == 3


def test_the_scalar_path_takes_gradients_in_every_form() -> None:
    forms = [0.25, np.float64(0.25), np.array(0.25), tape.constant(0.25), np.float32(0.25),
             np.array(0.25, np.float32), 1]
    for form in forms:
        new = (make_vars([np.float64] * 3)[2:], optim.Adam(0.1))
        ref = (make_vars([np.float64] * 3)[2:], optim.Adam(0.1))
        for _ in range(3):
            per_variable(ref[1], ref[0])([np.float64(form)])
            plan = new[1].update_plan(new[0])
            assert plan._scalar and plan([form]) is True
        assert_same(ref, new)


def test_the_scalar_path_raises_and_refuses_as_apply_gradients() -> None:
    w, opt = tape.Variable(1.0), optim.Adam(0.1)
    plan = opt.update_plan([w])
    plan([0.5])
    with pytest.raises(ValueError, match=r"gradient for Variable .* has shape \(2,\)"):
        plan([np.ones(2)])
    with pytest.raises(TypeError, match="cannot be cast"):
        plan([np.array(1j)])
    with pytest.raises(FloatingPointError, match="non-finite .* gradients for variables"):
        plan([float("nan")])
    with pytest.raises(FloatingPointError, match="would make .* non-finite"):
        plan([1e300])  # (r2 g)^2 overflows v
    assert opt.iterations == 1 and float(w) < 1.0


def test_a_refused_step_over_several_scalars_changes_nothing() -> None:
    ws = [tape.Variable(1.0), tape.Variable(2.0)]
    opt = optim.Adam(0.1)
    plan = opt.update_plan(ws)
    plan([0.5, 0.5])
    before, state, versions = [float(w) for w in ws], opt.state_dict(), [w._version
                                                                       for w in ws]
    with pytest.raises(FloatingPointError, match="would make 'Variable_.*' float64"):
        plan([0.5, 1e300])
    assert [float(w) for w in ws] == before and [w._version for w in ws] == versions
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, state[k])


finite = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1e-300, 1e200, 1e300])


@settings(max_examples=60, deadline=None)
@given(grads=st.lists(finite, min_size=1, max_size=8),
       w0=finite,
       lr=st.floats(0.0, 10.0) | st.just(1e300),
       beta_1=st.floats(0.0, 0.999), beta_2=st.floats(0.0, 0.9999),
       eps=st.floats(1e-300, 1.0) | st.just(5e-324))
def test_the_scalar_path_equals_the_array_path(grads: list[float], w0: float,
                                               lr: float, beta_1: float, beta_2: float,
                                               eps: float) -> None:
    def make() -> tuple[list[tape.Variable], optim.Optimizer]:
        w = tape.Variable(w0, name="w")
        opt = optim.Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=eps, skip_nonfinite=True)
        opt.build([w])  # so that the plan takes the first step too
        return [w], opt

    ref, new = make(), make()
    plan = new[1].update_plan(new[0])
    assert plan._scalar
    for g in grads:
        with warnings.catch_warnings(record=True) as by_ref:
            warnings.simplefilter("always")
            applied = per_variable(ref[1], ref[0])([np.array(g)])
        with warnings.catch_warnings(record=True) as by_plan:
            warnings.simplefilter("always")
            assert plan([g]) == applied
        assert [str(w.message) for w in by_plan] == [str(w.message) for w in by_ref]
        assert_same(ref, new)


def test_eager_steps_over_changing_variable_lists_and_none_gradients() -> None:
    dtypes = [np.float32, np.float64, np.float32]
    ref, new = (make_vars(dtypes), optim.Adam(0.01)), (make_vars(dtypes), optim.Adam(0.01))
    rng = np.random.default_rng(9)
    for i in range(12):
        grads: list[Any] = gradients(ref[0], rng)
        pick = [[0, 1, 2], [1, 2], [2, 0, 1], [0, 1, 2]][i % 4]
        if i % 5 == 4:
            grads[pick[0]] = None  # left out, with apply_gradients' warning
        ref_pairs = [(grads[k], ref[0][k]) for k in pick]
        new_pairs = [(grads[k], new[0][k]) for k in pick]
        with warnings.catch_warnings(record=True) as by_ref:
            warnings.simplefilter("always")
            ref[1]._apply([p for p in ref_pairs], None)
        with warnings.catch_warnings(record=True) as by_new:
            warnings.simplefilter("always")
            assert new[1].apply_gradients(new_pairs) is True
        assert [str(w.message) for w in by_new] == [str(w.message) for w in by_ref]
        assert len(by_new) == (i % 5 == 4)
        assert_same(ref, new)


def test_a_plan_called_inside_a_traced_function_replays_as_one_kernel() -> None:
    def make() -> tuple[list[tape.Variable], optim.Optimizer, Any]:
        vs, opt = make_vars([np.float32, np.float64]), optim.Adam(0.05)
        plan = opt.update_plan(vs)

        def step(x: Any) -> Any:
            with tape.Tape() as t:
                cost = tape.sum(vs[0] * x) + tape.sum(vs[1] ** 2)
            plan(t.gradient(cost, vs))
            return cost
        return vs, opt, step

    (ve, oe, eager), (vt, ot, step) = make(), make()
    traced = tape.function(step)
    for i in range(6):
        x = np.full((5, 3), 1.0 + i, np.float32)
        np.testing.assert_array_equal(eager(x).numpy(), traced(x).numpy())
        assert_same((ve, oe), (vt, ot))
    assert traced.trace_count == 1 and ot.iterations == 6


def test_gradient_views_passed_for_other_variables_are_read_not_overwritten() -> None:
    def make() -> tuple[list[tape.Variable], optim.Optimizer]:
        return ([tape.Variable(np.array([0.5, -1.0, 2.0], np.float32), name="a"),
                 tape.Variable(np.array([3.0, 0.0, -2.0], np.float32), name="b")],
                optim.Adam(0.01))

    ref, new = make(), make()
    plan = new[1].update_plan(new[0])
    first = [np.ones(3, np.float32), np.ones(3, np.float32)]
    assert per_variable(ref[1], ref[0])(first) == plan(first)  # the variables are known now
    a, b = plan.gradient_views()
    a[...], b[...] = [1.0, 2.0, 3.0], [-4.0, 5.0, -6.0]
    swapped = [b.copy(), a.copy()]
    assert per_variable(ref[1], ref[0])(swapped) == plan([b, a]) is True
    assert_same(ref, new)


@pytest.mark.parametrize("make", [lambda: optim.Adam(0.1), lambda: optim.SGD(0.1)])
def test_a_plan_over_a_repeated_variable_refuses_like_apply_gradients(make: Callable) -> None:
    w, opt = tape.Variable(np.ones(3)), make()
    opt.build([w])
    with pytest.raises(ValueError, match="a variable appears more than once"):
        opt.update_plan([w, w])([np.ones(3), np.ones(3)])
    np.testing.assert_array_equal(w.numpy(), np.ones(3))
    assert opt.iterations == 0


def test_an_optimizer_keeps_a_bounded_number_of_plans_and_a_plan_made_again_steps_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def run(max_plans: int) -> tuple[list[tape.Variable], optim.Optimizer]:
        monkeypatch.setattr(optim.optimizer, "_MAX_PLANS", max_plans)
        vs = make_vars([np.float32] * 6 + [np.float64] * 6)
        opt = optim.Adam(0.05)
        lists = [vs[i:i + 3] for i in range(10)]  # overlapping variable lists
        rng = np.random.default_rng(3)
        for _ in range(3):
            for part in lists:  # each list in turn: with 4 plans kept, every plan is dropped
                opt.apply_gradients(zip(gradients(part, rng), part, strict=True))
                opt.update_plan(part)(gradients(part, rng))
            assert len(opt._plans) == min(max_plans, len(lists))
        return vs, opt

    assert_same(run(4), run(64))
