"""What a Keras user passes to fit: metrics by name and as functions, Keras' strings for losses
and optimizers, labels (N,) or (N, 1), validation_split, weights, iterables of batches, hooks."""

import subprocess
import sys

import numpy as np
import pytest

import nn
import optim

RNG = np.random.default_rng(0)
X = RNG.standard_normal((200, 4))
Y = np.argmax(X @ RNG.standard_normal((4, 5)), axis=1)  # 5 classes
XV, YV = X[150:], Y[150:]


def classifier(seed=0):
    return nn.Sequential([nn.Dense(16, seed=seed), nn.ReLU(), nn.Dense(5, seed=seed + 1)])


def top3(outputs, labels):
    """The fraction of examples whose class is among the three highest outputs."""
    best3 = np.argsort(outputs, axis=-1)[:, -3:]
    return float(np.mean(np.any(best3 == np.reshape(labels, (-1, 1)), axis=1)))


def train(model, x=X, y=Y, **options):
    options = {"loss": nn.softmax_cross_entropy, "optimizer": optim.Adam(0.01), "epochs": 2,
               "batch_size": 32, "seed": 0, "verbose": 0, **options}
    return nn.fit(model, x, y, **options)


def weights(model):
    return [v.numpy() for v in model.variables]


def assert_same_weights(a, b):
    for u, v in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(u, v)


# -- metrics ------------------------------------------------------------------------------------
def test_a_callable_metric_is_logged_under_its_own_name():
    model = classifier()
    h = train(model, metric=top3, validation_data=(XV, YV))
    assert list(h.history) == ["loss", "top3", "val_loss", "val_top3"]
    assert h.accuracy == [] and h.top3 is h.history["top3"]
    assert h.val_top3[-1] == top3(model(XV).numpy(), YV)
    assert h.val_top3[-1] != nn.accuracy(model(XV), YV)  # it is not the accuracy


def test_a_metric_object_is_logged_under_its_name_attribute():
    class Recall:
        name = "recall_of_0"

        def __call__(self, outputs, labels):
            hit = np.argmax(outputs, axis=-1) == labels
            return float(hit[labels == 0].mean()) if (labels == 0).any() else 0.0

    h = train(classifier(), metrics=[Recall()])
    assert list(h.history) == ["loss", "recall_of_0"]


def test_several_metrics_by_name_and_function():
    model = classifier()
    h = train(model, metrics=["accuracy", top3], validation_data=(XV, YV))
    assert list(h.history) == ["loss", "accuracy", "top3", "val_loss", "val_accuracy", "val_top3"]
    assert h.val_accuracy[-1] == nn.accuracy(model(XV), YV)
    assert h.val_top3[-1] == top3(model(XV).numpy(), YV)
    reg = nn.fit(nn.Dense(1, seed=0, dtype=np.float64), X, X[:, :1], loss="mse",
                 optimizer="sgd", metrics=["mae", "mse"], verbose=0)
    assert list(reg.history) == ["loss", "mae", "mse"]
    assert reg.mse[0] == pytest.approx(reg.loss[0], rel=1e-12)


@pytest.mark.parametrize("options, message", [
    ({"metrics": [lambda o, t: 0.0]}, r"has no name to log it under.*def my_metric"),
    ({"metrics": ["accuracy", "accuracy"]}, r"distinct.*\['accuracy', 'accuracy'\]"),
    ({"metrics": ["acuracy"]}, r"unknown metric 'acuracy'; use one of \[.*'accuracy'"),
    ({"metrics": "accuracy"}, r"metrics must be a list.*metrics=\['accuracy'\]"),
    ({"metric": top3, "metrics": ["mae"]}, "either metric= or metrics="),
])
def test_bad_metrics_are_refused_before_training(options, message):
    model = classifier()
    with pytest.raises((ValueError, TypeError), match=message):
        train(model, **options)
    assert not model.built


