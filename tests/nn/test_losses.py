"""Losses: the fused softmax cross-entropy against its composition, the others, bad labels."""

import numpy as np
import pytest

import nn
import tape
from tape import Tape

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 4)) * 2
IDS = np.array([0, 3, 1, 1, 2, 0])
ROWS = RNG.dirichlet(np.ones(4), size=6)


def composed(logits, y, reduction="mean", label_smoothing=0.0):
    y = y * (1 - label_smoothing) + label_smoothing / 4
    losses = -tape.sum(y * nn.log_softmax(logits), axis=-1)
    return {"mean": tape.mean, "sum": tape.sum}.get(reduction, lambda v: v)(losses)


def derivatives(f, z, y, order):
    z, y = tape.constant(z), tape.constant(y)
    w = np.random.default_rng(1).standard_normal(z.shape)
    with Tape() as outer:
        outer.watch([z, y])
        with Tape() as inner:
            inner.watch([z, y])
            out = f(z, y)
        first = inner.gradient(out, [z, y])
        total = tape.sum(first[0] * w) + tape.sum(first[1] * w * w)
    result = first if order == 1 else outer.gradient(total, [z, y])
    return [g.numpy() for g in result]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("order", [1, 2])
def test_fused_matches_composition(reduction, smoothing, order):
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    np.testing.assert_allclose(nn.softmax_cross_entropy(LOGITS, ROWS, **kw).numpy(),
                               composed(LOGITS, ROWS, **kw).numpy(), rtol=1e-12)
    fused = derivatives(lambda z, y: nn.softmax_cross_entropy(z, y, **kw), LOGITS, ROWS, order)
    reference = derivatives(lambda z, y: composed(z, y, **kw), LOGITS, ROWS, order)
    for a, b in zip(fused, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_against_finite_differences(order):
    tape.check_gradients(lambda z: nn.softmax_cross_entropy(z, IDS), LOGITS, order=order)
    tape.check_gradients(lambda z, y: nn.softmax_cross_entropy(z, y, reduction="none"),
                         LOGITS, ROWS, order=order)
    tape.check_gradients(lambda z: nn.softmax_cross_entropy(z, IDS, label_smoothing=0.1),
                         LOGITS, order=order)


def test_ids_equal_one_hot_and_gradient_is_softmax_minus_labels():
    one_hot = np.eye(4)[IDS]
    z = tape.constant(LOGITS)
    with Tape() as t:
        t.watch(z)
        loss = nn.softmax_cross_entropy(z, IDS)
    assert float(loss) == pytest.approx(float(nn.softmax_cross_entropy(LOGITS, one_hot)))
    p = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    np.testing.assert_allclose(t.gradient(loss, z).numpy(), (p - one_hot) / 6, rtol=1e-12)
    assert float(nn.softmax_cross_entropy(LOGITS, np.eye(4, dtype=int)[IDS])) == float(loss)


def test_stable_for_huge_logits_and_float32():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32)
    loss = nn.softmax_cross_entropy(z, np.array([0, 2]), reduction="none")
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.numpy(), [0.0, np.log(3)], rtol=1e-6)
    np.testing.assert_allclose(nn.softmax(z).numpy().sum(1), 1, rtol=1e-6)
    assert np.isfinite(nn.log_softmax(z).numpy()).all()


def test_nan_logits_give_nan_loss():
    z = LOGITS.copy()
    z[2, 1] = np.nan
    assert np.isnan(float(nn.softmax_cross_entropy(z, IDS)))


@pytest.mark.parametrize("labels, pattern", [
    (np.array([0, 1, 2, 3, 4, 0]), r"\[0, 4\).*4 at flat index 4"),
    (np.array([0, -1, 2, 3, 1, 0]), r"\[0, 4\).*-1"),
    (np.array([0, 1, 2]), r"labels hold 3 examples.*\(3,\).*logits hold 6.*\(6, 4\)"),
    (IDS.astype(float), r"shape \(6,\) and dtype float64.*integers in \[0, 4\)"),
    (IDS[:, None], r"\(6, 1\).*class ids of shape \(6,\)"),
    (np.ones((6, 4), int), r"not one-hot"),
])
def test_bad_labels(labels, pattern):
    with pytest.raises(ValueError, match=pattern):
        nn.softmax_cross_entropy(LOGITS, labels)


