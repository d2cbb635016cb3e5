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
def test_early_stopping_patience_baseline_and_restore(values, options, stopped):
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
    for callback in (nn.RestoreBest(), nn.EarlyStopping(), nn.ReduceLROnPlateau(),
                     nn.ModelCheckpoint("never.npz", save_best_only=True)):
        opt = optim.SGD(0.1)
        with pytest.raises(ValueError, match=r"'val_loss' needs validation_data or "
                                             r"validation_split in fit; without them the logs "
                                             r"are \['loss', 'accuracy'\]"):
            nn.fit(nn.Dense(2, seed=0), *TRAIN, loss=nn.softmax_cross_entropy, optimizer=opt,
                   callbacks=[callback], verbose=0)
        assert opt.iterations == 0  # refused before the first step


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


# -- populations --------------------------------------------------------------------------------
def members(build_seed=0, k=3):
    return nn.Population(lambda: nn.Sequential([nn.Dense(16, activation="relu"), nn.Dense(2)]),
                         k, seed=build_seed)


def test_early_stopping_on_a_population_follows_each_member():
    # member 0 improves until epoch 3, member 1 stops improving after epoch 0
    values = [np.array([1.0, 1.0]), np.array([0.9, 1.1]), np.array([0.8, 1.2]),
              np.array([0.7, 1.3]), np.array([0.75, 1.4]), np.array([0.76, 1.5])]
    stop = nn.EarlyStopping(patience=2)
    state = drive(stop, values)
    assert stop.stopped_epoch == 5 and state.stop_training
    np.testing.assert_array_equal(stop.best, [0.7, 1.0])
    assert state.stop_reason == ("early stopping: no member's val_loss improved in the last 2 "
                                 "epochs (best 0.7 (#0))")
    best = nn.EarlyStopping(patience=2, population="best")  # watches min over members
    drive(best, values)
    assert best.stopped_epoch == 5 and best.best == 0.7
    lagging = nn.EarlyStopping(patience=1, population="best")
    drive(lagging, [np.array([1.0, 0.5]), np.array([0.6, 0.9]), np.array([0.4, 0.9])])
    assert lagging.stopped_epoch == 1  # the best value, 0.5, did not improve at epoch 1


def test_restore_best_gives_each_member_its_own_best_epoch():
    pop = members()
    pop.build((None, 5))

    def mark(epoch):  # every weight of member k at epoch e is 10 * e + k
        for v in pop.variables:
            v.assign(np.broadcast_to((10.0 * epoch + np.arange(3)).reshape(
                (3,) + (1,) * (v.ndim - 1)), v.shape).astype(v.dtype))

    best = nn.RestoreBest()
    drive(best, [np.array([1.0, 1.0, np.nan]), np.array([0.5, 2.0, np.nan]),
                 np.array([0.7, 0.9, np.nan])], model=pop, on_epoch=mark)
    np.testing.assert_array_equal(best.best_epoch, [1, 2, -1])
    kernel = pop.variables[0].numpy()
    np.testing.assert_array_equal(kernel[:, 0, 0], [10.0, 21.0, 2.0])  # epoch 0 for NaN member


def test_early_stopping_in_fit_on_a_population_runs_and_restores():
    pop = members()
    stop = nn.EarlyStopping(patience=1, restore_best_weights=True)
    h = nn.fit(pop, *TRAIN, loss=nn.softmax_cross_entropy, optimizer=optim.Adam([0.3, 0.03, 0.1]),
               epochs=30, batch_size=10, validation_data=VAL, callbacks=[stop], verbose=0)
    assert len(h) < 30 and h.stop_reason.startswith("early stopping: no member's val_loss")
    val = nn.evaluate(pop, *VAL, loss=nn.softmax_cross_entropy)["loss"]
    epochs = np.array(h.val_loss)
    np.testing.assert_allclose(val, epochs.min(axis=0), rtol=1e-6)


# -- more callbacks -----------------------------------------------------------------------------
class FakeOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


def rates(callback, values, lr=1.0, key="val_loss"):
    """The learning rate logged at each epoch while `key` takes `values`."""
    state = nn.TrainingState(model=None, optimizer=FakeOptimizer(lr), history=nn.History(),
                             epochs=len(values))
    callback.on_train_begin(state)
    seen = []
    for epoch, value in enumerate(values):
        state.epoch, state.logs = epoch, {key: value}
        callback.on_epoch_begin(state)
        callback.on_epoch_end(state)
        seen.append(state.logs["learning_rate"])
    return seen, state.optimizer.learning_rate


