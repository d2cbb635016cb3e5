"""Small data sets for demos and tests (scikit-learn's bundled ones; no download)."""

from __future__ import annotations

from typing import Any

import numpy as np


def load_digits(test_fraction: float = 0.2, seed: int = 0, dtype: Any = np.float32
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (1797 images, 10 classes) as `(X_train, y_train, X_test, y_test)`.

    The rows are split at random (`seed`), `test_fraction` for testing, and every pixel is
    standardized with the training split's mean and standard deviation (constant pixels are
    only centred). Labels are integer class ids. Needs scikit-learn (the `demo` extra).

    Example:
        >>> X_train, y_train, X_test, y_test = load_digits()
        >>> X_train.shape, X_test.shape, y_train.dtype.kind
        ((1438, 64), (359, 64), 'i')
    """
    try:
        from sklearn.datasets import load_digits as _sklearn_digits
    except ImportError as e:
        raise ImportError("nn.datasets.load_digits needs scikit-learn; install the `demo` extra: "
                          "pip install 'tape-autodiff[demo]'") from e
    X, y = _sklearn_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    test, train = order[:n_test], order[n_test:]
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    std[std == 0] = 1.0
    X = ((X - mean) / std).astype(dtype)
    return X[train], y[train].astype(np.int64), X[test], y[test].astype(np.int64)
