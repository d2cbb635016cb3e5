"""EarlyStopping and RestoreBest: Keras' semantics, in nn.fit and in a search objective."""

import math

import numpy as np
import pytest

import nn
import optim
from optim.search import LogUniform, random_search

RNG = np.random.default_rng(1)
X = RNG.standard_normal((60, 5))
Y = (X[:, 0] + 0.8 * RNG.standard_normal(60) > 0).astype(int)
TRAIN, VAL = (X[:20], Y[:20]), (X[20:], Y[20:])  # few examples: it overfits after epoch 4


def drive(callback, values, key="val_loss", model=None, on_epoch=None):
    """Run `callback` over epochs whose `key` takes `values`; returns the final state."""
    state = nn.TrainingState(model=model, optimizer=None, history=nn.History(),
                             epochs=len(values))
    callback.on_train_begin(state)
    for epoch, value in enumerate(values):
        if on_epoch is not None:
            on_epoch(epoch)
        state.epoch, state.logs = epoch, {key: value}
        callback.on_epoch_end(state)
        if state.stop_training:
            break
    callback.on_train_end(state)
    return state


@pytest.mark.parametrize("values, options, stopped", [
    ([1.0, 0.9, 0.95, 0.96, 0.97], {"patience": 2}, 3),
    ([1.0, 0.9, 0.95, 0.96, 0.97], {"patience": 5}, None),
    ([1.0, 1.1], {}, 1),  # patience 0: the first epoch without improvement
    ([1.0, 0.97, 0.96], {"patience": 1, "min_delta": 0.05}, 1),
    ([1.0, 0.97, 0.96], {"patience": 1, "min_delta": -0.05}, 1),  # Keras takes abs(min_delta)
    ([1.0, 2.0, 3.0], {"mode": "max"}, None),
    ([0.9, 0.8, 0.85], {"patience": 2}, None),
    ([0.9, 0.8, 0.85], {"patience": 2, "baseline": 0.5}, 2),  # never beat the baseline
    ([1.0, 2.0, 3.0, 4.0, 5.0], {"start_from_epoch": 2}, 3),
    ([1.0, math.nan], {}, 1),  # NaN is never an improvement
])
def test_early_stopping_follows_keras(values, options, stopped):
    stop = nn.EarlyStopping(**options)
    state = drive(stop, values)
    assert stop.stopped_epoch == stopped
    assert state.stop_training == (stopped is not None)
    if stopped is not None:
        assert state.stop_reason.startswith("early stopping: val_loss did not improve")


def test_mode_auto_maximizes_accuracies():
    stop = nn.EarlyStopping("val_accuracy", patience=1)
    assert drive(stop, [0.5, 0.6, 0.55], key="val_accuracy").epoch == 2
    assert stop.best == 0.6


def test_a_callback_resets_between_fits():
    stop = nn.EarlyStopping(patience=1)
    drive(stop, [1.0, 2.0])
    assert stop.stopped_epoch == 1
    state = drive(stop, [5.0, 4.0, 3.0])
    assert stop.stopped_epoch is None and not state.stop_training and stop.best == 3.0


def test_restore_best_loads_the_best_epochs_variables():
    model = nn.Dense(2, input_dim=2, seed=0)

    def mark(epoch):  # the weights of epoch e are all e
        for v in model.variables:
            v.assign(np.full(v.shape, float(epoch), v.dtype))

    best = nn.RestoreBest()
    drive(best, [0.5, 0.3, 0.4, 0.35], model=model, on_epoch=mark)
    assert best.best_epoch == 1 and best.best == 0.3
    assert all(np.all(v.numpy() == 1.0) for v in model.variables)
    stop = nn.EarlyStopping(patience=1, restore_best_weights=True)
    drive(stop, [0.5, 0.3, 0.4, 0.35], model=model, on_epoch=mark)
    assert stop.stopped_epoch == 2
    assert all(np.all(v.numpy() == 1.0) for v in model.variables)


def test_in_fit_early_stopping_restores_the_best_epoch():
    model = nn.Sequential([nn.Dense(32, activation="relu", seed=0), nn.Dense(2, seed=1)])
    snapshots = []
    stop = nn.EarlyStopping(patience=3, restore_best_weights=True)
    h = nn.fit(model, *TRAIN, loss=nn.softmax_cross_entropy, optimizer=optim.Adam(0.01),
               epochs=30, batch_size=10, validation_data=VAL,
               callbacks=[lambda s: snapshots.append(s.model.state_dict()), stop])
    best = int(np.argmin(h.val_loss))
    assert 0 < best < len(h) - 1 and len(h) == best + 4 and stop.stopped_epoch == best + 3
    assert h.stop_reason.startswith("early stopping")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[best][k])


def test_a_missing_monitor_is_an_error_naming_the_logs():
    with pytest.raises(ValueError, match=r"'val_loss' is not in the epoch logs.*\['loss'\]"):
        drive(nn.EarlyStopping(), [1.0], key="loss")
    with pytest.raises(ValueError, match="val_loss"):
        nn.fit(nn.Dense(2, seed=0), *TRAIN, loss=nn.softmax_cross_entropy,
               optimizer=optim.SGD(0.1), callbacks=[nn.RestoreBest()])


@pytest.mark.parametrize("options", [{"mode": "up"}, {"patience": -1}, {"patience": 1.5},
                                     {"min_delta": math.nan}, {"min_delta": "0.1"}])
def test_bad_arguments(options):
    with pytest.raises(ValueError):
        nn.EarlyStopping(**options)


def objective(params):
    """A search objective: train with early stopping, return the best validation loss."""
    model = nn.Sequential([nn.Dense(32, activation="relu", seed=0), nn.Dense(2, seed=1)])
    h = nn.fit(model, *TRAIN, loss=nn.softmax_cross_entropy, optimizer=optim.Adam(params["lr"]),
               epochs=40, batch_size=10, validation_data=VAL,
               callbacks=[nn.EarlyStopping(patience=2)])
    assert len(h) < 40
    return min(h.val_loss)


def test_usable_in_a_search_objective():
    study = random_search(objective, {"lr": LogUniform(3e-3, 3e-2)}, 4, seed=0, progress=False)
    assert [t.status for t in study.trials] == ["ok"] * 4