def test_a_value_a_callback_adds_is_kept_and_printed(capsys):
    def add_rate(state):
        state.logs["lr"] = state.optimizer.learning_rate

    h = train(classifier(), optimizer=optim.SGD(0.1), callbacks=[add_rate], verbose=2)
    assert h.lr == [0.1, 0.1]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.endswith("lr 0.1") for line in lines)


# -- Keras' names -------------------------------------------------------------------------------
def test_loss_and_optimizer_names_train_exactly_like_the_objects():
    a, b = classifier(), classifier()
    ha = train(a, loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    hb = train(b, loss=nn.softmax_cross_entropy, optimizer=optim.Adam(1e-3))
    assert ha.history == hb.history
    assert_same_weights(a, b)


@pytest.mark.parametrize("name, cls, rate", [("adam", "Adam", 1e-3), ("SGD", "SGD", 0.01),
                                             ("rmsprop", "RMSprop", 1e-3),
                                             ("adamw", "AdamW", 1e-3)])
def test_optimizer_names_give_the_default_hyperparameters(name, cls, rate):
    seen = []
    train(classifier(), optimizer=name, epochs=1,
          callbacks=[lambda s: seen.append((type(s.optimizer).__name__,
                                            s.optimizer.learning_rate))])
    assert seen == [(cls, rate)]


@pytest.mark.parametrize("options, error, message", [
    ({"loss": "crossentropy"}, ValueError,
     r"unknown loss 'crossentropy'; use one of \['binary_crossentropy', 'categorical_cross"),
    ({"loss": 3}, TypeError, r"loss must be a name or a function"),
    ({"optimizer": "adamax"}, ValueError,
     r"unknown optimizer 'adamax'; use one of \['adam', 'adamw', 'rmsprop', 'sgd'\]"),
    ({"optimizer": object()}, TypeError, r"object with apply_gradients"),
])
def test_wrong_names_list_the_valid_ones(options, error, message):
    model = classifier()
    with pytest.raises(error, match=message):
        train(model, **options)
    assert not model.built


def test_nn_does_not_import_optim_and_says_when_a_name_needs_it(monkeypatch):
    code = "import sys, nn; print('optim' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
    monkeypatch.setitem(sys.modules, "optim", None)  # makes `import optim` fail
    with pytest.raises(ImportError, match=r"optimizer='adam' needs the `optim` package"):
        nn.fit(classifier(), X, Y, loss="sparse_categorical_crossentropy", optimizer="adam",
               verbose=0)


def test_everything_is_checked_before_the_first_step():
    model, opt = classifier(), optim.Adam(0.01)
    with pytest.raises(ValueError, match=r"y_val \(shape \(50, 2\), dtype float64\)"):
        nn.fit(model, X, Y, loss=nn.softmax_cross_entropy, optimizer=opt, epochs=3,
               validation_data=(XV, np.ones((50, 2))), verbose=0)
    assert opt.iterations == 0


def test_probabilities_given_to_a_logits_loss_are_refused():
    model = nn.Sequential([nn.Dense(5, seed=0), nn.Softmax()])
    with pytest.raises(ValueError, match=r"look like probabilities.*remove the final softmax"):
        train(model, loss="categorical_crossentropy")


# -- labels (N,) and (N, 1) ---------------------------------------------------------------------
def test_class_ids_of_shape_n_1_train_like_shape_n():
    a, b, c = classifier(), classifier(), classifier()
    ha = train(a, y=Y, validation_data=(XV, YV))
    hb = train(b, y=Y[:, None], validation_data=(XV, YV[:, None]))
    hc = train(c, y=Y.astype(float), validation_data=(XV, YV.astype(float)))  # whole values
    assert ha.history == hb.history == hc.history
    assert_same_weights(a, b)
    assert nn.evaluate(a, XV, YV[:, None], loss=nn.softmax_cross_entropy) == \
        nn.evaluate(a, XV, YV, loss=nn.softmax_cross_entropy)


def test_regression_targets_of_shape_n_train_like_shape_n_1():
    target = X @ np.array([1.0, -2.0, 0.5, 0.0])
    a, b = nn.Dense(1, seed=0, dtype=np.float64), nn.Dense(1, seed=0, dtype=np.float64)
    ha = train(a, y=target, loss="mse", optimizer=optim.SGD(0.05), metrics=["mae"])
    hb = train(b, y=target[:, None], loss="mse", optimizer=optim.SGD(0.05), metrics=["mae"])
    assert ha.history == hb.history
    assert_same_weights(a, b)
    binary = (target > 0).astype(float)
    hc = train(nn.Dense(1, seed=0), y=binary, loss="binary_crossentropy")
    assert "accuracy" in hc.history


def test_a_label_mismatch_quotes_the_data_sets_shapes():
    with pytest.raises(ValueError, match=r"y \(shape \(200, 3\), dtype float64\) does not fit "
                                         r"the model's outputs \(shape \(200, 1\) for the whole "
                                         r"data set\).*labels.reshape\(\(200, 1\)\)"):
        train(nn.Dense(1, seed=0), y=np.ones((200, 3)), loss="mse")
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 5\).*from 0 to 7"):
        train(classifier(), y=np.where(Y == 4, 7, Y))


