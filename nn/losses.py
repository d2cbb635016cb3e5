"""Losses, prediction first: `loss(logits_or_predictions, labels, *, reduction="mean")`.

`softmax_cross_entropy` is one fused primitive whose gradient is the course's
`dz = (y_hat - y) / m`; the others are composed from tape's primitives.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

import tape
from nn.layers.activations import softplus
from tape import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(losses: Any, reduction: str) -> Any:
    if reduction == "mean":
        return tape.mean(losses)
    return tape.sum(losses) if reduction == "sum" else losses


def _as_value(x: Any) -> Any:
    return x if isinstance(x, Tensor) else np.asarray(x)


# ---- softmax cross-entropy: the fused primitive ---------------------------------------------
_CACHED_EYE_CLASSES = 256  # identity matrices kept for reuse: at most 512 KB each


@functools.lru_cache(maxsize=16)
def _eye(classes: int, dtype: np.dtype) -> np.ndarray:
    """`np.eye(classes, dtype=dtype)`, built once per class count and dtype (read-only)."""
    eye = np.eye(classes, dtype=dtype)
    eye.flags.writeable = False
    return eye


def _targets(labels: Any, like: Any, smoothing: float) -> Any:
    """Target rows: one-hot rows for class ids, then label smoothing."""
    if labels.dtype.kind in "iu":
        classes = like.shape[-1]
        eye = (_eye(classes, like.dtype) if classes <= _CACHED_EYE_CLASSES
               else np.eye(classes, dtype=like.dtype))
        y = eye.take(labels, axis=0)  # eye[labels], a new array, without indexing's overhead
    else:
        y = labels
    return y if not smoothing else y * (1 - smoothing) + smoothing / like.shape[-1]


@functools.lru_cache(maxsize=64)
def _arange(n: int) -> np.ndarray:
    """`np.arange(n)`, built once per `n` (read-only): the row indices of `_pick`."""
    rows = np.arange(n)
    rows.flags.writeable = False
    return rows


def _pick(a: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """`a[..., ids]` along the last axis, one entry per row."""
    if a.ndim == 2:
        return a[_arange(len(a)), ids]
    rows = a.reshape(-1, a.shape[-1])
    return rows[_arange(len(rows)), ids.reshape(-1)].reshape(ids.shape)


def _row_max(a: np.ndarray) -> np.ndarray:
    """`np.maximum.reduce(a, axis=-1, keepdims=True)`. NumPy spends ~40-75 ns per row reducing
    short rows; for 24 rows or more of at most 32 classes, reducing a transposed copy over its
    first axis is 1.2-7 times faster (64 rows of 10: 2.0 us instead of 3.9; 20000 rows of 10:
    119 us instead of 875), and a maximum is exact in any order (a tie of 0.0 and -0.0 may
    give either zero, which changes no value of the loss, the softmax or the log-softmax)."""
    classes = a.shape[-1]
    if classes > 32 or a.size < 24 * classes:
        return np.maximum.reduce(a, axis=-1, keepdims=True)
    columns = (a if a.ndim == 2 else a.reshape(-1, classes)).T.copy()  # C order
    return np.maximum.reduce(columns, axis=0).reshape(a.shape[:-1] + (1,))


_SAMPLED_ROWS = 4  # rows the double-softmax check looks at: cheap at any batch size
_warned_probabilities = False


def _warn_if_probabilities(logits: np.ndarray) -> None:
    """Warn (once per process) when the first rows of `logits` are already probabilities
    (values in [0, 1] summing to one): a softmax applied twice, which trains quietly to a worse
    loss. Keras warns likewise when a from-logits loss receives a softmax's output."""
    global _warned_probabilities
    classes = logits.shape[-1]
    if _warned_probabilities or classes < 2:
        return
    rows = (logits if logits.ndim == 2 else logits.reshape(-1, classes))[:_SAMPLED_ROWS]
    if np.minimum.reduce(rows, axis=None) < 0 or np.maximum.reduce(rows, axis=None) > 1:
        return
    if np.abs(np.add.reduce(rows, axis=-1) - 1).max() <= _ROW_SUM_TOLERANCE:
        _warned_probabilities = True
        warnings.warn(
            "softmax_cross_entropy received logits whose rows are already probabilities (in "
            "[0, 1], summing to 1): the model probably ends with a softmax, which this loss "
            "applies again, and training reaches a much worse loss. Give the loss the raw "
            "scores: drop activation='softmax' from the last layer (Dense(10) instead of "
            "Dense(10, activation='softmax')) and apply nn.softmax only for predictions",
            UserWarning, stacklevel=5)


