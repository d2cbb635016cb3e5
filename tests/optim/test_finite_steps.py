"""A step never leaves a non-finite number in the weights or the optimizer's state: second
moments that fit are kept finite, anything else refuses the step whole, and every write goes
through the Variable API."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from optim import SGD, Adam, AdamW, Nadam, RMSprop
from tape import Variable

F32, F64 = np.float32, np.float64


def slots(opt):
    return {k: v for k, v in opt.state_dict().items() if k.startswith("slots/")}


def assert_all_finite(opt, *variables):
    for name, arr in slots(opt).items():
        assert np.isfinite(arr).all(), f"{name} = {arr}"
    for v in variables:
        assert np.isfinite(v.numpy()).all(), f"{v.name} = {v.numpy()}"


# -- second moments of huge finite gradients ----------------------------------------------------

# (gradient, dtype): the square overflows the dtype, (1 - beta_2) times the square does not
FITTING = [(1e20, F32), (2e154, F64)]
FITTING_MAKERS = [
    ("adam", lambda: Adam(0.1)),
    ("amsgrad", lambda: Adam(0.1, amsgrad=True)),
    ("adamw", lambda: AdamW(0.1, weight_decay=0.1)),
    ("rmsprop", lambda: RMSprop(0.1, rho=0.999)),
    ("nadam", lambda: Nadam(0.1)),
]


@pytest.mark.parametrize("big, dtype", FITTING, ids=["float32", "float64"])
@pytest.mark.parametrize("name, make", FITTING_MAKERS, ids=[m[0] for m in FITTING_MAKERS])
def test_huge_gradient_keeps_the_second_moment_finite_and_the_weights_training(
        name, make, big, dtype):
    w = Variable(np.zeros(3, dtype), name="w")
    other = Variable(np.zeros(2, dtype), name="other")
    opt = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow anywhere, not even NumPy's warning
        assert opt.apply_gradients([(np.array([big, 1.0, -1.0], dtype), w),
                                    (np.ones(2, dtype), other)])
    assert_all_finite(opt, w, other)
    v = slots(opt)["slots/0/v"][0]
    np.testing.assert_allclose(v, (np.sqrt(1 - 0.999) * float(big)) ** 2, rtol=1e-5)
    before = w.numpy(), other.numpy()
    for _ in range(3):
        opt.apply_gradients([(np.ones(3, dtype), w), (np.ones(2, dtype), other)])
    assert_all_finite(opt, w, other)
    assert (w.numpy()[1:] < before[0][1:]).all() and (other.numpy() < before[1]).all()
    if name != "rmsprop":  # Adam's first moment is as huge: that weight moves too (was stuck)
        assert w.numpy()[0] < before[0][0]


def test_adam_float32_matches_float64_after_a_huge_gradient():
    grads = [np.array([1e20, 1.0]), np.array([1.0, 1.0]), np.array([-2.0, 0.5])]
    runs = {}
    for dtype in (F32, F64):
        w, opt = Variable(np.zeros(2, dtype)), Adam(0.1)
        for g in grads:
            opt.apply_gradients([(g.astype(dtype), w)])
        runs[dtype] = w.numpy(), slots(opt)["slots/0/v"]
    np.testing.assert_allclose(runs[F32][0], runs[F64][0], rtol=1e-5)
    np.testing.assert_allclose(runs[F32][1], runs[F64][1], rtol=1e-5)


# -- steps that cannot be finite are refused whole -----------------------------------------------

REFUSED = [
    # name, optimizer, dtype, gradient of 'bad', what the message names
    ("adam 1e30 float32", lambda: Adam(0.1), F32, 1e30, "slot 'v'"),
    ("amsgrad 1e30 float32", lambda: Adam(0.1, amsgrad=True), F32, 1e30, "slot 'v'"),
    ("rmsprop 1e20 float32", lambda: RMSprop(0.1), F32, 1e20, "slot 'v'"),
    ("adam 1e300 float64", lambda: Adam(0.1), F64, 1e300, "slot 'v'"),
    ("sgd huge learning rate", lambda: SGD(1e30), F32, 1e10, "weights"),
]


@pytest.mark.parametrize("name, make, dtype, big, part", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_step_that_cannot_be_finite_changes_nothing_and_names_the_variable(
        name, make, dtype, big, part):
    good = Variable(np.ones(3, dtype), name="good")
    bad = Variable(np.ones(2, dtype), name="bad")
    opt = make()
    pairs = [(np.full(3, 0.5, dtype), good), (np.full(2, 0.5, dtype), bad)]
    opt.apply_gradients(pairs)
    weights, state = (good.numpy(), bad.numpy()), slots(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one report: ours, not NumPy's overflow warnings
        with pytest.raises(FloatingPointError, match=rf"'bad' {np.dtype(dtype)} \(.*{part}"):
            opt.apply_gradients([pairs[0], (np.array([big, 0.0], dtype), bad)])
    np.testing.assert_array_equal(good.numpy(), weights[0])
    np.testing.assert_array_equal(bad.numpy(), weights[1])
    for key, value in slots(opt).items():
        np.testing.assert_array_equal(value, state[key])
    assert opt.iterations == 1
    assert opt.apply_gradients(pairs)  # and training goes on
    assert_all_finite(opt, good, bad)


def test_momentum_that_would_overflow_is_refused():
    w = Variable(np.zeros(2, F32), name="w")
    opt = SGD(1e-3, momentum=0.9)
    g = np.array([3e38, 1.0], F32)
    opt.apply_gradients([(g, w)])  # b = 3e38
    with pytest.raises(FloatingPointError, match="'w'"):
        opt.apply_gradients([(g, w)])  # b = 0.9 * 3e38 + 3e38 overflows
    assert_all_finite(opt, w)


def test_skip_nonfinite_skips_a_step_that_cannot_be_finite():
    w = Variable(np.ones(2, F32), name="w")
    opt = Adam(0.1, skip_nonfinite=True)
    with pytest.warns(RuntimeWarning, match=r"skipped step 0: .*'w' float32 \(optimizer slot"):
        assert opt.apply_gradients([(np.array([1e30, 1.0], F32), w)]) is False
    assert opt.iterations == 0 and (w.numpy() == 1.0).all()
    assert_all_finite(opt, w)


def test_epsilon_that_underflows_in_float32_refuses_instead_of_writing_nan():
    w = Variable(np.ones(2, F32), name="w")
    with pytest.raises(FloatingPointError, match=r"'w' float32 \(weights\)"):
        Adam(0.1, epsilon=1e-50).apply_gradients([(np.zeros(2, F32), w)])  # 0 / (0 + 0)
    assert (w.numpy() == 1.0).all()


def test_weight_decay_that_would_overflow_is_refused():
    w = Variable(np.full(2, 1e30, F32), name="w")
    opt = AdamW(1e5, weight_decay=1e5)  # w * lr * wd = 1e40
    with pytest.raises(FloatingPointError, match=r"'w' float32 \(weights\)"):
        opt.apply_gradients([(np.ones(2, F32), w)])
    assert (w.numpy() == F32(1e30)).all()
    assert_all_finite(opt, w)


def test_a_step_that_fails_midway_leaves_the_state_as_it_was():
    b = Variable(np.ones((2, 2)), name="b")
    opt = SGD(np.array([0.1, 0.2]), momentum=0.5)
    opt.apply_gradients([(np.ones((2, 2)), b)])
    momentum = slots(opt)["slots/0/momentum"]
    with pytest.raises(ValueError, match="'a' has shape"):  # a comes after b
        opt.apply_gradients([(np.full((2, 2), 7.0), b),
                             (np.ones(3), Variable(np.ones(3), name="a"))])
    opt.momentum = 0.0  # momentum off: the buffer is left as it is
    opt.apply_gradients([(np.ones((2, 2)), b)])
    np.testing.assert_array_equal(slots(opt)["slots/0/momentum"], momentum)


# -- stacked members: the one that cannot step finitely is frozen ----------------------------------

K = 3


@pytest.mark.parametrize("make", [lambda lr: Adam(lr, per_member_nonfinite=True),
                                  lambda lr: SGD(lr * 1e30, per_member_nonfinite=True)],
                         ids=["adam second moment", "sgd weights"])
def test_a_member_whose_step_cannot_be_finite_is_left_out(make):
    lrs = np.array([0.1, 0.2, 0.3])
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((K, 4)).astype(F32) for _ in range(3)]
    clean, guarded = Variable(np.ones((K, 4), F32)), Variable(np.ones((K, 4), F32))
    opt_clean, opt_guarded = make(lrs), make(lrs)
    for step, g in enumerate(grads):
        opt_clean.apply_gradients([(g, clean)])
        g = g.copy()
        if step == 1:
            before, state = guarded.numpy(), slots(opt_guarded)
            g[1, 2] = 1e30
        updated = opt_guarded.apply_gradients([(g, guarded)])
        assert updated.tolist() == [True, step != 1, True]
        if step == 1:
            np.testing.assert_array_equal(guarded.numpy()[1], before[1])
            for key, value in slots(opt_guarded).items():
                np.testing.assert_array_equal(value[1], state[key][1])
            np.testing.assert_array_equal(guarded.numpy()[[0, 2]], clean.numpy()[[0, 2]])
    assert_all_finite(opt_guarded, guarded)


def test_without_the_member_guard_a_member_that_cannot_step_finitely_raises():
    w = Variable(np.ones((K, 2), F32))
    opt = Adam([0.1, 0.2, 0.3])
    g = np.ones((K, 2), F32)
    g[2, 0] = 1e30
    with pytest.raises(FloatingPointError, match=r"members \[2\]"):
        opt.apply_gradients([(g, w)], active=np.ones(K, bool))
    assert (w.numpy() == 1.0).all() and opt.iterations == 0
    assert opt.apply_gradients([(g, w)], active=np.array([True, True, False])).tolist() == [
        True, True, False]


# -- hyperparameters -------------------------------------------------------------------------------

def test_zero_epsilon_is_refused_at_construction_and_on_assignment():
    with pytest.raises(ValueError, match=r"epsilon must be finite and > 0, got 0.0"):
        Adam(epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        RMSprop(0.1, epsilon=0.0)
    opt = Adam()
    with pytest.raises(ValueError, match="epsilon"):
        opt.epsilon = 0.0
    assert opt.epsilon == 1e-8


@pytest.mark.parametrize("name, values, member", [
    ("epsilon", [1e-8, 1e-8, 0.0], 2),
    ("beta_1", [0.9, 1.0, 0.9], 1),
    ("learning_rate", [np.nan, 0.1, 0.1], 0),
    ("beta_2", [0.999, 0.999, -0.5], 2),
])
def test_array_hyperparameters_name_the_bad_member(name, values, member):
    with pytest.raises(ValueError, match=rf"{name} must be .* for every member; member {member} "):
        Adam(**{name: values})
    opt = Adam(np.full(3, 0.1))
    with pytest.raises(ValueError, match=rf"member {member} "):
        opt.set_hyperparameters(**{name: values})


# -- clipping huge finite gradients ---------------------------------------------------------------

def test_clipnorm_clips_a_gradient_whose_squares_overflow_to_the_norm():
    w = Variable(np.zeros(2, F32))
    SGD(1.0, clipnorm=1.0).apply_gradients([(np.array([3e20, 4e20], F32), w)])
    np.testing.assert_allclose(w.numpy(), [-0.6, -0.8], rtol=1e-6)
    a, b = Variable(np.zeros(2, F32)), Variable(np.zeros(1, F32))
    SGD(1.0, global_clipnorm=1.0).apply_gradients([(np.array([3e20, 0.0], F32), a),
                                                    (np.array([4e20], F32), b)])
    np.testing.assert_allclose(np.concatenate([a.numpy(), b.numpy()]), [-0.6, 0.0, -0.8],
                               rtol=1e-6)
    w = Variable(np.zeros((2, 2), F32))
    SGD([1.0, 1.0], clipnorm=1.0).apply_gradients([(np.array([[3e20, 4e20], [0.3, 0.4]], F32), w)])
    np.testing.assert_allclose(w.numpy(), [[-0.6, -0.8], [-0.3, -0.4]], rtol=1e-6)


# -- state files and writes -----------------------------------------------------------------------

def test_load_state_dict_refuses_non_finite_slots():
    w = Variable(np.ones(2, F32), name="w")
    opt = Adam()
    opt.apply_gradients([(np.ones(2, F32), w)])
    state = opt.state_dict()
    state["slots/0/v"] = np.array([1.0, 1e300])  # inf as float32
    fresh = Adam()
    with pytest.raises(ValueError, match=r"'slots/0/v' for Variable 'w' holds NaN or inf"):
        fresh.load_state_dict(state, [w])
    assert fresh.iterations == 0


class SpyVariable(Variable):
    """A Variable that records its value whenever the optimizer writes through its API."""

    def assign_sub(self, delta):
        self.seen.append(self.numpy())
        return super().assign_sub(delta)


def test_weight_decay_and_held_members_write_only_through_the_variable_api():
    w0 = np.arange(1.0, 7.0).reshape(3, 2)
    w = SpyVariable(w0)
    w.seen = []
    opt = AdamW(0.1, weight_decay=0.5, per_member_nonfinite=True)
    g = np.ones((3, 2))
    g[1, 0] = np.nan
    assert opt.apply_gradients([(g, w)]).tolist() == [True, False, True]
    np.testing.assert_array_equal(w.seen[0], w0)  # nothing changed before the write
    np.testing.assert_array_equal(w.numpy()[1], w0[1])
    # the decay is part of the step: w - lr*wd*w - lr*adam_step, adam_step = 1 at step 1
    np.testing.assert_allclose(w.numpy()[[0, 2]], w0[[0, 2]] * (1 - 0.05) - 0.1, rtol=1e-8)