# -- validation_split, weights ------------------------------------------------------------------
def test_validation_split_takes_the_last_examples():
    a, b = classifier(), classifier()
    ha = train(a, validation_split=0.25)
    hb = train(b, x=X[:150], y=Y[:150], validation_data=(X[150:], Y[150:]))
    assert ha.history == hb.history
    assert_same_weights(a, b)


def test_class_weight_is_sample_weight_by_class():
    a, b = classifier(), classifier()
    table = {0: 1.0, 1: 2.0, 2: 0.5, 3: 1.0, 4: 3.0}
    ha = train(a, class_weight=table)
    hb = train(b, sample_weight=np.array([table[k] for k in Y]))
    assert ha.history == hb.history
    assert_same_weights(a, b)


def test_sample_weight_scales_the_loss():
    target = X[:, :1] * 2.0
    a, b = nn.Dense(1, seed=0, dtype=np.float64), nn.Dense(1, seed=0, dtype=np.float64)
    ha = train(a, y=target, loss="mse", optimizer=optim.SGD(0.01), sample_weight=np.full(200, 2.0))
    hb = train(b, y=target, loss="mse", optimizer=optim.SGD(0.02))
    np.testing.assert_allclose(ha.loss, 2 * np.array(hb.loss), rtol=1e-10)
    for u, v in zip(weights(a), weights(b)):
        np.testing.assert_allclose(u, v, rtol=1e-10)
    h = train(nn.Dense(1, seed=0, dtype=np.float64), y=target, loss="mse",
              validation_data=(X[:4], target[:4], np.array([1.0, 0.0, 0.0, 0.0])))
    assert h.val_loss[-1] >= 0


def test_weighted_loss_is_the_mean_of_weighted_losses():
    per = np.array([1.0, 4.0, 9.0])
    value = nn.training.loop.weighted_loss(nn.mean_squared_error, np.sqrt(per), np.zeros(3),
                                      sample_weight=np.array([1.0, 0.5, 0.0]))
    assert float(value) == (1.0 + 2.0 + 0.0) / 3


# -- iterables of batches -----------------------------------------------------------------------
def test_minibatches_train_exactly_like_arrays():
    a, b = classifier(), classifier()
    ha = train(a, epochs=3)
    hb = nn.fit(b, nn.MiniBatches(X, Y, 32, seed=0), loss=nn.softmax_cross_entropy,
                optimizer=optim.Adam(0.01), epochs=3, verbose=0)
    assert ha.history == hb.history
    assert_same_weights(a, b)