def _first_row_rules_out(logits: np.ndarray, row_max: np.ndarray) -> bool:
    """Whether the first row of `logits` holds a value above 1 or below 0, which makes
    `_warn_if_probabilities` return without warning (it samples the first rows; a NaN among
    them also means no warning). Python scalars, cheaper than the check's reductions."""
    if row_max.item(0) > 1:
        return True
    classes = logits.shape[-1]
    if classes > 64:  # a long row: the check's reductions are the cheaper way
        return False
    row = logits[0] if logits.ndim == 2 else logits.reshape(-1, classes)[0]
    return bool(min(row.tolist()) < 0)


def _xent_forward(logits: Any, labels: Any, *, reduction: str, smoothing: float
                  ) -> tuple[Any, tuple[Any, Any, Any]]:
    """(loss, residuals): the residuals are (softmax, log_softmax, target rows or None).

    It also warns once if the logits look like probabilities (a double softmax); being part
    of the forward, the check runs on raw arrays and on every replay of a `tape.function`.
    `_first_row_rules_out` settles most calls before the check's own reductions."""
    m = _row_max(logits)
    if not _warned_probabilities and m.size and not _first_row_rules_out(logits, m):
        _warn_if_probabilities(logits)
    # Ufunc reductions rather than np.max/np.sum: the same arithmetic, less call overhead.
    log_p = logits - m
    e = np.exp(log_p)
    s = np.add.reduce(e, axis=-1, keepdims=True)
    log_p -= np.log(s)
    p = np.divide(e, s, out=e)
    y = None
    if labels.dtype.kind in "iu" and not smoothing:
        picked = _pick(log_p, labels)
        if reduction != "none":
            # -sum(picked) is sum(-picked) bit for bit: rounding is symmetric in sign, and
            # log_p holds no -0.0 (a difference is -0.0 only as -0.0 - +0.0, and a row whose
            # maximum ties 0.0 with -0.0 has log(s) >= log(2)), so an all-zero sum is -0.0
            # either way.
            total = -np.add.reduce(picked, axis=None)
            return (total if reduction == "sum" else total / max(picked.size, 1)), (p, log_p, y)
        losses = -picked
    else:
        y = _targets(labels, log_p, smoothing)
        losses = -np.add.reduce(y * log_p, axis=-1)
    residuals = (p, log_p, y)
    if reduction == "none":
        return losses, residuals
    total = np.add.reduce(losses, axis=None)
    return (total if reduction == "sum" else total / max(losses.size, 1)), residuals


