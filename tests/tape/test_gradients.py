"""Every primitive's gradient rule against central differences, shapes drawn by Hypothesis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nn  # registers the fused primitives of nn, which the table covers too
import tape

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
pair_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4)


def values(draw, shape, low=-2.0, high=2.0, away_from=None):
    """Floats in [low, high]; with `away_from`, kept at least 0.1 from those points."""
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(low, high, width=64)))
    for point in away_from or ():
        close = np.abs(x - point) < 0.1
        x = np.where(close, point + np.where(x >= point, 0.1, -0.1) + 0.05 * np.sign(x - point
                                                                                      + 1e-9), x)
    return x


def distinct(draw, shape):
    """Values whose pairwise gaps exceed 0.1 (max/min/maximum are smooth there)."""
    n = int(np.prod(shape))
    perm = draw(st.permutations(range(n)))
    return (np.array(perm, dtype=np.float64) * 0.3 - 0.15 * n).reshape(shape)


@st.composite
def unary(draw, low=-2.0, high=2.0, away_from=None):
    return (values(draw, draw(shapes), low, high, away_from),)


@st.composite
def binary(draw, low=(-2.0, -2.0), high=(2.0, 2.0)):
    (sx, sy), _ = draw(pair_shapes)
    return values(draw, sx, low[0], high[0]), values(draw, sy, low[1], high[1])


@st.composite
def reduction(draw, unique=False, min_count=1):
    shape = draw(shapes.filter(lambda s: np.prod(s) >= min_count))
    x = distinct(draw, shape) if unique else values(draw, shape)
    ndim = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1) if ndim else st.none(),
        st.lists(st.integers(0, ndim - 1), unique=True, min_size=1).map(tuple) if ndim
        else st.none(),
    ))
    reduced = shape if axis is None else np.take(shape, axis)
    if np.prod(reduced) < min_count:
        axis = None
    return x, axis, draw(st.booleans())


@st.composite
def matmul_args(draw):
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    a_shape = draw(st.sampled_from([(k,), batch.input_shapes[0] + (n, k)]))
    b_shape = draw(st.sampled_from([(k,), batch.input_shapes[1] + (k, m)]))
    return values(draw, a_shape), values(draw, b_shape)


@st.composite
def getitem_args(draw):
    x = values(draw, draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)))
    index = draw(st.sampled_from(["int", "slice", "negative", "advanced", "mixed", "ellipsis"]))
    n = x.shape[0]
    return x, {
        "int": 0, "slice": slice(None, None, 2), "negative": -1,
        "advanced": np.array([0, n - 1, 0]),  # repeated index: gradients accumulate
        "mixed": (np.array([n - 1, 0, n - 1]), Ellipsis),
        "ellipsis": (Ellipsis, 0),
    }[index]


@st.composite
def axis_arrays(draw, count, same_shape):
    base = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = draw(st.integers(-len(base), len(base) - 1))
    arrays = []
    for _ in range(count):
        shape = list(base)
        if not same_shape:
            shape[axis] = draw(st.integers(1, 3))
        arrays.append(values(draw, tuple(shape)))
    return arrays, axis


def _checkerboard(x, y):
    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    return np.indices(shape).sum(axis=0) % 2 == 0


def _reduce(op):
    return lambda axis, keepdims: lambda v: op(v, axis=axis, keepdims=keepdims)


@st.composite
def batch_norm_args(draw):
    batch, features = draw(st.integers(2, 5)), draw(st.integers(1, 3))
    x = distinct(draw, (batch, features))  # spread out: the batch variance is not tiny
    return x, values(draw, (features,)), values(draw, (features,))


@st.composite
def layer_norm_args(draw):
    """(x, gamma, beta): x of shape (rows, features, 2), normalized over its middle axis."""
    rows, features = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    x = distinct(draw, (rows, features, 2))  # spread out: no example has a tiny variance
    return x, values(draw, (features,)), values(draw, (features,))


@st.composite
def xent_args(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=2, max_side=4))
    weights = values(draw, shape, 0.1, 1.0)
    return values(draw, shape, -3.0, 3.0), weights / weights.sum(-1, keepdims=True)  # rows


@st.composite
def norm_args(draw):
    """Values away from 0 with distinct magnitudes, row 0 and column 0 dominant (the maxima
    of the 1 and inf norms are unique), and an (ord, axis) that suits them."""
    x = distinct(draw, draw(st.sampled_from([(3,), (2, 3), (3, 2)]))) + 0.1
    x[:1] += 5 * np.sign(x[:1])
    if x.ndim == 2:
        x[:, :1] += 5 * np.sign(x[:, :1])
    if x.ndim == 1:
        return x, draw(st.sampled_from([(None, None), (2, 0), (1, None), (np.inf, -1)]))
    return x, draw(st.sampled_from([(None, None), (None, 1), (2, 0), (1, 1), (np.inf, 0),
                                    ("fro", None), (1, None), (np.inf, None),
                                    (1, (1, 0)), (None, (0, 1))]))


@st.composite
def same_shape_pair(draw):
    shape = draw(shapes)
    return values(draw, shape), values(draw, shape)


@tape.custom_gradient
def scaled_exp(x, y):
    """x * exp(y) for same-shaped x and y, with a hand-written gradient for both."""
    e = tape.exp(y)
    out = x * e
    return out, lambda g: (g * e, g * out)


@scaled_exp.defjvp
def _scaled_exp_jvp(primals, tangents):
    x, y = primals
    return (tangents[0] + x * tangents[1]) * tape.exp(y)


# name -> (strategy drawing the case, case -> (function of the differentiable args, args))
CASES = {
    "add": (binary(), lambda c: (lambda x, y: x + y, c)),
    "subtract": (binary(), lambda c: (lambda x, y: x - y, c)),
    "multiply": (binary(), lambda c: (lambda x, y: x * y, c)),
    "divide": (binary(low=(-2, 0.5)), lambda c: (lambda x, y: x / y, c)),
    "power": (binary(low=(0.5, -2)), lambda c: (lambda x, y: x ** y, c)),
    "negative": (unary(), lambda c: (lambda x: -x, c)),
    "identity": (unary(), lambda c: (tape.identity, c)),
    "cast": (unary(), lambda c: (lambda x: tape.cast(x, np.float64), c)),
    "exp": (unary(), lambda c: (tape.exp, c)),
    "log": (unary(low=0.2), lambda c: (tape.log, c)),
    "log1p": (unary(low=-0.8), lambda c: (tape.log1p, c)),
    "sqrt": (unary(low=0.2), lambda c: (tape.sqrt, c)),
    "square": (unary(), lambda c: (tape.square, c)),
    "sin": (unary(), lambda c: (tape.sin, c)),
    "cos": (unary(), lambda c: (tape.cos, c)),
    "tanh": (unary(), lambda c: (tape.tanh, c)),
    "erf": (unary(), lambda c: (tape.erf, c)),
    "sigmoid": (unary(-6, 6), lambda c: (tape.sigmoid, c)),
    "relu": (unary(away_from=[0.0]), lambda c: (tape.relu, c)),
    "abs": (unary(away_from=[0.0]), lambda c: (tape.abs, c)),
    "maximum": (binary(low=(-2, 2.5), high=(2, 4)), lambda c: (tape.maximum, c[::-1])),
    "minimum": (binary(low=(-2, 2.5), high=(2, 4)), lambda c: (tape.minimum, c)),
    "where": (binary(), lambda c: (lambda x, y: tape.where(_checkerboard(x, y), x, y), c)),
    "clip": (unary(away_from=[-0.5, 0.7]), lambda c: (lambda x: tape.clip(x, -0.5, 0.7), c)),
    "sum": (reduction(), lambda c: (_reduce(tape.sum)(c[1], c[2]), c[:1])),
    "mean": (reduction(), lambda c: (_reduce(tape.mean)(c[1], c[2]), c[:1])),
    "max": (reduction(unique=True), lambda c: (_reduce(tape.max)(c[1], c[2]), c[:1])),
    "min": (reduction(unique=True), lambda c: (_reduce(tape.min)(c[1], c[2]), c[:1])),
    "var": (reduction(), lambda c: (_reduce(tape.var)(c[1], c[2]), c[:1])),
    "std": (reduction(unique=True, min_count=2), lambda c: (_reduce(tape.std)(c[1], c[2]), c[:1])),
    "logsumexp": (reduction(), lambda c: (_reduce(tape.logsumexp)(c[1], c[2]), c[:1])),
    "matmul": (matmul_args(), lambda c: (tape.matmul, c)),
    "norm": (norm_args(), lambda c: (lambda x: tape.norm(x, *c[1]), c[:1])),
    "reshape": (unary(), lambda c: (lambda x: tape.reshape(x, (-1,)), c)),
    "transpose": (unary(), lambda c: (tape.transpose, c)),
    "expand_dims": (unary(), lambda c: (lambda x: tape.expand_dims(x, -1), c)),
    "squeeze": (unary(), lambda c: (lambda x: tape.squeeze(tape.expand_dims(x, 0), 0), c)),
    "broadcast_to": (unary(), lambda c: (lambda x: tape.broadcast_to(x, (2,) + np.shape(x)),
                                         c)),
    "sum_to": (unary(), lambda c: (lambda x: tape.sum_to(x, np.shape(x)[1:]), c)),
    "concatenate": (axis_arrays(3, same_shape=False),
                    lambda c: (lambda *xs: tape.concatenate(xs, axis=c[1]), c[0])),
    "stack": (axis_arrays(2, same_shape=True),
              lambda c: (lambda *xs: tape.stack(xs, axis=c[1]), c[0])),
    "getitem": (getitem_args(), lambda c: (lambda x: x[c[1]], c[:1])),
    "scatter_add": (getitem_args(), lambda c: (
        lambda g: tape.scatter_add(g, c[1], c[0].shape), (np.asarray(c[0][c[1]]),))),
    "custom_gradient": (same_shape_pair(), lambda c: (scaled_exp, c)),
    "nn.batch_norm": (batch_norm_args(), lambda c: (nn.batch_norm, c)),
    "nn.layer_norm": (layer_norm_args(), lambda c: (
        lambda x, g, b: nn.layer_norm(x, g, b, axis=1), c)),
    "nn.softmax_cross_entropy": (xent_args(), lambda c: (
        lambda z, y: nn.softmax_cross_entropy(z, y, label_smoothing=0.1), c)),
}


def test_every_registered_primitive_has_a_gradient_case():
    missing = set(tape.PRIMITIVES) - set(CASES)
    assert not missing, f"primitives with no entry in the gradient table: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    strategy, build = CASES[name]

    @SETTINGS
    @given(strategy)
    def check(case):
        fn, args = build(case)
        tape.check_gradients(fn, *args)

    check()


@pytest.mark.parametrize("name", sorted(CASES))
def test_jvp_matches_finite_differences_and_reverse_mode(name):
    strategy, build = CASES[name]

    @SETTINGS
    @given(strategy)
    def check(case):
        fn, args = build(case)
        tape.check_jvps(fn, *args)

    check()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_have_the_source_dtype(dtype):
    w = tape.Variable(np.ones(3, dtype))
    with tape.Tape() as t:
        y = tape.sum(w * np.float64(2.0) + np.ones(3))
    assert t.gradient(y, w).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape, like", [((64, 10), (10,)), ((7, 3, 5), (3, 5)), ((4, 6), (1, 6)),
                                         ((4, 6), (4, 1)), ((2, 4, 6), (6,)), ((5,), ())])
def test_unbroadcast_sums_bit_for_bit_as_sum_to_raw(dtype, shape, like):
    from tape.ops._util import sum_to_raw
    g = np.random.default_rng(0).standard_normal(shape).astype(dtype) * 10
    out = tape.unbroadcast(g, np.zeros(like, dtype))
    expected = sum_to_raw(g, like)
    np.testing.assert_array_equal(out, expected, strict=True)
    assert type(out) is type(expected) and out.shape == like