def test_a_list_and_a_generator_of_batches():
    batches = [(X[i:i + 50], Y[i:i + 50]) for i in range(0, 200, 50)]
    h = nn.fit(classifier(), batches, loss="sparse_categorical_crossentropy", optimizer="adam",
               epochs=2, validation_data=(XV, YV), verbose=0)
    assert len(h) == 2 and len(h.val_loss) == 2
    steps = []

    def forever():
        while True:
            yield from batches

    class Count(nn.Callback):
        def on_batch_end(self, state):
            steps.append((state.epoch, state.step))

    h = nn.fit(classifier(), forever(), loss="sparse_categorical_crossentropy", optimizer="adam",
               epochs=3, steps_per_epoch=3, callbacks=[Count()], verbose=0)
    assert len(h) == 3 and steps == [(e, s) for e in range(3) for s in range(3)]


def test_a_generator_that_runs_out_stops_with_a_warning():
    gen = ((X[i:i + 50], Y[i:i + 50]) for i in range(0, 200, 50))  # 4 batches
    with pytest.warns(UserWarning, match=r"ran out after 1 of 3 steps of epoch 2"):
        h = nn.fit(classifier(), gen, loss="sparse_categorical_crossentropy", optimizer="adam",
                   epochs=5, steps_per_epoch=3, verbose=0)
    assert len(h) == 2 and h.stop_reason == "the data ran out at epoch 2, step 1"


@pytest.mark.parametrize("options, message", [
    ({"epochs": 2}, r"generator or iterator can be gone through only once.*steps_per_epoch"),
    ({"batch_size": 16}, r"batch_size cannot be used when X is an iterable of batches"),
    ({"validation_split": 0.2}, r"validation_split needs arrays X, y"),
])
def test_bad_use_of_a_generator(options, message):
    gen = ((X[i:i + 50], Y[i:i + 50]) for i in range(0, 200, 50))
    with pytest.raises(ValueError, match=message):
        nn.fit(classifier(), gen, loss="sparse_categorical_crossentropy", optimizer="adam",
               verbose=0, **options)


def test_nan_in_a_batch_of_a_generator_is_named_as_such():
    bad = X[:50].copy()
    bad[7, 1] = np.nan
    batches = [(X[50:100], Y[50:100]), (bad, Y[:50])]
    with pytest.raises(ValueError, match=r"^x of the batch at epoch 1/1, step 2/2 contains NaN "
                                         r"\(first in row 7 of 50\)"):
        nn.fit(classifier(), batches, loss="sparse_categorical_crossentropy", optimizer="adam",
               verbose=0)


# -- callback hooks -----------------------------------------------------------------------------
def test_callbacks_get_every_hook_in_order():
    calls = []

    class Record(nn.Callback):
        def on_train_begin(self, state):
            calls.append("train_begin")

        def on_epoch_begin(self, state):
            calls.append(f"epoch_begin {state.epoch}")

        def on_batch_end(self, state):
            calls.append(f"batch {state.step} {sorted(state.batch_logs)}")

        def on_epoch_end(self, state):
            calls.append(f"epoch_end {state.epoch}")

        def on_train_end(self, state):
            calls.append("train_end")

    train(classifier(), epochs=2, batch_size=100, callbacks=[Record(), lambda s: calls.append(
        f"function {s.epoch}")])
    assert calls == ["train_begin",
                     "epoch_begin 0", "batch 0 ['accuracy', 'loss']",
                     "batch 1 ['accuracy', 'loss']", "epoch_end 0", "function 0",
                     "epoch_begin 1", "batch 0 ['accuracy', 'loss']",
                     "batch 1 ['accuracy', 'loss']", "epoch_end 1", "function 1", "train_end"]


def test_a_batch_callback_can_stop_mid_epoch():
    class StopAtStep(nn.Callback):
        def on_batch_end(self, state):
            if state.step == 2:
                state.stop("step 3 was enough")

    h = train(classifier(), epochs=5, callbacks=[StopAtStep()])
    assert len(h) == 1 and h.stop_reason == "step 3 was enough"
