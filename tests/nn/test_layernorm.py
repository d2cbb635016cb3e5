"""Layer norm: the fused primitive against its composition, the layer, bad input."""

import numpy as np
import pytest

import nn
import tape
from tape import Tape, Variable

EPS = 1e-3


def composed(x, gamma, beta, axis=-1):
    mean = tape.mean(x, axis=axis, keepdims=True)
    var = tape.mean((x - mean) ** 2, axis=axis, keepdims=True)
    return (x - mean) / tape.sqrt(var + EPS) * gamma + beta


def fused(x, gamma, beta, axis=-1):
    return nn.layer_norm(x, gamma, beta, axis=axis, epsilon=EPS)


@pytest.fixture
def xgb():
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 4)) * 3 + 1, rng.standard_normal(4), rng.standard_normal(4)


def grads(f, x, gamma, beta, order):
    """First derivatives, or (order 2) gradient of <first derivatives, w> (an HVP)."""
    xs = [tape.constant(v) for v in (x, gamma, beta)]
    w = np.random.default_rng(1).standard_normal(x.shape)
    with Tape() as outer:
        outer.watch(xs)
        with Tape() as inner:
            inner.watch(xs)
            y = tape.sum(f(*xs) * w)
        first = inner.gradient(y, xs)
        total = sum(tape.sum(g * np.cos(np.arange(g.size).reshape(g.shape))) for g in first)
    if order == 1:
        return [g.numpy() for g in first]
    return [g.numpy() for g in outer.gradient(total, xs, unconnected_gradients="zero")]


def test_values_match_composition(xgb):
    np.testing.assert_allclose(fused(*xgb).numpy(), composed(*xgb).numpy(), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("order", [1, 2])
def test_derivatives_match_composition(xgb, order):
    for a, b in zip(grads(fused, *xgb, order), grads(composed, *xgb, order), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_jvp_matches_composition(xgb):
    tangents = [np.random.default_rng(2).standard_normal(np.shape(a)) for a in xgb]
    _, a = tape.jvp(fused, list(xgb), tangents)
    _, b = tape.jvp(composed, list(xgb), tangents)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def test_several_feature_axes_match_composition():
    rng = np.random.default_rng(3)
    x, gamma, beta = (rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4)),
                      rng.standard_normal((2, 4)))

    def spread(v):  # gamma of the features' shape (0, 2) broadcast against x
        return tape.reshape(v, (2, 1, 4))

    for order in (1, 2):
        got = grads(lambda x, g, b: fused(x, g, b, axis=(0, 2)), x, gamma, beta, order)
        want = grads(lambda x, g, b: composed(x, spread(g), spread(b), axis=(0, 2)), x, gamma,
                     beta, order)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_each_example_is_normalized_alone_and_no_scale_or_shift():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5)) * np.arange(1, 7)[:, None]
    y = nn.layer_norm(x, epsilon=0.0).numpy()
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(nn.layer_norm(x[2:3]).numpy(), nn.layer_norm(x).numpy()[2:3])
    tape.check_gradients(lambda x: nn.layer_norm(x), x, order=2)
    tape.check_gradients(lambda x, b: nn.layer_norm(x, None, b), x, rng.standard_normal(5))


def test_the_primitive_keeps_its_statistics_as_residuals(xgb):
    x, gamma, beta = xgb
    with Tape(persistent=True) as t:
        nn.layer_norm(x, Variable(gamma), beta)
    (rec,) = t._records
    assert rec.primitive.name == "nn.layer_norm"
    assert set(rec.params) == {"axes", "epsilon"}
    _, mean, var, rstd = rec.residuals
    np.testing.assert_array_equal(mean, x.sum(axis=1, keepdims=True) / 4)
    np.testing.assert_array_equal(rstd, 1 / np.sqrt(var + EPS))


def test_layer_trains_and_infers_alike_with_keras_defaults():
    ln = nn.LayerNorm()
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    y = ln(x, training=True).numpy()
    assert ln.epsilon == EPS and ln.trainable_variables == [ln.gamma, ln.beta]
    assert ln.non_trainable_variables == [] and y.dtype == np.float32
    np.testing.assert_array_equal(ln(x, training=False).numpy(), y)
    np.testing.assert_array_equal(y, nn.layer_norm(x, np.ones(4, np.float32),
                                                   np.zeros(4, np.float32)).numpy())
    assert nn.LayerNorm(center=False, scale=False)(x).numpy().shape == (3, 4)
    assert nn.LayerNorm(center=False, scale=False).trainable_variables == []


def test_layer_gradients_reach_gamma_and_beta():
    ln = nn.LayerNorm(dtype=np.float64)
    x = np.random.default_rng(6).standard_normal((4, 3))
    with Tape() as t:
        loss = tape.sum(ln(x, training=True) * np.arange(3.0))
    dg, db = t.gradient(loss, [ln.gamma, ln.beta])
    xhat = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + EPS)
    np.testing.assert_array_equal(db.numpy(), [0.0, 4.0, 8.0])
    np.testing.assert_allclose(dg.numpy(), (xhat * np.arange(3.0)).sum(0), rtol=1e-12)


def test_bad_arguments_and_feature_mismatch():
    with pytest.raises(ValueError, match="epsilon must be positive"):
        nn.LayerNorm(epsilon=0)
    with pytest.raises(ValueError, match="out of range"):
        nn.layer_norm(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match=r"layer norm gamma has shape \(2,\).*features of shape "
                                         r"\(3,\)"):
        nn.layer_norm(np.ones((2, 3)), np.ones(2))
    ln = nn.LayerNorm()
    ln(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(4,\).*built for \(3,\)"):
        ln(np.ones((2, 4)))


def test_a_population_with_layer_norm_is_refused_naming_the_layer():
    with pytest.raises(TypeError, match=r"'layer_norm' \(LayerNorm\).*does not support "
                                        r"populations"):
        nn.Population(lambda: nn.Sequential([nn.Dense(4), nn.LayerNorm()]), size=2,
                      seed=0).build((None, 3))
