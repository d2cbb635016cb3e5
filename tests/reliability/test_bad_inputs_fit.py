"""Bad inputs to nn.fit: each is refused before the first step with an error that names the
argument, what it was (shape, dtype, value) and what to pass instead. One row per input."""

import numpy as np
import pytest

import nn
import optim

RNG = np.random.default_rng(0)
X = RNG.standard_normal((200, 3))
Y = (X[:, 0] > 0).astype(int)


def model():
    return nn.Sequential([nn.Dense(8, use_bias=False, seed=0), nn.BatchNorm(), nn.ReLU(),
                          nn.Dense(2, seed=1)])


def fit(x=X, y=Y, net=None, **options):
    options = {"loss": nn.softmax_cross_entropy, "optimizer": optim.SGD(0.1), "verbose": 0,
               **options}
    return lambda: nn.fit(model() if net is None else net, x, y, **options)


def population():
    return nn.Population(lambda: nn.Sequential([nn.Dense(4), nn.Dense(2)]), 2, seed=0)


def one_shot():
    return ((X[i:i + 50], Y[i:i + 50]) for i in range(0, 200, 50))


CASES = [
    ("negative epochs", fit(epochs=-5), ValueError, r"^epochs must be an integer >= 1, got -5$"),
    ("fractional epochs", fit(epochs=2.5), ValueError, r"^epochs must be an integer >= 1"),
    ("string X", fit(x=np.array(["a", "b"] * 100)), TypeError,
     r"^X must hold numbers, but it has dtype <U1 \(shape \(200,\)\); convert it first, e\.g\. "
     r"X\.astype\(np\.float32\)"),
    ("a list of strings as X", fit(x=[["1.5", "2"]] * 200), TypeError,
     r"^X must hold numbers, but it has dtype <U3 \(shape \(200, 2\)\)"),
    ("1-D X", fit(x=X[:, 0]), ValueError,
     r"^X has shape \(200,\) \(dtype float64\), but fit needs one row per example and a "
     r"feature axis, shape \(examples, features\); for one feature per example use "
     r"X\.reshape\(-1, 1\)$"),
    ("object X", fit(x=np.array([{"a": 1}] * 200)), TypeError, r"dtype object \(shape \(200,\)"),
    ("string labels", fit(y=np.array(["yes", "no"] * 100)), TypeError,
     r"^y must hold numbers, but it has dtype <U3 \(shape \(200,\)\)"),
    ("NaN in X", fit(x=np.where(np.arange(200)[:, None] == 42, np.nan, X)), ValueError,
     r"^X contains NaN \(first in row 42 of 200\); remove or impute those rows before fit$"),
    ("inf in y", fit(y=np.where(np.arange(200) == 7, np.inf, X[:, 0])[:, None],
                     net=nn.Dense(1, seed=0), loss="mse"), ValueError,
     r"^y contains inf \(first in row 7 of 200\)"),
    ("fewer labels than rows", fit(y=Y[:150]), ValueError,
     r"^X holds 200 examples \(shape \(200, 3\)\) but y holds 150 \(shape \(150,\)\)$"),
    ("class ids out of range", fit(y=Y + 1), ValueError,
     r"^y \(shape \(200,\), dtype int64\) does not fit the model's outputs \(shape \(200, 2\) "
     r"for the whole data set\) under the loss softmax_cross_entropy: class ids must lie in "
     r"\[0, 2\)"),
    ("no labels", fit(y=None), ValueError, r"^fit needs labels: fit\(model, X, y, \.\.\.\)"),
    ("batch_size 0", fit(batch_size=0), ValueError, r"^batch_size must be an integer >= 1, got 0"),
    ("batch_size True", fit(batch_size=True), ValueError, r"^batch_size must be an integer >= 1"),
    ("verbose 3", fit(verbose=3), ValueError, r"^verbose must be 0 \(silent\), 1 .*got 3$"),
    ("unknown loss name", fit(loss="hinge"), ValueError,
     r"^unknown loss 'hinge'; use one of \['binary_crossentropy', "),
    ("unknown optimizer name", fit(optimizer="nadam"), ValueError,
     r"^unknown optimizer 'nadam'; use one of \['adam', 'adamw', 'rmsprop', 'sgd'\]"),
    ("not an optimizer", fit(optimizer=0.01), TypeError,
     r"^optimizer must be a name \(.*\) or an object with apply_gradients\(grads_and_vars\), "
     r"got float 0\.01$"),
    ("unknown metric", fit(metrics=["f1"]), ValueError, r"^unknown metric 'f1'; use one of"),
    ("validation_split 1.5", fit(validation_split=1.5), ValueError,
     r"^validation_split must be a fraction in \[0, 1\), got 1\.5$"),
    ("validation_split leaving nothing to train", fit(validation_split=0.999), ValueError,
     r"^validation_split=0\.999 leaves 0 of 200 examples for training and 200 for validation"),
    ("validation split and data", fit(validation_split=0.2, validation_data=(X, Y)), ValueError,
     r"^pass either validation_data or validation_split, not both$"),
    ("validation_data of one array", fit(validation_data=(X,)), ValueError,
     r"^validation_data must be a pair \(X_val, y_val\) or a triple \(X_val, y_val, "
     r"sample_weight\), got tuple of length 1$"),
    ("validation labels of another length", fit(validation_data=(X, Y[:10])), ValueError,
     r"^X_val holds 200 examples \(shape \(200, 3\)\) but y_val has shape \(10,\)$"),
    ("a callback that is not one", fit(callbacks=[3]), TypeError,
     r"^callbacks\[0\] is a int; a callback is an nn\.Callback or a function f\(state\)"),
    ("sample_weight of another length", fit(sample_weight=np.ones(10)), ValueError,
     r"^sample_weight must hold one non-negative weight per example, shape \(200,\); got "
     r"shape \(10,\)$"),
    ("negative sample_weight", fit(sample_weight=-np.ones(200)), ValueError,
     r"got shape \(200,\) with negative values$"),
    ("class_weight missing a class", fit(class_weight={0: 1.0}), ValueError,
     r"^class_weight has no weight for classes \[1\] found in y"),
    ("weights for a population", fit(net=population(), sample_weight=np.ones(200)), ValueError,
     r"^sample_weight and class_weight are not supported for an nn\.Population"),
    ("a generator for several epochs", fit(x=one_shot(), y=None, epochs=3), ValueError,
     r"^a generator or iterator can be gone through only once, but fit was asked for several "
     r"epochs: pass steps_per_epoch"),
    ("batch_size with batches", fit(x=one_shot(), y=None, batch_size=8), ValueError,
     r"^batch_size cannot be used when X is an iterable of batches"),
    ("a batch that is not a pair", fit(x=[X[:50]], y=None), TypeError,
     r"^each batch must be a pair \(x, y\) or a triple \(x, y, sample_weight\), got ndarray"),
    ("not data at all", fit(x=3, y=None), TypeError,
     r"^fit takes arrays X, y or an iterable of \(x, y\) batches, got int$"),
    ("steps_per_epoch 0", fit(steps_per_epoch=0), ValueError,
     r"^steps_per_epoch must be an integer >= 1, got 0$"),
    ("negative initial_epoch", fit(initial_epoch=-1), ValueError,
     r"^initial_epoch must be an integer >= 0, got -1$"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()
