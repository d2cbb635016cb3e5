"""Batch norm: the fused primitive against its composition, running statistics, bad input."""

import math

import numpy as np
import pytest

import nn
import tape
from nn.layers.batchnorm import (
    _forward,
    batch_norm_vjp,
    feature_axes,
    normalize,
    per_feature,
    scale_shift,
)
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


# The raw-array kernels before their straight-line branches, composed the old way from the
# shared helpers (`normalize`, `scale_shift`, `per_feature`): the straight-line code must give
# the same bits.
def old_forward(x, gamma, beta, axes, epsilon):
    residuals = normalize(x, axes, epsilon)
    return scale_shift(residuals[0], gamma, beta, x, axes), residuals


def old_vjp(needed, g, residuals, x, gamma, beta, axes, total=None):
    """`total(a)`: the sum over `axes`, keepdims (by default `a.sum`)."""
    total = total or (lambda a: a.sum(axis=axes, keepdims=True))
    xhat, _, _, rstd = residuals
    g_xhat = total(g * xhat)
    g_sum = total(g)
    n = math.prod(x.shape[a] for a in axes)
    scale = rstd / n if gamma is None else per_feature(gamma, x, axes) * (rstd / n)
    dx = g * n
    dx -= g_sum
    dx -= xhat * g_xhat
    dx *= scale
    return (dx if 0 in needed else None, g_xhat.reshape(gamma.shape) if 1 in needed else None,
            g_sum.reshape(beta.shape) if 2 in needed else None)


def old_update(running, batch, momentum):
    delta = np.subtract(np.asarray(running), batch)
    delta *= 1 - momentum
    return np.subtract(running, delta)


def assert_same(a, b):
    if a is None or b is None:
        assert a is None and b is None
        return
    assert type(a) is type(b) and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b, strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "axis"), [((64, 32), -1), ((7, 5), -1), ((2, 3), 1),
                                             ((6, 3, 4), (1, 2)), ((5, 3, 4), 1), ((9, 4), 0),
                                             ((4, 3, 2), (0, 2))])
@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
def test_raw_kernels_give_the_bits_of_the_composed_formulas(dtype, shape, axis, affine):
    rng = np.random.default_rng([*shape, len(affine)])
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    axes, kept = feature_axes(x.ndim, axis)
    features = tuple(shape[a] for a in kept)
    gamma = rng.standard_normal(features).astype(dtype) if affine in ("both", "gamma") else None
    beta = rng.standard_normal(features).astype(dtype) if affine in ("both", "beta") else None
    assert_kernels_match(
        x, gamma, beta, axes, rng,
        lambda: old_forward(x, gamma, beta, axes, EPS),
        lambda needed, g, res: old_vjp(needed, g, res, x, gamma, beta, axes))


