"""Array hyperparameters: K models stacked along the leading axis train like K separate runs."""

from __future__ import annotations

import numpy as np
import pytest

from optim import SGD, Adam, AdamW, RMSprop, schedules
from tape import Variable

K = 3
LRS = np.array([0.01, 0.05, 0.1])
SHAPES = [(K, 4, 2), (K, 2), (K,)]

MAKERS = [
    ("adam", lambda lr: Adam(lr)),
    ("amsgrad clipnorm", lambda lr: Adam(lr, amsgrad=True, clipnorm=1.0)),
    ("adamw global clip", lambda lr: AdamW(lr, weight_decay=0.1, global_clipnorm=2.0)),
    ("rmsprop", lambda lr: RMSprop(lr)),
    ("nesterov clipnorm", lambda lr: SGD(lr, momentum=0.9, nesterov=True, clipnorm=0.5)),
]


def _gradients(dtype, steps=8):
    rng = np.random.default_rng(0)
    return [[(rng.standard_normal(s) * 2).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _run_stacked(make, lr, dtype, grads):
    variables = [Variable(np.ones(s, dtype)) for s in SHAPES]
    opt = make(lr)
    for gs in grads:
        opt.apply_gradients(zip(gs, variables, strict=True))
    return [v.numpy() for v in variables]


def _run_member(make, lr, dtype, grads, k):
    variables = [Variable(np.ones(s[1:], dtype)) for s in SHAPES]
    opt = make(lr)
    for gs in grads:
        opt.apply_gradients(zip([g[k] for g in gs], variables, strict=True))
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("name, make", MAKERS, ids=[m[0] for m in MAKERS])
def test_per_member_learning_rate_equals_separate_runs(name, make):
    grads = _gradients(np.float32)
    stacked = _run_stacked(make, LRS, np.float32, grads)
    for k, lr in enumerate(LRS):
        alone = _run_member(make, float(lr), np.float32, grads, k)
        for s, a in zip(stacked, alone, strict=True):
            assert s.dtype == np.float32
            np.testing.assert_allclose(s[k], a, rtol=2e-6, atol=1e-7, err_msg=f"member {k}")
    if "clip" not in name:  # same arithmetic in the same order: the very same bits
        for k, lr in enumerate(LRS):
            alone = _run_member(make, float(lr), np.float32, grads, k)
            assert all(np.array_equal(s[k], a) for s, a in zip(stacked, alone, strict=True))


def test_every_hyperparameter_can_be_per_member():
    betas, eps, wd = np.array([0.8, 0.9, 0.95]), np.array([1e-8, 1e-3, 0.1]), np.array([0, .1, .5])

    def make(k=None):
        pick = (lambda a: a) if k is None else (lambda a: float(a[k]))
        return AdamW(pick(LRS), beta_1=pick(betas), beta_2=pick(betas[::-1]),
                     epsilon=pick(eps), weight_decay=pick(wd))

    grads = _gradients(np.float64)
    stacked = _run_stacked(lambda lr: make(), None, np.float64, grads)
    for k in range(K):
        alone = _run_member(lambda lr, k=k: make(k), None, np.float64, grads, k)
        for s, a in zip(stacked, alone, strict=True):
            np.testing.assert_allclose(s[k], a, rtol=1e-13)


def test_per_member_momentum_and_rho():
    mus = np.array([0.0, 0.5, 0.9])
    grads = _gradients(np.float64)
    for make in (lambda mu: SGD(0.1, momentum=mu), lambda rho: RMSprop(0.1, rho=rho)):
        stacked = _run_stacked(make, mus, np.float64, grads)
        for k in range(K):
            alone = _run_member(make, float(mus[k]), np.float64, grads, k)
            for s, a in zip(stacked, alone, strict=True):
                np.testing.assert_allclose(s[k], a, rtol=1e-13)


def test_array_schedule_gives_each_member_its_rate():
    w = Variable(np.zeros((K, 2)))
    opt = SGD(schedules.ExponentialDecay(LRS, 0.5))
    opt.apply_gradients([(np.ones((K, 2)), w)])
    opt.apply_gradients([(np.ones((K, 2)), w)])
    np.testing.assert_allclose(w.numpy(), -np.outer(LRS * 1.5, [1, 1]))


@pytest.mark.parametrize("shape", [(K + 1, 2), ()])
def test_leading_dimension_mismatch_is_refused_before_any_update(shape):
    good, bad = Variable(np.ones((K, 2))), Variable(np.ones(shape), name="odd")
    opt = Adam(LRS)
    with pytest.raises(ValueError, match=rf"'odd'.*{K}"):
        opt.apply_gradients([(np.ones((K, 2)), good), (np.ones(shape), bad)])
    assert np.all(good.numpy() == 1.0) and opt.iterations == 0
