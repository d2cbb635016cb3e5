"""The training loop: fit, History, callbacks, divergence, and the digits acceptance run."""

import numpy as np
import pytest

import nn
import optim

RNG = np.random.default_rng(0)
X = RNG.standard_normal((96, 4))
Y = np.argmax(X @ RNG.standard_normal((4, 3)), axis=1)


def small_model(seed=0):
    return nn.Sequential([nn.Dense(8, use_bias=False, seed=seed), nn.BatchNorm(), nn.ReLU(),
                          nn.Dense(3, seed=seed + 1)])


def test_fit_learns_and_reports_history():
    model = small_model()
    history = nn.fit(model, X[:64], Y[:64], loss=nn.softmax_cross_entropy,
                     optimizer=optim.Adam(0.05), epochs=15, batch_size=16,
                     validation_data=(X[64:], Y[64:]), seed=0)
    assert len(history) == 15
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 15 for v in history.history.values())
    assert history.loss[-1] < history.loss[0] / 2 and history.accuracy[-1] > 0.9
    assert history.val_accuracy[-1] == nn.accuracy(model(X[64:]), Y[64:])
    assert history.val_loss[-1] == pytest.approx(
        float(nn.softmax_cross_entropy(model(X[64:]), Y[64:])), rel=1e-6)
    assert history.stop_reason is None


def test_fit_is_reproducible_and_uses_training_mode():
    def run():
        model = small_model()
        h = nn.fit(model, X, Y, loss=nn.softmax_cross_entropy, optimizer=optim.Adam(0.01),
                   epochs=2, batch_size=32, seed=3)
        return model, h

    (a, ha), (b, hb) = run(), run()
    assert ha.loss == hb.loss
    np.testing.assert_array_equal(a(X).numpy(), b(X).numpy())
    assert a.layers[1].moving_mean.numpy().any()  # batch norm ran in training mode


def test_regression_loss_has_no_accuracy_and_drop_last():
    model = nn.Dense(1, seed=0, dtype=np.float64)
    y = X @ [[1.0], [2.0], [0.0], [-1.0]]
    h = nn.fit(model, X, y, loss=nn.mean_squared_error, optimizer=optim.SGD(0.1), epochs=30,
               batch_size=40, drop_last=True)
    assert h.accuracy == [] and h.loss[-1] < 1e-3


def test_callbacks_see_state_and_can_stop():
    seen = []

    class StopAtThree(nn.Callback):
        def on_train_begin(self, state):
            seen.append("begin")

        def on_epoch_end(self, state):
            if state.epoch == 2:
                state.stop("enough")

        def on_train_end(self, state):
            seen.append(("end", state.epoch, len(state.history)))

    model = small_model()
    h = nn.fit(model, X, Y, loss=nn.softmax_cross_entropy, optimizer=optim.Adam(0.01),
               epochs=10, batch_size=32,
               callbacks=[lambda s: seen.append((s.epoch, sorted(s.logs), s.model is model)),
                          StopAtThree()])
    assert len(h) == 3 and h.stop_reason == "enough"
    assert seen[0] == "begin" and seen[1] == (0, ["accuracy", "loss"], True)
    assert seen[-1] == ("end", 2, 3)


def test_nan_stops_fit_naming_epoch_and_step():
    calls = []

    def loss(outputs, labels):  # the third step's loss is NaN
        calls.append(1)
        value = nn.softmax_cross_entropy(outputs, labels)
        return value * np.nan if len(calls) == 3 else value

    model = small_model()
    with pytest.raises(FloatingPointError, match=r"epoch 1/5, step 3/3: the loss is nan"):
        # compile=False: the loss counts its calls in Python, which a traced step runs once
        nn.fit(model, X, Y, loss=loss, optimizer=optim.SGD(0.1), epochs=5, batch_size=32,
               shuffle=False, verbose=0, compile=False)
    assert all(np.isfinite(v.numpy()).all() for v in model.variables)


def test_nan_in_the_inputs_is_reported_as_such_with_its_row():
    Xbad = X.copy()
    Xbad[70, 2] = np.nan
    with pytest.raises(ValueError, match=r"^X contains NaN \(first in row 70 of 96\)"):
        nn.fit(small_model(), Xbad, Y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.1),
               epochs=5, batch_size=32, verbose=0)
    with pytest.raises(ValueError, match=r"y_val\) contains inf \(first in row 1 of 3\)"):
        nn.fit(nn.Dense(1, seed=0), X, X[:, :1], loss="mse", optimizer=optim.SGD(0.1),
               validation_data=(X[:3], np.array([[0.0], [np.inf], [1.0]])), verbose=0)


def test_bad_fit_inputs():
    with pytest.raises(ValueError, match=r"96 examples.*95"):
        nn.fit(small_model(), X, Y[:95], loss=nn.softmax_cross_entropy,
               optimizer=optim.SGD(0.1), epochs=1, batch_size=8)
    model = small_model()
    nn.fit(model, X, Y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.1), epochs=1,
           batch_size=32)
    with pytest.raises(ValueError, match=r"width 5.*built for width 4"):
        nn.fit(model, np.ones((8, 5)), Y[:8], loss=nn.softmax_cross_entropy,
               optimizer=optim.SGD(0.1), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        nn.fit(model, X, Y + 1, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.1),
               epochs=1, batch_size=32)


def test_digits_reaches_96_percent():
    """The acceptance run (the README's network on digits): a few seconds."""
    pytest.importorskip("sklearn", reason="nn.datasets.load_digits needs scikit-learn")
    X_train, y_train, X_test, y_test = nn.datasets.load_digits(seed=0)
    model = nn.Sequential([
        nn.Dense(64, use_bias=False, seed=0), nn.BatchNorm(), nn.ReLU(),
        nn.Dense(32, use_bias=False, seed=1), nn.BatchNorm(), nn.ReLU(),
        nn.Dense(10, seed=2),
    ])
    history = nn.fit(model, X_train, y_train, loss=nn.softmax_cross_entropy,
                     optimizer=optim.Adam(1e-2), epochs=20, batch_size=64,
                     validation_data=(X_test, y_test), seed=0)
    probs = nn.softmax(model(X_test))
    assert nn.accuracy(probs, y_test) == history.val_accuracy[-1] >= 0.96
