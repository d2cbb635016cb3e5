"""The per-member non-finite guard, `active` masks and `select_members` for stacked models."""

import numpy as np
import pytest

from optim import SGD, Adam, AdamW
from optim.gradients import nonfinite_members
from tape import Variable

K = 3
SHAPES = [(K, 4, 2), (K, 2)]
MAKERS = [
    ("adam", lambda lr: Adam(lr, per_member_nonfinite=True)),
    ("adamw clipped", lambda lr: AdamW(lr, weight_decay=0.1, global_clipnorm=1.0,
                                       per_member_nonfinite=True)),
    ("nesterov", lambda lr: SGD(lr, momentum=0.9, nesterov=True, per_member_nonfinite=True)),
]


def gradients(steps=4, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def snapshot(variables, opt):
    return [v.numpy() for v in variables], opt.state_dict()


def state_rows(state, k):
    return {n: v[k] for n, v in state.items() if n.startswith("slots/")}


@pytest.mark.parametrize("name, make", MAKERS, ids=[m[0] for m in MAKERS])
def test_a_nonfinite_member_keeps_its_weights_and_slots_and_the_others_step(name, make):
    lrs = np.array([0.1, 0.2, 0.3])
    grads = gradients()
    clean, guarded = [[Variable(np.ones(s)) for s in SHAPES] for _ in range(2)]
    opt_clean, opt_guarded = make(lrs), make(lrs)
    for step, gs in enumerate(grads):
        opt_clean.apply_gradients(zip(gs, clean))
        bad = [g.copy() for g in gs]
        if step == 2:
            before, state = snapshot(guarded, opt_guarded)
            bad[0][1, 0, 0] = np.nan
            bad[1][1, 1] = np.inf
        updated = opt_guarded.apply_gradients(zip(bad, guarded))
        assert updated.tolist() == [True, step != 2, True]
        if step == 2:
            after, state_after = snapshot(guarded, opt_guarded)
            for b, a in zip(before, after):
                np.testing.assert_array_equal(a[1], b[1])  # weight decay did not touch it
            for n, v in state_rows(state, 1).items():
                np.testing.assert_array_equal(state_after[n][1], v)
            # the others stepped exactly as in the clean run
            for c, a in zip(clean, after):
                np.testing.assert_array_equal(c.numpy()[[0, 2]], a[[0, 2]])
    assert opt_guarded.iterations == 4


def test_active_mask_and_the_guard_switched_off():
    w = Variable(np.ones((K, 2)))
    opt = Adam([0.1, 0.2, 0.3])  # per_member_nonfinite is off
    g = np.array([[1.0, 1.0], [np.nan, 0.0], [1.0, 1.0]])
    updated = opt.apply_gradients([(g, w)], active=np.array([True, False, True]))
    assert updated.tolist() == [True, False, True]  # the NaN sits in an inactive member
    assert w.numpy()[1].tolist() == [1.0, 1.0] and w.numpy()[0, 0] < 1.0
    before = w.numpy()
    with pytest.raises(FloatingPointError, match=r"members \[1\]"):
        opt.apply_gradients([(g, w)], active=np.ones(K, bool))
    np.testing.assert_array_equal(w.numpy(), before)
    assert opt.iterations == 1
    assert opt.apply_gradients([(g, w)], active=np.zeros(K, bool)).tolist() == [False] * K
    assert opt.iterations == 1  # nobody stepped: the step count stays
    with pytest.raises(ValueError, match=r"boolean mask of shape \(3,\)"):
        opt.apply_gradients([(g, w)], active=[1, 0, 1])


def test_scalar_hyperparameters_take_the_member_count_from_the_variables():
    w = Variable(np.ones((K, 2)))
    opt = SGD(0.5, clipnorm=1.0, per_member_nonfinite=True)
    g = np.array([[3.0, 4.0], [np.inf, 0.0], [0.3, 0.4]])
    assert opt.apply_gradients([(g, w)]).tolist() == [True, False, True]
    np.testing.assert_allclose(w.numpy(), [[0.7, 0.6], [1.0, 1.0], [0.85, 0.8]])  # per member
    with pytest.raises(ValueError, match="same leading"):
        opt.apply_gradients([(np.ones((K, 2)), w), (np.ones(2), Variable(np.ones(2)))])


def test_single_models_are_unchanged_by_the_option():
    w = Variable(np.ones(2))
    assert SGD(0.1).apply_gradients([(np.ones(2), w)]) is True
    with pytest.raises(FloatingPointError, match="variables"):
        SGD(0.1).apply_gradients([(np.array([np.nan, 1.0]), w)])


def test_nonfinite_members():
    g = np.ones((4, 3))
    g[1, 2], g[3, 0] = np.nan, -np.inf
    big = np.full((4, 2), 3e38, np.float32)  # sums overflow but values are finite
    assert nonfinite_members([g, big], 4).tolist() == [False, True, False, True]


def test_select_members_keeps_rows_of_slots_and_hyperparameters():
    w = Variable(np.ones((K, 2)))
    opt = Adam([0.1, 0.2, 0.3], beta_1=[0.9, 0.8, 0.7])
    for g in gradients(seed=1)[:2]:
        opt.apply_gradients([(g[1], w)])
    state = opt.state_dict()
    w2 = Variable(w.numpy()[[2, 0]])
    opt.select_members([2, 0], [(w, w2)])
    np.testing.assert_array_equal(opt.beta_1, [0.7, 0.9])
    for name in ("slots/0/m", "slots/0/v"):
        np.testing.assert_array_equal(opt.state_dict()[name], state[name][[2, 0]])
    opt.apply_gradients([(np.ones((2, 2)), w2)])  # the new variable owns the state
    assert opt.iterations == 3
    with pytest.raises(ValueError, match="cannot keep members"):
        opt.select_members([0, 1, 2], [(w2, Variable(np.ones((2, 2))))])
    with pytest.raises(ValueError, match="cannot keep members"):
        opt.select_members([5])
    np.testing.assert_array_equal(opt.beta_1, [0.7, 0.9])  # unchanged after the errors