def assert_kernels_match(x, gamma, beta, axes, rng, forward_before, vjp_before):
    """`_forward` and `batch_norm_vjp` (for each choice of wanted gradients) give the bits of
    `forward_before()` and `vjp_before(needed, g, residuals)`."""
    y, res = _forward(x, gamma, beta, axes=axes, epsilon=EPS)
    y_old, res_old = forward_before()
    for a, b in zip((y, *res), (y_old, *res_old), strict=True):
        assert_same(a, b)
    g = rng.standard_normal(x.shape).astype(x.dtype)
    wanted = [0] + [i for i, v in ((1, gamma), (2, beta)) if v is not None]
    for needed in ([0], wanted, wanted[1:], [i for i in wanted if i != 0][:1]):
        if not needed:
            continue
        got = batch_norm_vjp(needed, g, y, res, x, gamma, beta, axes=axes, epsilon=EPS)
        for a, b in zip(got, vjp_before(needed, g, res_old), strict=True):
            assert_same(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_running_statistics_update_gives_the_bits_of_the_composed_formula(dtype):
    rng = np.random.default_rng(11)
    bn = nn.BatchNorm(momentum=0.93, dtype=dtype)
    bn.build((None, 5))
    for step in range(3):
        x = (rng.standard_normal((16, 5)) * (step + 2) + step).astype(dtype)
        mean_before = bn.moving_mean.numpy().copy()
        var_before = bn.moving_variance.numpy().copy()
        bn(x, training=True)
        batch_mean = x.sum(axis=0, keepdims=True) / len(x)
        xc = x - batch_mean
        batch_var = (xc * xc).sum(axis=0, keepdims=True) / len(x)
        assert_same(bn.moving_mean.numpy(), old_update(mean_before, batch_mean[0], 0.93))
        assert_same(bn.moving_variance.numpy(), old_update(var_before, batch_var[0], 0.93))


def test_raw_kernels_keep_integer_and_mixed_dtype_inputs_as_before():
    rng = np.random.default_rng(12)
    x = rng.integers(-50, 50, (40, 6))
    gamma = rng.standard_normal(6)
    y, res = _forward(x, gamma, None, axes=(0,), epsilon=EPS)
    y_old, res_old = old_forward(x, gamma, None, (0,), EPS)
    assert y.dtype == np.float64
    for a, b in zip((y, *res), (y_old, *res_old), strict=True):
        assert_same(a, b)
    x32 = x.astype(np.float32)
    y, res = _forward(x32, gamma, None, axes=(0,), epsilon=EPS)
    g = rng.standard_normal((40, 6)).astype(np.float32)
    got = batch_norm_vjp([0, 1], g, y, res, x32, gamma, None, axes=(0,), epsilon=EPS)
    want = old_vjp([0, 1], g, res, x32, gamma, None, (0,))
    assert got[0].dtype == np.float32  # g's dtype (scaled in place by the float64 scale)
    for a, b in zip(got, want, strict=True):
        assert_same(a, b)


# A population's (K, B, F) kernels before their straight-line branches: einsum sums over the
# batch axis 1 (rows added in order) and (K, 1, F) per-feature operands broadcast.
def population_forward_before(x, gamma, beta, epsilon):
    n = x.shape[1]
    mean = np.einsum("kbf->kf", x)[:, None, :] / n
    xhat = x - mean
    var = np.einsum("kbf,kbf->kf", xhat, xhat)[:, None, :] / n
    rstd = 1 / np.sqrt(var + epsilon)
    xhat *= rstd
    if gamma is None:
        y = xhat if beta is None else xhat + beta[:, None, :]
    else:
        y = xhat * gamma[:, None, :]
        if beta is not None:
            y += beta[:, None, :]
    return y, (xhat, mean, var, rstd)


def population_vjp_before(needed, g, residuals, gamma, beta):
    """`old_vjp` with einsum sums (the einsum of the product: each product rounded, then
    added in order, as `g * x_hat` then summed)."""
    return old_vjp(needed, g, residuals, g, gamma, beta, (1,),
                   total=lambda a: np.einsum("kbf->kf", a)[:, None, :])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(32, 64, 64), (32, 64, 32), (3, 5, 7), (1, 2, 1),
                                   (2, 9, 300), (2, 3, 1030)])
@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none", "wide gamma"])
def test_population_kernels_give_the_bits_of_the_broadcast_formulas(dtype, shape, affine):
    rng = np.random.default_rng([*shape, len(affine)])
    k, _, f = shape
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gamma = rng.standard_normal((k, f)).astype(dtype) if affine != "beta" else None
    if affine == "none":
        gamma = None
    if affine == "wide gamma":  # a float64 gamma with float32 inputs widens y and dx
        gamma = gamma.astype(np.float64)
    beta = rng.standard_normal((k, f)).astype(dtype) if affine in ("both", "beta") else None
    assert_kernels_match(
        x, gamma, beta, (1,), rng,
        lambda: population_forward_before(x, gamma, beta, EPS),
        lambda needed, g, res: population_vjp_before(needed, g, res, gamma, beta))