def test_reduce_lr_on_plateau_patience_cooldown_and_floor():
    cb = nn.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.0)
    assert rates(cb, [1.0, 1.0, 1.0, 0.5, 0.5]) == ([1.0, 1.0, 0.5, 0.25, 0.25], 0.125)
    cooled = nn.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.2)
    # traced by hand through Keras 3's on_epoch_end: the cooldown counts down on the epoch
    # it ends, so with cooldown=2 and patience=1 a reduction comes every second epoch
    assert rates(cooled, [1.0] * 7) == ([1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2], 0.2)
    per_member, lr = rates(nn.ReduceLROnPlateau(factor=0.5, patience=1),
                           [np.array([1.0, 1.0]), np.array([0.5, 1.0])])
    np.testing.assert_array_equal(lr, [1.0, 0.5])  # only member 1 reached its plateau
    with pytest.raises(ValueError, match=r"needs a number there.*a schedule per step"):
        rates(nn.ReduceLROnPlateau(), [1.0], lr=lambda step: 0.1)


def test_learning_rate_scheduler_takes_epoch_and_rate_or_epoch():
    assert rates(nn.LearningRateScheduler(lambda epoch, lr: lr * 0.1), [0.0] * 3)[0] == \
        pytest.approx([0.1, 0.01, 0.001])
    assert rates(nn.LearningRateScheduler(optim.schedules.ExponentialDecay(1.0, 0.5)),
                 [0.0] * 3)[0] == pytest.approx([1.0, 0.5, 0.25])
    with pytest.raises(ValueError, match=r"returned nan for epoch 0"):
        rates(nn.LearningRateScheduler(lambda epoch: math.nan), [0.0])


def test_learning_rate_is_logged_and_printed_in_fit(capsys):
    h = nn.fit(nn.Dense(2, seed=0), *TRAIN, loss=nn.softmax_cross_entropy,
               optimizer=optim.SGD(0.1), epochs=2, verbose=2,
               callbacks=[nn.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))])
    assert h.learning_rate == [0.1, 0.05]
    assert capsys.readouterr().out.splitlines()[1].endswith("learning_rate 0.05")


def test_terminate_on_nan_stops_cleanly():
    calls = []

    def loss(outputs, labels):
        calls.append(1)
        value = nn.softmax_cross_entropy(outputs, labels)
        return value * np.inf if len(calls) == 5 else value

    model = nn.Dense(2, seed=0)
    # compile=False: the loss counts its calls in Python, which a traced step runs once
    h = nn.fit(model, *TRAIN, loss=loss, optimizer=optim.SGD(0.1), epochs=4, batch_size=5,
               callbacks=[nn.TerminateOnNaN()], verbose=0, compile=False)
    assert len(h) == 2 and math.isnan(h.loss[-1]) and np.isfinite(h.loss[0])
    assert h.stop_reason == "training diverged at epoch 2/4, step 1/4: the loss is inf; no " \
                            "update was applied"
    assert all(np.isfinite(v).all() for v in model.state_dict().values())


def test_model_checkpoint_every_epoch_and_best_only(tmp_path):
    model, opt = nn.Dense(2, seed=0), optim.Adam(0.01)
    every = nn.ModelCheckpoint(tmp_path / "e{epoch:02d}-{val_loss:.3f}.npz")
    best = nn.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    snapshots = []
    h = nn.fit(model, *TRAIN, loss=nn.softmax_cross_entropy, optimizer=opt, epochs=4,
               validation_data=VAL, verbose=0, callbacks=[
                   lambda s: snapshots.append(s.model.state_dict()), every, best])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best.npz"] + [f"e{e + 1:02d}-{v:.3f}.npz" for e, v in enumerate(h.val_loss)]
    assert every.last_saved == str(tmp_path / names[-1])
    k = int(np.argmin(h.val_loss))
    fresh, fresh_opt = nn.Dense(2, input_dim=5), optim.Adam(0.01)
    assert nn.load_checkpoint(tmp_path / "best.npz", fresh, fresh_opt) == k + 1
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, snapshots[k][name])
    assert best.best == min(h.val_loss)


def test_csv_logger_writes_a_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    h = nn.fit(nn.Dense(2, seed=0), *TRAIN, loss=nn.softmax_cross_entropy,
               optimizer=optim.SGD(0.1), epochs=2, validation_data=VAL, verbose=0,
               callbacks=[nn.CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy"
    assert lines[2] == f"1,{h.loss[1]!r},{h.accuracy[1]!r},{h.val_loss[1]!r},{h.val_accuracy[1]!r}"
    nn.fit(nn.Dense(2, seed=0), *TRAIN, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.1),
           epochs=1, verbose=0, callbacks=[nn.CSVLogger(path, append=True)])
    assert len(path.read_text().splitlines()) == 4
    pop_path = tmp_path / "pop.csv"
    nn.fit(members(k=2), *TRAIN, loss=nn.softmax_cross_entropy, optimizer=optim.SGD([0.1, 0.2]),
           epochs=1, verbose=0, callbacks=[nn.CSVLogger(pop_path, separator=";")])
    assert pop_path.read_text().splitlines()[0] == "epoch;loss/0;loss/1;accuracy/0;accuracy/1"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