def _upstream(g: Any, logits: Any, reduction: str) -> Any:
    """The upstream gradient per row, shaped to broadcast over the class axis."""
    if reduction == "none":
        return np.expand_dims(g, -1)
    return g / (logits.size // logits.shape[-1]) if reduction == "mean" else g


def _xent_grads(needed: list[int], g: Any, ans: Any, residuals: tuple[Any, Any, Any] | None,
                logits: Any, labels: Any, *, reduction: str, smoothing: float
                ) -> tuple[Any, Any]:
    """(d logits, d labels), each only if `needed`."""
    if residuals is None:
        # Under an outer tape (tensor inputs): recompute from recorded ops, which makes the
        # rule itself differentiable.
        log_p = logits - tape.logsumexp(logits, axis=-1, keepdims=True)
        p, y = tape.exp(log_p), None
    else:
        p, log_p, y = residuals
    upstream = _upstream(g, logits, reduction)
    d_logits = d_labels = None
    if 0 in needed:
        if y is None:
            y = _targets(labels, p, smoothing)
        if labels.dtype.kind not in "iu":  # rows need not sum to one: d/dz = p * sum(y) - y
            p = p * np.sum(y, axis=-1, keepdims=True)
        d_logits = (p - y) * upstream
    if 1 in needed:
        d_labels = -(1 - smoothing) * log_p * upstream
    return d_logits, d_labels


def _xent_jvp(tangents: list[Any], ans: Any, residuals: tuple[Any, Any, Any] | None,
              logits: Any, labels: Any, *, reduction: str, smoothing: float) -> Any:
    """The loss's tangent (forward mode), per row: with p = softmax(z) and target rows y,
    d loss = sum(y) * sum(p * dz) - sum(y * dz) - (1 - smoothing) * sum(dlabels * log p)."""
    tz, ty = tangents
    if residuals is None:  # tensors under an outer tape: recompute with recorded operations
        log_p = logits - tape.logsumexp(logits, axis=-1, keepdims=True)
        p, y = tape.exp(log_p), None
    else:
        p, log_p, y = residuals
    rows: Any = None
    if tz is not None:
        p_tz = np.sum(p * tz, axis=-1)
        if y is None and residuals is not None:  # class ids, no smoothing: y is one-hot
            rows = p_tz - _pick(tz, labels)
        else:
            if y is None:
                y = _targets(labels, p, smoothing)
            rows = np.sum(y, axis=-1) * p_tz - np.sum(y * tz, axis=-1)
    if ty is not None:
        term = -(1 - smoothing) * np.sum(ty * log_p, axis=-1)
        rows = term if rows is None else rows + term
    if rows is None or reduction == "none":
        return rows
    total = np.sum(rows)
    return total if reduction == "sum" else total / max(int(np.size(rows)), 1)


_softmax_xent = tape.Primitive("nn.softmax_cross_entropy", _xent_forward, residuals=True
                               ).defvjp_all(_xent_grads).defjvp_all(_xent_jvp)


_UNSIGNED = {n: np.dtype(f"u{n}") for n in (1, 2, 4, 8)}


def _ids_in_range(ids: np.ndarray, classes: int) -> bool:
    """Whether all class ids lie in [0, classes), with one reduction: signed ids are viewed as
    unsigned, where a negative id becomes at least 2**(bits - 1), which exceeds any class
    count below it."""
    dtype = ids.dtype
    if dtype.kind == "u":
        return bool(np.maximum.reduce(ids, axis=None) < classes)
    if dtype.isnative and classes >> (8 * dtype.itemsize - 1) == 0:
        return bool(np.maximum.reduce(ids.view(_UNSIGNED[dtype.itemsize]), axis=None) < classes)
    return not (ids.min() < 0 or ids.max() >= classes)


def _check_labels(logits: Any, labels: Any) -> Any:
    """Validate labels against logits; return them as class ids or as rows of logits' dtype."""
    shape = logits.shape
    batch, classes = shape[:-1], shape[-1]
    if 0 in shape:
        raise ValueError(f"softmax_cross_entropy: logits of shape {logits.shape} hold no "
                         f"values (an empty batch, or no classes): a loss over them is "
                         f"undefined; skip empty batches")
    kind = labels.dtype.kind
    if labels.shape == batch and kind in "iu":
        if labels.size and not _ids_in_range(labels, classes):
            bad = np.flatnonzero((labels < 0) | (labels >= classes))[0]
            raise ValueError(f"class ids must lie in [0, {classes}) for logits of shape "
                             f"{logits.shape}; got labels from {labels.min()} to {labels.max()} "
                             f"(first out of range: {labels.flat[bad]} at flat index {bad})")
        return labels
    if labels.shape == batch:
        raise ValueError(f"labels of shape {labels.shape} and dtype {labels.dtype} for logits of "
                         f"shape {logits.shape}: class ids must be integers in [0, {classes}) "
                         f"(use labels.astype(int)), or pass one-hot/probability rows of shape "
                         f"{logits.shape}")
    if labels.shape == logits.shape:
        if kind in "fc" or isinstance(labels, Tensor):
            _check_rows(labels.numpy() if isinstance(labels, Tensor) else labels)
            return labels if isinstance(labels, Tensor) else labels.astype(logits.dtype, copy=False)
        if kind in "iub" and np.all((labels == 0) | (labels == 1)) and np.all(labels.sum(-1) == 1):
            return labels.astype(logits.dtype)
        raise ValueError(f"integer labels of shape {labels.shape} match the logits' shape but are "
                         f"not one-hot rows; pass class ids of shape {batch} or float rows")
    if labels.ndim and logits.ndim > 1 and labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels hold {labels.shape[0]} examples (shape {labels.shape}) but the "
                         f"logits hold {logits.shape[0]} (shape {logits.shape})")
    raise ValueError(f"labels of shape {labels.shape} do not fit logits of shape {logits.shape}: "
                     f"pass class ids of shape {batch} with values in [0, {classes}), or "
                     f"one-hot/probability rows of shape {logits.shape}")


