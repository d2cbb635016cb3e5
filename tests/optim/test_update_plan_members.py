"""Multi-tensor Adam for stacked members (`UpdatePlan.fast_members`: member-major flat slot
arrays, per-member coefficients as (K, 1) arrays) against the optimizer's per-variable code
(`Optimizer._apply`): the same bits, and every step it cannot take (a member left out, a
gradient that is not finite, a step not proved finite) left to that code, with the same
results and refusals."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_update_plan import assert_same  # noqa: E402

import nn  # noqa: E402
import optim  # noqa: E402
import tape  # noqa: E402
from optim import schedules  # noqa: E402
from optim.update_plan import UpdatePlan  # noqa: E402

K = 4
SHAPES = [(K, 5, 3), (K,), (K, 2, 2, 2), (K, 7)]
Pair = tuple[list[tape.Variable], optim.Optimizer]
Step = Callable[[list[Any], Any], Any]


def make_vars(dtypes: list[Any]) -> list[tape.Variable]:
    rng = np.random.default_rng(0)
    return [tape.Variable(rng.standard_normal(SHAPES[i % len(SHAPES)]).astype(dt),
                          name=f"v{i}") for i, dt in enumerate(dtypes)]


def reference(opt: optim.Optimizer, vs: list[tape.Variable]) -> Step:
    """The per-variable code, as `apply_gradients` runs it off the plans."""
    return lambda grads, active: opt._apply(list(zip(grads, vs, strict=True)), active)


def eager(opt: optim.Optimizer, vs: list[tape.Variable]) -> Step:
    return lambda grads, active: opt.apply_gradients(zip(grads, vs, strict=True),
                                                     active=active)


def planned(opt: optim.Optimizer, vs: list[tape.Variable]) -> Step:
    plan = opt.update_plan(vs)
    return lambda grads, active: plan(grads)


def traced(opt: optim.Optimizer, vs: list[tape.Variable]) -> Step:
    @tape.function
    def step(grads: list[Any], active: Any) -> Any:
        return opt.apply_gradients(zip(grads, vs, strict=True), active=active)
    return step


WAYS = {"eager": eager, "plan": planned, "traced": traced}


def on_member_path(opt: optim.Optimizer, vs: list[tape.Variable]) -> bool:
    """Whether the variables' slots are views into their plan's member-major arrays."""
    groups = opt.update_plan(vs)._groups
    if any(group.k is None for group in groups):
        return False
    bases = {id(a) for group in groups for a in (group.m, group.v)}
    return all(id(st.slots[name].base) in bases for st in opt._states for name in ("m", "v"))


def gradients(vs: list[tape.Variable], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(v.shape).astype(v.dtype) for v in vs]


def same_results(a: Any, b: Any) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert type(a) is type(b)


def run_pair(make_opt: Callable[[], optim.Optimizer], dtypes: list[Any], way: Callable,
             active: Any, steps: int = 24,
             between: Callable[[int, list[np.ndarray], Pair], None] | None = None
             ) -> tuple[Pair, Pair]:
    ref, new = (make_vars(dtypes), make_opt()), (make_vars(dtypes), make_opt())
    ref_step, new_step = reference(ref[1], ref[0]), way(new[1], new[0])
    rng = np.random.default_rng(42)
    for i in range(steps):
        grads = gradients(ref[0], rng)
        if between is not None:
            between(i, grads, ref)
            between(i, grads, new)
        same_results(ref_step(grads, active), new_step([g.copy() for g in grads], active))
        assert_same(ref, new)
    return ref, new


ALL = np.ones(K, bool)
RATES = np.geomspace(1e-3, 1e-1, K)
OPTIMIZERS = {
    "scalar": lambda: optim.Adam(0.01, per_member_nonfinite=True),
    "per member": lambda: optim.Adam(RATES, beta_1=np.linspace(0.5, 0.95, K),
                                     beta_2=np.linspace(0.9, 0.999, K),
                                     epsilon=np.geomspace(1e-8, 1e-3, K)),
    "schedule": lambda: optim.Adam(schedules.ExponentialDecay(0.05, 3, 0.5),
                                   beta_1=np.linspace(0.5, 0.95, K)),
    "K rates from a schedule": lambda: optim.Adam(lambda step: RATES / (1 + step),
                                                  per_member_nonfinite=True),
}


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize("make", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtypes", [[np.float32] * 4, [np.float64] * 4,
                                    [np.float32, np.float64, np.float32, np.float64]],
                         ids=["float32", "float64", "mixed"])
def test_stacked_adam_steps_bit_identically_to_the_per_variable_code(
        dtypes: list[Any], make: str, way: str) -> None:
    active = None if way == "plan" else ALL
    _, new = run_pair(OPTIMIZERS[make], dtypes, WAYS[way], active)
    assert new[1].iterations == 24
    assert on_member_path(new[1], new[0])


def test_without_a_mask_the_result_is_true_unless_members_are_refused_one_by_one() -> None:
    vs = make_vars([np.float64] * 2)
    opt = optim.Adam(RATES)
    opt.build(vs)
    assert opt.apply_gradients(zip(gradients(vs, np.random.default_rng(0)), vs)) is True
    opt.per_member_nonfinite = True
    done = opt.apply_gradients(zip(gradients(vs, np.random.default_rng(1)), vs))
    np.testing.assert_array_equal(done, ALL)
    assert on_member_path(opt, vs)


def test_a_member_left_out_by_the_mask_takes_the_per_variable_code() -> None:
    mask = np.array([True, False, True, True])
    ref, new = run_pair(OPTIMIZERS["per member"], [np.float32] * 4, eager, mask, steps=6)
    assert not on_member_path(new[1], new[0])
    # the member left out kept its slots at zero
    assert not new[1].state_dict()["slots/0/m"][1].any()


@pytest.mark.parametrize("per_member", [True, False])
def test_a_nonfinite_gradient_in_one_member_takes_the_per_variable_code(
        per_member: bool) -> None:
    def make() -> optim.Optimizer:
        return optim.Adam(RATES, per_member_nonfinite=per_member)

    def between(i: int, grads: list[np.ndarray], pair: Pair) -> None:
        if i == 12:
            grads[2][2, 1, 0, 1] = np.nan

    if per_member:  # member 2 is left out of step 12, as before; the others step
        ref, new = run_pair(make, [np.float32] * 4, eager, ALL, steps=20, between=between)
        assert on_member_path(new[1], new[0])  # back on the fast path afterwards
        return
    ref, new = run_pair(make, [np.float32] * 4, eager, ALL, steps=12)
    rng = np.random.default_rng(5)
    grads = gradients(ref[0], rng)
    grads[2][2, 1, 0, 1] = np.nan
    message = r"non-finite \(NaN or inf\) gradients for members \[2\]; no variable was updated"
    with pytest.raises(FloatingPointError, match=message):
        reference(ref[1], ref[0])(grads, ALL)
    with pytest.raises(FloatingPointError, match=message):
        eager(new[1], new[0])([g.copy() for g in grads], ALL)
    assert_same(ref, new)
    assert new[1].iterations == 12


def test_a_step_not_proved_finite_takes_the_per_variable_code() -> None:
    def between(i: int, grads: list[np.ndarray], pair: Pair) -> None:
        if i == 5:  # its square overflows float32: member 3 is left out
            grads[0][3, 0, 0] = np.float32(1e30)

    ref, new = run_pair(lambda: optim.Adam(RATES, per_member_nonfinite=True),
                        [np.float32] * 4, eager, ALL, steps=10, between=between)
    assert on_member_path(new[1], new[0])


def test_stacked_adam_after_load_state_dict_and_select_members() -> None:
    def make() -> optim.Optimizer:
        return optim.Adam(RATES, beta_1=np.linspace(0.5, 0.95, K), per_member_nonfinite=True)

    def between(i: int, grads: list[np.ndarray], pair: Pair) -> None:
        vs, opt = pair
        if i == 8:  # the state replaced: new slot arrays, which the plan copies in
            saved = opt.state_dict()
            saved["slots/1/v"] = saved["slots/1/v"] * 2.0
            opt.load_state_dict(saved)
        if i == 16:  # the members' rows kept in another order, on the same variables
            order = np.array([3, 1, 0, 2])
            opt.select_members(order)
            for v in vs:
                v.assign(v.numpy()[order])

    ref, new = run_pair(make, [np.float32, np.float64, np.float32, np.float64], eager, ALL,
                        between=between)
    assert on_member_path(new[1], new[0])


def test_culled_members_move_to_new_variables_with_the_same_bits() -> None:
    pairs = [(make_vars([np.float32] * 3), optim.Adam(RATES, per_member_nonfinite=True))
             for _ in range(2)]
    ways = [reference, eager]
    rng = np.random.default_rng(7)
    for i in range(20):
        if i == 10:  # keep members 3 and 0 in new variables
            for j, (vs, opt) in enumerate(pairs):
                kept = [tape.Variable(v.numpy()[[3, 0]], name=v.name) for v in vs]
                opt.select_members([3, 0], list(zip(vs, kept)))
                pairs[j] = (kept, opt)
        grads = gradients(pairs[0][0], rng)
        mask = np.ones(len(grads[0]), bool)
        results = [way(opt, vs)([g.copy() for g in grads], mask)
                   for way, (vs, opt) in zip(ways, pairs)]
        same_results(*results)
        assert_same(*pairs)
    assert on_member_path(pairs[1][1], pairs[1][0])


def test_a_population_fits_to_the_same_bits_as_on_the_per_variable_code(
        monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.random.default_rng(0).standard_normal((96, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)

    def model(seed: int | None = None) -> nn.Sequential:
        return nn.Sequential([nn.Dense(8, seed=seed), nn.BatchNorm(), nn.ReLU(),
                              nn.Dense(2, seed=None if seed is None else seed + 1)])

    def fit() -> tuple[nn.Population, optim.Optimizer]:
        pop = nn.Population(model, K, seed=list(range(K)))
        opt = optim.Adam(RATES)
        nn.fit(pop, X, y, loss=nn.softmax_cross_entropy, optimizer=opt, epochs=3,
               batch_size=16, verbose=0)
        return pop, opt

    new = fit()
    assert on_member_path(new[1], new[0].trainable_variables)
    monkeypatch.setattr(UpdatePlan, "fast_members", lambda self, grads, active: None)
    ref = fit()
    assert not on_member_path(ref[1], ref[0].trainable_variables)
    assert_same((ref[0].variables, ref[1]), (new[0].variables, new[1]))


def test_a_plan_made_flat_moves_to_member_major_arrays_when_members_step() -> None:
    def between(i: int, grads: list[np.ndarray], pair: Pair) -> None:
        vs, opt = pair
        if i == 6:
            if opt._plans:  # the plan's, made for a single model's steps: flat arrays
                assert not on_member_path(opt, vs)
            opt.per_member_nonfinite = True
        if i == 14:
            opt.learning_rate = RATES

    ref, new = run_pair(lambda: optim.Adam(0.01), [np.float32, np.float64] * 2, eager, None,
                        between=between)
    assert on_member_path(new[1], new[0])


def test_clipping_takes_the_per_variable_code() -> None:
    ref, new = run_pair(lambda: optim.Adam(RATES, clipnorm=1.0), [np.float32] * 4, eager, ALL,
                        steps=6)
    assert not on_member_path(new[1], new[0])
