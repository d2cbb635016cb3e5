"""Numbers at the edges, for every optimizer, from tables.

Bad hyperparameters are refused by name (and by member, for one value per stacked model) at
construction and on assignment. Extreme but finite gradients (1e20 and 1e30 in float32, 1e300 and
the largest float64, denormals) and extreme but valid hyperparameters leave every weight and every
slot finite, or the step is refused whole with a message naming the variable (or, for stacked
models under the member guard, only the member is left out).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optim import SGD, Adagrad, Adam, AdamW, Nadam, Optimizer, RMSprop
from optim.transforms import ScaleByRms, Trace
from tape import Variable

NAN, INF = float("nan"), float("inf")
F32, F64 = np.float32, np.float64
K = 3  # stacked members

OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": lambda lr=0.1, **kw: SGD(lr, **kw),
    "momentum": lambda lr=0.1, **kw: SGD(lr, **{"momentum": 0.9, **kw}),
    "nesterov": lambda lr=0.1, **kw: SGD(lr, nesterov=True, **{"momentum": 0.9, **kw}),
    "rmsprop": lambda lr=0.1, **kw: RMSprop(lr, **kw),
    "rmsprop+momentum": lambda lr=0.1, **kw: Optimizer(lr, [ScaleByRms(), Trace()],
                                                        **{"momentum": 0.9, **kw}),
    "adam": lambda lr=0.1, **kw: Adam(lr, **kw),
    "amsgrad": lambda lr=0.1, **kw: Adam(lr, amsgrad=True, **kw),
    "adamw": lambda lr=0.1, **kw: AdamW(lr, **{"weight_decay": 0.1, **kw}),
    "adagrad": lambda lr=0.1, **kw: Adagrad(lr, **kw),
    "nadam": lambda lr=0.1, **kw: Nadam(lr, **kw),
}


def make(name: str, **kw: Any) -> Optimizer:
    kw = dict(kw)
    return OPTIMIZERS[name](kw.pop("learning_rate", 0.1), **kw)


def hyperparameter_names(name: str) -> list[str]:
    return sorted(make(name).hyperparameters)


# -- bad hyperparameters ------------------------------------------------------------------------

BETA = [-0.1, 1.0, 1.5, NAN, INF]
BAD_VALUES = {
    "learning_rate": [-0.1, NAN, INF, -INF],
    "beta_1": BETA, "beta_2": BETA, "rho": BETA, "momentum": BETA,
    "epsilon": [0.0, -1e-8, NAN, INF, -INF],
    "weight_decay": [-0.01, NAN, INF],
    "clipnorm": [0.0, -1.0, NAN, INF],
    "global_clipnorm": [0.0, -1.0, NAN, INF],
}
BAD = [(opt, hp, value) for opt in OPTIMIZERS for hp in hyperparameter_names(opt)
       for value in BAD_VALUES[hp]]


def test_every_hyperparameter_has_bad_values_in_the_table():
    for opt in OPTIMIZERS:
        assert set(hyperparameter_names(opt)) <= set(BAD_VALUES), opt


@pytest.mark.parametrize("opt, hp, value", BAD, ids=[f"{o}-{h}-{v}" for o, h, v in BAD])
def test_bad_hyperparameter_is_refused_by_name(opt, hp, value):
    with pytest.raises(ValueError, match=rf"^{hp} must be "):
        make(opt, **{hp: value})
    good = make(opt)
    before = good.hyperparameters
    with pytest.raises(ValueError, match=rf"^{hp} must be "):
        good.set_hyperparameters(**{hp: value})
    with pytest.raises(ValueError, match=rf"^{hp} must be "):
        setattr(good, hp, value)
    assert repr(good.hyperparameters) == repr(before)
    # one value per stacked model: the bad member is named
    fine = {"learning_rate": 0.1, "epsilon": 1e-8, "weight_decay": 0.1, "clipnorm": 1.0,
            "global_clipnorm": 1.0}.get(hp, 0.5)
    with pytest.raises(ValueError, match=rf"^{hp} must be .* for every member; member 1 has"):
        make(opt, **{hp: [fine, value, fine]})
    with pytest.raises(ValueError, match=rf"^{hp} must be .* member 1 has"):
        good.set_hyperparameters(**{hp: [fine, value, fine]})
    assert repr(good.hyperparameters) == repr(before)


# -- extreme but finite gradients -----------------------------------------------------------------

EXTREMES = [
    ("float32 1e20", F32, 1e20),
    ("float32 -1e30", F32, -1e30),
    ("float32 max", F32, float(np.finfo(F32).max)),
    ("float32 denormal", F32, float(np.finfo(F32).smallest_subnormal)),
    ("float64 1e300", F64, 1e300),
    ("float64 -max", F64, -float(np.finfo(F64).max)),
    ("float64 denormal", F64, float(np.finfo(F64).smallest_subnormal)),
]
SIZES = [3, 5000]  # 5000: past the small-array shortcuts, through the BLAS checks
CASES = [(opt, *extreme, n) for opt in OPTIMIZERS for extreme in EXTREMES for n in SIZES]
IDS = [f"{opt}-{label}-{n}" for opt, label, _, _, n in CASES]


def snapshot(opt: Optimizer, variables: list[Variable]) -> tuple[list[np.ndarray], dict]:
    return [v.numpy() for v in variables], {k: np.copy(v) for k, v in opt.state_dict().items()
                                            if k.startswith("slots/")}


def assert_finite(opt: Optimizer, variables: list[Variable]) -> None:
    weights, slots = snapshot(opt, variables)
    for v, w in zip(variables, weights):
        assert np.isfinite(w).all(), f"weights of {v.name!r} are not finite"
    for key, arr in slots.items():
        assert np.isfinite(arr).all(), f"{key} is not finite"


def assert_unchanged(before, after) -> None:
    for b, a in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b)
    assert before[1].keys() == after[1].keys()
    for key in before[1]:
        np.testing.assert_array_equal(after[1][key], before[1][key])


def step(opt: Optimizer, pairs: list, refused_names: str, **kw: Any) -> Any:
    """Apply; on a refusal, check that it names one of `refused_names` and changed nothing."""
    variables = [v for _, v in pairs]
    before = snapshot(opt, variables)
    iterations = opt.iterations
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one report: the optimizer's, never NumPy's overflow
        try:
            result = opt.apply_gradients(pairs, **kw)
        except FloatingPointError as e:
            assert any(f"'{n}'" in str(e) for n in refused_names.split()), str(e)
            assert_unchanged(before, snapshot(opt, variables))
            assert opt.iterations == iterations
            return None
    assert_finite(opt, variables)
    return result


@pytest.mark.parametrize("opt, label, dtype, extreme, n", CASES, ids=IDS)
def test_extreme_gradient_leaves_everything_finite_or_is_refused(opt, label, dtype, extreme, n):
    huge = Variable(np.ones(n, dtype), name="huge")
    other = Variable(np.ones((2, 2), dtype), name="other")
    optimizer = make(opt)
    normal = [(np.full(n, 0.5, dtype), huge), (np.full((2, 2), 0.5, dtype), other)]
    assert step(optimizer, normal, "")
    g = np.full(n, 0.5, dtype)
    g[n // 2] = extreme
    step(optimizer, [(g, huge), normal[1]], "huge")
    everything = np.full(n, dtype(extreme))  # every element extreme at once
    step(optimizer, [(everything, huge), normal[1]], "huge")
    for _ in range(3):  # and training goes on
        before = other.numpy()
        assert step(optimizer, normal, "")
        assert (other.numpy() != before).all()


@pytest.mark.parametrize("opt, label, dtype, extreme", [c[:4] for c in CASES if c[4] == 3],
                         ids=[i.rsplit("-", 1)[0] for i, c in zip(IDS, CASES) if c[4] == 3])
def test_extreme_gradient_skipped_with_a_warning_naming_the_variable(opt, label, dtype, extreme):
    w = Variable(np.ones(4, dtype), name="w")
    optimizer = make(opt, skip_nonfinite=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        applied = optimizer.apply_gradients([(np.array([extreme, 0.5, 0.5, 0.5], dtype), w)])
    messages = [str(x.message) for x in seen]
    if applied:
        assert messages == []
    else:
        assert len(messages) == 1 and "skipped step 0" in messages[0] and "'w'" in messages[0]
        assert optimizer.iterations == 0 and (w.numpy() == 1).all()
    assert_finite(optimizer, [w])


@pytest.mark.parametrize("opt, label, dtype, extreme", [c[:4] for c in CASES if c[4] == 3],
                         ids=[i.rsplit("-", 1)[0] for i, c in zip(IDS, CASES) if c[4] == 3])
def test_extreme_gradient_in_one_stacked_member(opt, label, dtype, extreme):
    rates = np.array([0.1, 0.05, 0.02])
    w = Variable(np.ones((K, 4), dtype), name="w")
    b = Variable(np.ones(K, dtype), name="b")
    optimizer = make(opt, learning_rate=rates, per_member_nonfinite=True)
    normal = [(np.full((K, 4), 0.5, dtype), w), (np.full(K, 0.5, dtype), b)]
    assert step(optimizer, normal, "").all()
    g = np.full((K, 4), 0.5, dtype)
    g[1, 2] = extreme
    updated = step(optimizer, [(g, w), normal[1]], "")
    assert updated[[0, 2]].all()  # the others always step; member 1 steps or is left out
    for _ in range(2):
        before = w.numpy()
        assert step(optimizer, normal, "")[[0, 2]].all()
        assert (w.numpy()[[0, 2]] != before[[0, 2]]).all()


# -- extreme but valid hyperparameters ------------------------------------------------------------

EXTREME_HYPERPARAMETERS = [
    ("learning_rate", 1e30), ("learning_rate", 1e-300), ("learning_rate", 0.0),
    ("epsilon", 1e-300), ("epsilon", 1e300),  # 1e-300 is 0 in float32
    ("beta_1", 0.0), ("beta_1", 1 - 1e-12), ("beta_2", 0.0), ("beta_2", 1 - 1e-12),
    ("rho", 0.0), ("rho", 1 - 1e-12), ("momentum", 1 - 1e-12),  # 1 - 1e-12 is 1 in float32
    ("weight_decay", 1e30), ("clipnorm", 1e-300), ("global_clipnorm", 1e300),
]
HP_CASES = [(opt, hp, value, dtype) for opt in OPTIMIZERS for hp, value in EXTREME_HYPERPARAMETERS
            if hp in hyperparameter_names(opt) for dtype in (F32, F64)]


@pytest.mark.parametrize("opt, hp, value, dtype", HP_CASES,
                         ids=[f"{o}-{h}={v}-{np.dtype(d)}" for o, h, v, d in HP_CASES])
def test_extreme_valid_hyperparameters_keep_everything_finite_or_refuse(opt, hp, value, dtype):
    w = Variable(np.array([1.0, -2.0, 0.0, 3.0], dtype), name="w")
    optimizer = make(opt, **{hp: value})
    rng = np.random.default_rng(0)
    for t in range(6):
        g = (rng.standard_normal(4) * 10.0 ** rng.integers(-3, 4)).astype(dtype)
        if t == 2:
            g[:] = 0  # a zero gradient: 0 / (0 + epsilon)
        if step(optimizer, [(g, w)], "w") is None:
            break


# -- the proof that skips the check, against the check ---------------------------------------------

def _guarded(opt: Optimizer) -> Optimizer:
    """`opt` with its proof switched off: every step computed aside and checked."""
    opt._finite_for_sure = lambda *args: False  # type: ignore[method-assign]
    return opt


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(opt=st.sampled_from(sorted(OPTIMIZERS)), dtype=st.sampled_from([F32, F64]),
       lr=st.sampled_from([0.0, 1e-3, 0.5, 1e10, 1e30]),
       epsilon=st.sampled_from([1e-300, 1e-40, 1e-8, 1.0]),
       beta=st.sampled_from([0.0, 0.5, 0.9, 0.999, 1 - 1e-12]),
       scales=st.lists(st.sampled_from([0.0, 1e-45, 1e-8, 1.0, 1e10, 1e19, 1e30, 1e38]),
                       min_size=4, max_size=4),
       clipnorm=st.sampled_from([None, 1e-30, 1.0]), decay=st.sampled_from([0.0, 0.5, 1e10]),
       weights=st.sampled_from([1.0, 1e19, 1e37]), stacked=st.booleans(),
       seed=st.integers(0, 2**16))
def test_steps_taken_on_the_proof_equal_checked_steps_and_stay_finite(
        opt, dtype, lr, epsilon, beta, scales, clipnorm, decay, weights, stacked, seed):
    names = hyperparameter_names(opt)
    kw = {n: v for n, v in (("epsilon", epsilon), ("beta_2", beta), ("rho", beta),
                            ("momentum", beta), ("weight_decay", decay)) if n in names}
    kw["clipnorm"] = clipnorm
    if stacked:  # K members, one learning rate each, each left out on its own
        kw.update(learning_rate=np.array([lr, lr / 2, lr * 2]), per_member_nonfinite=True)
    else:
        kw.update(learning_rate=lr)
    fast, slow = make(opt, **kw), _guarded(make(opt, **kw))
    rng = np.random.default_rng(seed)
    shape = (K, 2) if stacked else (6,)
    w_fast = Variable((rng.standard_normal(shape) * weights).astype(dtype), name="w")
    w_slow = Variable(w_fast.numpy(), name="w")
    for scale in scales:
        with np.errstate(over="ignore"):
            g = (rng.standard_normal(shape) * scale).astype(dtype)
        if not np.isfinite(g).all():
            continue
        active = {"active": rng.random(K) < 0.7} if stacked else {}  # some members sit out
        fast_result = step(fast, [(g, w_fast)], "w", **active)
        slow_result = step(slow, [(g, w_slow)], "w", **active)
        assert (fast_result is None) == (slow_result is None)
        if stacked:
            np.testing.assert_array_equal(fast_result, slow_result)
        np.testing.assert_array_equal(w_fast.numpy(), w_slow.numpy())
        for key, value in fast.state_dict().items():
            np.testing.assert_array_equal(value, slow.state_dict()[key])
        for state in fast._states:  # the bounds the proof carries hold
            for name, arr in state.slots.items():
                assert np.abs(arr).max() <= state.bounds[name], name