@tape.kernel  # under tape.function: checked on every call
def _labels(logits: Any, labels: Any) -> Any:
    if isinstance(labels, Tensor) and labels.dtype.kind not in "fc":
        labels = labels.numpy()  # class ids: constants
    return _check_labels(logits, labels)


_ROW_SUM_TOLERANCE = 1e-3  # |row sum - 1| allowed: float16 rounding of ten classes fits


def _check_rows(rows: np.ndarray) -> None:
    """Probability rows: finite, non-negative, each summing to one within the tolerance."""
    sums = np.add.reduce(rows, axis=-1, dtype=np.promote_types(rows.dtype, np.float64))
    if np.all(np.abs(sums - 1) <= _ROW_SUM_TOLERANCE) and not (rows < 0).any():
        return
    flat, sums = rows.reshape(-1, rows.shape[-1]), sums.reshape(-1)
    for problem, bad, fix in (
            ("non-finite values (NaN or inf)", ~np.isfinite(flat).all(-1),
             "find where they come from (np.isfinite(labels).all(-1) marks the good rows)"),
            ("negative values", (flat < 0).any(-1),
             "probabilities cannot be negative"),
            (f"a sum other than 1 (by more than {_ROW_SUM_TOLERANCE})",
             np.abs(sums - 1) > _ROW_SUM_TOLERANCE,
             "normalize them (rows / rows.sum(-1, keepdims=True)) or pass class ids")):
        if bad.any():
            r = int(np.argmax(bad))
            raise ValueError(
                f"softmax_cross_entropy: label rows must be probabilities (finite, non-negative, "
                f"each summing to 1); {int(bad.sum())} of {len(flat)} rows have {problem}, the "
                f"first is row {r}: {np.array2string(flat[r], precision=4, threshold=8)} "
                f"(sum {sums[r]:.6g}): {fix}")


