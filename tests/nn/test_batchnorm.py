"""Batch norm: the fused primitive against its composition, running statistics, bad input."""

import numpy as np
import pytest

import nn
import tape
from tape import Tape, Variable

EPS = 1e-3


def composed(x, gamma, beta, axes=(0,)):
    mean = tape.mean(x, axis=axes, keepdims=True)
    var = tape.var(x, axis=axes, keepdims=True)
    return (x - mean) / tape.sqrt(var + EPS) * gamma + beta


def fused(x, gamma, beta, axes=(0,)):
    return nn.batch_norm(x, gamma, beta, epsilon=EPS)


@pytest.fixture
def xgb():
    rng = np.random.default_rng(0)
    return rng.standard_normal((7, 4)) * 3 + 1, rng.standard_normal(4), rng.standard_normal(4)


def test_values_match_composition(xgb):
    np.testing.assert_allclose(fused(*xgb).numpy(), composed(*xgb).numpy(), rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_derivatives_match_composition(xgb, order, norm_grads):
    for a, b in zip(norm_grads(fused, *xgb, order), norm_grads(composed, *xgb, order), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_fused_against_finite_differences(xgb, order):
    tape.check_gradients(lambda x, g, b: nn.batch_norm(x, g, b), *xgb, order=order)


def test_feature_axis_and_no_scale_or_shift():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 4, 2))
    tape.check_gradients(lambda x, g: nn.batch_norm(x, g, axis=1), x, rng.standard_normal(2),
                         order=2)
    tape.check_gradients(lambda x: nn.batch_norm(x, axis=(0, -1)), x, order=2)
    y = nn.batch_norm(x, axis=1).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)


def test_float32_stays_float32():
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    gamma = Variable(np.ones(3, np.float32))
    with Tape() as t:
        y = nn.batch_norm(x, gamma)
        loss = tape.sum(y * y)
    assert y.dtype == np.float32 and t.gradient(loss, gamma).dtype == np.float32


def test_running_statistics_are_the_closed_form_ewa():
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((8, 3)) * (i + 1) + i for i in range(4)]
    bn = nn.BatchNorm(momentum=0.9, dtype=np.float64)
    for b in batches:
        bn(b, training=True)
    m = 0.9
    mean = sum((1 - m) * m ** (3 - i) * b.mean(0) for i, b in enumerate(batches))
    var = m ** 4 + sum((1 - m) * m ** (3 - i) * b.var(0) for i, b in enumerate(batches))
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance.numpy(), var, rtol=1e-12)  # biased variance
    x = rng.standard_normal((5, 3))
    expected = (x - mean) / np.sqrt(var + bn.epsilon)
    np.testing.assert_allclose(bn(x).numpy(), expected, rtol=1e-12)  # inference: running stats


def test_inference_gradients_flow_to_gamma_beta_and_input():
    bn = nn.BatchNorm(dtype=np.float64)
    x = np.random.default_rng(4).standard_normal((4, 3))
    bn(x, training=True)
    bn.gamma.assign([1.0, 2.0, 3.0])
    tape.check_gradients(lambda x: bn(x), x)
    with Tape() as t:
        y = tape.sum(bn(x))
    dg, db = t.gradient(y, [bn.gamma, bn.beta])
    np.testing.assert_allclose(db.numpy(), 4.0)
    xhat = (x - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + EPS)
    np.testing.assert_allclose(dg.numpy(), xhat.sum(0))


def test_running_statistics_are_not_recorded():
    bn = nn.BatchNorm()
    x = np.random.default_rng(5).standard_normal((4, 3))
    with Tape() as t:
        y = bn(x, training=True)
    assert [v.name for v in t.watched_variables()] == ["batch_norm/gamma", "batch_norm/beta"]
    assert t.gradient(tape.sum(y), bn.moving_mean) is None
    assert bn.trainable_variables == [bn.gamma, bn.beta]
    assert bn.non_trainable_variables == [bn.moving_mean, bn.moving_variance]


def test_center_scale_off_and_initial_state():
    bn = nn.BatchNorm(center=False, scale=False)
    y = bn(np.array([[1.0, 2.0], [3.0, 6.0]]), training=True)
    assert bn.trainable_variables == []
    np.testing.assert_allclose(y.numpy(), [[-1, -1], [1, 1]], rtol=1e-3)
    fresh = nn.BatchNorm()
    fresh.build((None, 2))
    assert fresh.moving_mean.numpy().tolist() == [0, 0]
    assert fresh.moving_variance.numpy().tolist() == [1, 1]


def test_batch_of_one_in_training_is_an_error_but_inference_works():
    bn = nn.BatchNorm()
    with pytest.raises(ValueError, match=r"more than one value.*\(1, 3\)"):
        bn(np.ones((1, 3)), training=True)
    assert bn(np.ones((1, 3))).shape == (1, 3)


def test_feature_mismatch_and_bad_arguments():
    bn = nn.BatchNorm()
    bn(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(4,\).*built for \(3,\)"):
        bn(np.ones((2, 4)))
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match="out of range"):
        nn.batch_norm(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match="gamma has shape"):
        nn.batch_norm(np.ones((2, 3)), np.ones(2))


def test_persistent_tape_gives_each_gradient_its_own_sums(xgb):
    x, gamma, beta = (tape.constant(v) for v in xgb)
    w1, w2 = np.random.default_rng(6).standard_normal((2, *x.shape))
    for f in (fused, composed):
        with Tape(persistent=True) as t:
            t.watch([x, gamma])
            y = f(x, gamma, beta)
            a, b = tape.sum(y * w1), tape.sum(y * y * w2)
        first, second = t.gradient(a, [x, gamma]), t.gradient(b, [x, gamma])
        if f is fused:
            expected = first, second
        else:
            for got, want in zip(expected[0] + expected[1], first + second, strict=True):
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10)


def test_each_gradient_alone_equals_its_part_of_the_full_gradient(xgb):
    # One rule computes the gradients of x, gamma and beta together; asking for any subset,
    # in any order, on one persistent tape gives the same bits as asking for all three.
    xs = [tape.constant(v) for v in xgb]
    w = np.random.default_rng(7).standard_normal(xs[0].shape)
    with Tape(persistent=True) as t:
        t.watch(xs)
        y = tape.sum(nn.batch_norm(*xs) * w)
    full = [g.numpy() for g in t.gradient(y, xs)]
    for order in ([2], [1], [0], [2, 0], [1, 2], [2, 1, 0]):
        got = t.gradient(y, [xs[i] for i in order])
        for i, g in zip(order, got, strict=True):
            np.testing.assert_array_equal(g.numpy(), full[i])


def test_the_primitive_keeps_its_statistics_as_residuals_not_in_its_parameters(xgb):
    x, gamma, beta = xgb
    g = Variable(gamma)
    with Tape(persistent=True) as t:
        nn.batch_norm(x, g, beta)
    (rec,) = t._records
    assert set(rec.params) == {"axes", "epsilon"}
    xhat, mean, var, rstd = rec.residuals
    np.testing.assert_array_equal(mean, x.mean(axis=0, keepdims=True))
    np.testing.assert_array_equal(rstd, 1 / np.sqrt(var + EPS))


def test_a_pytorch_style_momentum_warns_once_naming_the_convention():
    import warnings
    with pytest.warns(UserWarning, match=r"momentum=0\.1\).*Keras' convention.*weight of the "
                                         r"OLD running value.*PyTorch's momentum=0\.1 is "
                                         r"momentum=0\.9 here") as record:
        nn.BatchNorm(momentum=0.1)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.BatchNorm(momentum=0.9)
        nn.BatchNorm()