def test_probability_rows_within_the_tolerance_are_accepted(rng):
    # Rows must sum to one within 1e-3: float16 rounding fits, so do exact one-hot rows.
    near = ROWS + np.array([9e-4, 0, 0, 0])
    rows16 = rng.dirichlet(np.ones(10), size=64).astype(np.float16)
    assert np.abs(rows16.astype(float).sum(1) - 1).max() > 0  # rounding is there
    z16 = rng.standard_normal((64, 10)).astype(np.float16)
    for logits, labels in ((LOGITS, near), (LOGITS, np.eye(4)[IDS]), (z16, rows16),
                           (LOGITS, tape.constant(ROWS))):
        assert np.isfinite(float(nn.softmax_cross_entropy(logits, labels)))
    with pytest.raises(ValueError, match=r"1 of 6 rows have a sum other than 1"):
        nn.softmax_cross_entropy(LOGITS, ROWS + np.array([[1.1e-3, 0, 0, 0]] + [[0] * 4] * 5))


def test_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        nn.softmax_cross_entropy(LOGITS, IDS, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.softmax_cross_entropy(LOGITS, IDS, label_smoothing=2)
    with pytest.raises(ValueError, match="logits"):
        nn.softmax_cross_entropy(np.arange(3), IDS)


def test_sigmoid_binary_cross_entropy():
    z = np.array([-1e4, -2.0, 0.0, 3.0, 1e4])
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    expected = np.logaddexp(0, z) - z * y
    np.testing.assert_allclose(
        nn.sigmoid_binary_cross_entropy(z, y, reduction="none").numpy(), expected)
    x = tape.constant(z)
    with Tape() as t:
        t.watch(x)
        loss = nn.sigmoid_binary_cross_entropy(x, y, reduction="sum")
    np.testing.assert_allclose(t.gradient(loss, x).numpy(), 0.5 + 0.5 * np.tanh(z / 2) - y)
    tape.check_gradients(lambda z, y: nn.sigmoid_binary_cross_entropy(z, y), LOGITS, ROWS,
                         order=2)
    with pytest.raises(ValueError, match=r"\(5,\).*\(5, 1\)"):
        nn.sigmoid_binary_cross_entropy(z, y[:, None])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.sigmoid_binary_cross_entropy(z, y + 1)


def test_mean_squared_error():
    p, y = LOGITS, ROWS
    assert float(nn.mean_squared_error(p, y)) == pytest.approx(np.mean((p - y) ** 2))
    np.testing.assert_allclose(nn.mean_squared_error(p, y, reduction="none").numpy(),
                               np.mean((p - y) ** 2, axis=1))
    assert float(nn.mean_squared_error(p, y, reduction="sum")) == pytest.approx(
        np.sum((p - y) ** 2))
    tape.check_gradients(lambda p: nn.mean_squared_error(p, y), p, order=2)
    with pytest.raises(ValueError, match=r"\(6, 4\).*\(6,\)"):
        nn.mean_squared_error(p, y[:, 0])


def test_softmax_regression_with_two_classes_is_logistic_regression():
    """Softmax with C=2 sees only z1 - z0: trained from zeros with learning rate a, it makes
    exactly the predictions of logistic regression trained with learning rate 2a."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((40, 3))
    y = (X @ [1.0, -2.0, 0.5] + 0.3 * rng.standard_normal(40) > 0).astype(int)
    W, b = tape.Variable(np.zeros((3, 2))), tape.Variable(np.zeros(2))
    w, c = tape.Variable(np.zeros(3)), tape.Variable(0.0)
    for _ in range(50):
        with Tape() as t:
            loss = nn.softmax_cross_entropy(X @ W + b, y)
        for v, g in zip((W, b), t.gradient(loss, [W, b]), strict=True):
            v.assign_sub(0.5 * g)
        with Tape() as t:
            loss = nn.sigmoid_binary_cross_entropy(X @ w + c, y)
        for v, g in zip((w, c), t.gradient(loss, [w, c]), strict=True):
            v.assign_sub(1.0 * g)
    p_softmax = nn.softmax(X @ W + b).numpy()[:, 1]
    p_logistic = nn.sigmoid(X @ w + c).numpy()
    np.testing.assert_allclose(p_softmax, p_logistic, rtol=1e-10)
    assert np.array_equal(p_softmax > 0.5, p_logistic > 0.5)
    assert nn.accuracy(X @ W + b, y) == nn.accuracy(X @ w + c, y) > 0.9


def test_label_gradient_alone_equals_its_part_of_both_and_params_hold_no_cache():
    z, y = tape.constant(LOGITS), tape.constant(ROWS)
    with Tape(persistent=True) as t:
        t.watch([z, y])
        loss = nn.softmax_cross_entropy(z, y, label_smoothing=0.2)
    both = [g.numpy() for g in t.gradient(loss, [z, y])]
    np.testing.assert_array_equal(t.gradient(loss, y).numpy(), both[1])
    np.testing.assert_array_equal(t.gradient(loss, z).numpy(), both[0])
    (rec,) = t._records
    assert set(rec.params) == {"reduction", "smoothing"}
    p, log_p, rows = rec.residuals
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(rows, ROWS * 0.8 + 0.2 / 4)


# -- a softmax applied twice ---------------------------------------------------------------------
def test_probabilities_given_as_logits_warn_once_naming_the_fix(monkeypatch):
    import warnings

    from nn import losses
    monkeypatch.setattr(losses, "_warned_probabilities", False)
    model = nn.Dense(3, activation="softmax", seed=0)
    x, y = np.ones((8, 4)), np.zeros(8, int)
    with pytest.warns(UserWarning, match=r"rows are already probabilities.*drop "
                                         r"activation='softmax'") as record:
        nn.softmax_cross_entropy(model(x), y)
        nn.softmax_cross_entropy(model(x), y)  # once
    assert len(record) == 1 and record[0].filename == __file__
    monkeypatch.setattr(losses, "_warned_probabilities", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.softmax_cross_entropy(nn.Dense(3, seed=0)(x), y)  # logits: no warning
        nn.softmax_cross_entropy(np.zeros((8, 1)), np.zeros(8, int))  # one class: no check


def test_the_double_softmax_check_runs_on_every_replay_of_a_traced_step(monkeypatch):
    import tape
    from nn import losses
    monkeypatch.setattr(losses, "_warned_probabilities", False)
    step = tape.function(lambda z, y: nn.softmax_cross_entropy(z, y))
    labels = np.zeros(4, int)
    step(np.random.default_rng(0).normal(size=(4, 3)), labels)  # traced on real logits
    assert not losses._warned_probabilities
    with pytest.warns(UserWarning, match="already probabilities"):
        step(np.full((4, 3), 1 / 3), labels)  # replayed, the same trace
    assert step.trace_count == 1


# -- the raw-array kernels compute the same bits as the plain formulas -------------------------
def _reference_forward(logits, labels, reduction, smoothing):
    """The kernels' formulas written plainly (one-hot rows from np.eye, reductions along the
    last axis): (loss, softmax, log_softmax, target rows or None)."""
    log_p = logits - np.maximum.reduce(logits, axis=-1, keepdims=True)
    e = np.exp(log_p)
    s = np.add.reduce(e, axis=-1, keepdims=True)
    log_p -= np.log(s)
    p = np.divide(e, s, out=e)
    y = None
    if labels.dtype.kind in "iu" and not smoothing:
        rows = log_p.reshape(-1, log_p.shape[-1])
        losses = -rows[np.arange(len(rows)), labels.reshape(-1)].reshape(labels.shape)
    else:
        y = np.eye(logits.shape[-1], dtype=logits.dtype)[labels] if labels.dtype.kind in "iu" \
            else labels
        if smoothing:
            y = y * (1 - smoothing) + smoothing / logits.shape[-1]
        losses = -np.add.reduce(y * log_p, axis=-1)
    if reduction != "none":
        total = np.add.reduce(losses, axis=None)
        losses = total if reduction == "sum" else total / max(losses.size, 1)
    return losses, p, log_p, y


def _reference_grads(g, logits, labels, reduction, smoothing):
    _, p, log_p, y = _reference_forward(logits, labels, reduction, smoothing)
    if reduction == "none":
        upstream = np.expand_dims(g, -1)
    else:
        upstream = g / (logits.size // logits.shape[-1]) if reduction == "mean" else g
    if y is None:
        y = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
    if labels.dtype.kind not in "iu":
        p = p * np.sum(y, axis=-1, keepdims=True)
    return (p - y) * upstream, -(1 - smoothing) * log_p * upstream


def _assert_same_bits(actual, expected):
    """Equal values, dtypes and shapes, and equal signs of zeros (-0.0 == 0.0 otherwise)."""
    np.testing.assert_array_equal(actual, expected, strict=True)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 4), (64, 10), (1500, 3), (5, 8, 7), (40, 32), (8, 40)])
@pytest.mark.parametrize("kind", ["ids", "rows"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_kernels_compute_the_bits_of_the_plain_formulas(dtype, shape, kind, smoothing, reduction):
    from nn import losses
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    logits.flat[::7] = logits.flat[1::7]  # ties for the row maxima
    rows = logits.reshape(-1, shape[-1])  # a view: rows whose maximum is a tie of 0.0 and -0.0
    rows[1:3] = -np.abs(rows[1:3])
    rows[1, :2], rows[2, :2] = (0.0, -0.0), (-0.0, 0.0)
    if kind == "ids":
        labels = rng.integers(0, shape[-1], shape[:-1])
    else:
        labels = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(dtype)
    checked = losses._check_labels(logits, labels)
    assert checked is labels if kind == "ids" else checked.dtype == dtype
    loss, (p, log_p, y) = losses._xent_forward(logits, checked, reduction=reduction,
                                               smoothing=smoothing)
    ref_loss, ref_p, ref_log_p, ref_y = _reference_forward(logits, checked, reduction, smoothing)
    _assert_same_bits(loss, ref_loss)
    _assert_same_bits(p, ref_p)
    _assert_same_bits(log_p, ref_log_p)
    assert (y is None) == (ref_y is None)
    for g in (np.ones_like(ref_loss), (np.ones_like(ref_loss) * 0.37).astype(ref_loss.dtype)):
        d_logits, d_labels = losses._xent_grads([0, 1], g, loss, (p, log_p, y), logits, checked,
                                                reduction=reduction, smoothing=smoothing)
        ref_d_logits, ref_d_labels = _reference_grads(g, logits, checked, reduction, smoothing)
        _assert_same_bits(d_logits, ref_d_logits)
        _assert_same_bits(d_labels, ref_d_labels)
    # the residuals stay untouched by the gradient (a persistent tape asks again)
    _assert_same_bits(p, ref_p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eager_loss_and_gradient_equal_the_plain_formulas(dtype):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((64, 10)).astype(dtype)
    ids = rng.integers(0, 10, 64)
    z = tape.constant(logits)
    with Tape() as t:
        t.watch(z)
        loss = nn.softmax_cross_entropy(z, ids)
    ref_loss = _reference_forward(logits, ids, "mean", 0.0)[0]
    _assert_same_bits(loss.numpy(), ref_loss)
    g = t.gradient(loss, z).numpy()
    _assert_same_bits(g, _reference_grads(np.ones_like(ref_loss), logits, ids, "mean", 0.0)[0])


@pytest.mark.parametrize("shape", [(4,), (6, 4), (2, 3, 4), (64, 10)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_double_softmax_check_samples_the_first_rows_of_any_shape(monkeypatch, shape, dtype):
    import warnings

    from nn import losses
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(dtype)
    ids = np.zeros(shape[:-1], int)
    monkeypatch.setattr(losses, "_warned_probabilities", False)
    with pytest.warns(UserWarning, match="already probabilities"):
        nn.softmax_cross_entropy(probabilities, ids)
    rows = probabilities.reshape(-1, shape[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for row, column, value in ((0, 0, 1.5), (0, -1, -0.1), (0, 1, np.nan),
                                   (min(3, len(rows) - 1), 2, -0.1)):
            monkeypatch.setattr(losses, "_warned_probabilities", False)
            changed = rows.copy()
            changed[row, column] = value  # one value outside [0, 1] (or NaN) in the sample
            nn.softmax_cross_entropy(changed.reshape(shape), ids)
    if len(rows) > losses._SAMPLED_ROWS:  # rows past the sample are not looked at
        changed = rows.copy()
        changed[-1] = 5
        monkeypatch.setattr(losses, "_warned_probabilities", False)
        with pytest.warns(UserWarning, match="already probabilities"):
            nn.softmax_cross_entropy(changed.reshape(shape), ids)


@pytest.mark.parametrize("dtype", ["i1", "i2", "i4", "i8", ">i8", "u1", "u2", "u8", ">u4"])
@pytest.mark.parametrize("classes", [3, 127, 200, 300])
def test_class_ids_of_any_integer_dtype_are_range_checked(dtype, classes):
    from nn import losses
    logits = np.zeros((4, classes))
    top = min(classes - 1, np.iinfo(np.dtype(dtype)).max)
    fine = np.array([0, 1, top, 2], dtype=dtype)
    assert losses._check_labels(logits, fine) is fine
    bad_values = [-1, np.iinfo(np.dtype(dtype)).min] if np.dtype(dtype).kind == "i" else []
    if classes <= np.iinfo(np.dtype(dtype)).max:
        bad_values.append(classes)
    for bad in bad_values:
        labels = np.array([0, bad, 1, 2], dtype=dtype)
        with pytest.raises(ValueError, match=rf"\[0, {classes}\).*{bad} at flat index 1"):
            nn.softmax_cross_entropy(logits, labels)
    labels = np.array([[0, 1], [2, 0]], dtype=dtype)[:, ::-1]  # strided ids of a 2-d batch
    assert losses._check_labels(np.zeros((2, 2, classes)), labels) is labels