def softmax_cross_entropy(logits: Any, labels: Any, *, reduction: str = "mean",
                          label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between `softmax(logits)` and the labels: `-sum(y * log_softmax(logits))`.

    `labels` are integer class ids (shape `logits.shape[:-1]`, values in `[0, C)`) or rows of
    one-hot / probabilities (shape of `logits`). `label_smoothing=e` uses
    `(1 - e) * y + e / C`. `reduction`: `'mean'` over examples (default), `'sum'`, or `'none'`
    (one loss per example). One fused primitive: the gradient is `(softmax(logits) - y) / m`,
    and it is itself differentiable (second derivatives work). NaN logits give a NaN loss.

    Probability rows must be finite, non-negative and sum to one within 1e-3 (room for float16
    rounding); other rows, and empty logits, raise `ValueError`. Logits whose first rows are
    already probabilities (a model ending in a softmax) give a `UserWarning`, once.

    Example:
        >>> float(softmax_cross_entropy(np.array([[0.0, 0.0]]), np.array([1])))
        0.6931471805599453
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    logits = _as_value(logits)
    if logits.ndim == 0 or logits.dtype.kind not in "fc":
        raise ValueError(f"logits must be a floating array with a class axis, got shape "
                         f"{logits.shape} and dtype {logits.dtype}")
    labels = _labels(logits, _as_value(labels))
    return _softmax_xent(logits, labels, reduction=reduction, smoothing=float(label_smoothing))


# ---- composed losses ------------------------------------------------------------------------
def _check_same_shape(name: str, predictions: Any, targets: Any) -> None:
    if predictions.shape != targets.shape:
        raise ValueError(f"{name}: predictions of shape {predictions.shape} and labels of shape "
                         f"{targets.shape} differ; reshape one of them (e.g. labels.reshape"
                         f"({predictions.shape}))")


def _like(labels: Any, outputs: Any) -> Any:
    """Labels in the floating dtype of the outputs, arrays and tensors alike (a Tensor through
    the recorded `tape.cast`), so that a traced step, where labels arrive as tensors, computes
    in the same dtype as an eager one."""
    if outputs.dtype.kind != "f" or labels.dtype == outputs.dtype:
        return labels
    if isinstance(labels, Tensor):
        return tape.cast(labels, outputs.dtype)
    return labels.astype(outputs.dtype)


def sigmoid_binary_cross_entropy(logits: Any, labels: Any, *, reduction: str = "mean"
                                 ) -> Tensor:
    """Binary cross-entropy of `sigmoid(logits)` against labels in [0, 1], from the logits.

    Computed as `softplus(z) - z * y` with `softplus(z) = logsumexp([0, z])`: exact for any z,
    with gradient `sigmoid(z) - y` (also at z = 0). `reduction` as in `softmax_cross_entropy`
    (`'none'` gives one loss per element).

    Example:
        >>> float(sigmoid_binary_cross_entropy(np.array([0.0]), np.array([1.0])))
        0.6931471805599453
    """
    _check_reduction(reduction)
    logits, labels = _as_value(logits), _as_value(labels)
    _check_same_shape("sigmoid_binary_cross_entropy", logits, labels)
    if not isinstance(labels, Tensor):
        if labels.size and (labels.min() < 0 or labels.max() > 1):
            raise ValueError(f"binary labels must lie in [0, 1]; got values from {labels.min()} "
                             f"to {labels.max()}")
    labels = _like(labels, logits)
    return _reduce(softplus(logits) - logits * labels, reduction)


def mean_squared_error(predictions: Any, targets: Any, *, reduction: str = "mean") -> Tensor:
    """Mean of `(predictions - targets) ** 2`.

    With `reduction='none'`, one value per example: the mean over all axes but the first
    (for 1-D inputs, the squared errors themselves).

    Example:
        >>> float(mean_squared_error(np.array([1.0, 3.0]), np.array([0.0, 0.0])))
        5.0
    """
    _check_reduction(reduction)
    predictions, targets = _as_value(predictions), _as_value(targets)
    _check_same_shape("mean_squared_error", predictions, targets)
    targets = _like(targets, predictions)
    d = tape.subtract(predictions, targets)
    sq = d * d
    if reduction == "none" and sq.ndim > 1:
        return tape.mean(sq, axis=tuple(range(1, sq.ndim)))
    return _reduce(sq, reduction)
