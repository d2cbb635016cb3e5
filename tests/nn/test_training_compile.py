"""nn.fit(compile=True): each step under tape.function, bit-identical to eager training."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import nn
import optim

RNG = np.random.default_rng(0)
X = RNG.standard_normal((100, 6))  # 100 = 3 batches of 32 and a last one of 4
Y = np.argmax(X @ RNG.standard_normal((6, 3)), axis=1)


def mlp(dtype: Any) -> nn.Sequential:
    model = nn.Sequential([nn.Dense(8, use_bias=False, seed=0, dtype=dtype),
                           nn.BatchNorm(dtype=dtype), nn.ReLU(), nn.Dense(3, seed=1, dtype=dtype)])
    model.build((None, 6))
    return model


def assert_same_states(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def assert_same_histories(a: nn.History, b: nn.History) -> None:
    assert list(a.history) == list(b.history)
    for k in a.history:
        np.testing.assert_array_equal(np.array(a.history[k]), np.array(b.history[k]), err_msg=k)


def train(compile: bool, dtype: Any, **options: Any) -> tuple[Any, ...]:
    model, opt = mlp(dtype), optim.Adam(optim.schedules.ExponentialDecay(0.05, 10, 0.9))
    batch_losses: list[Any] = []

    class Batches(nn.Callback):
        def on_batch_end(self, state: nn.TrainingState) -> None:
            batch_losses.append(state.batch_logs["loss"])

    X_, Y_ = X.astype(dtype), Y
    h = nn.fit(model, X_[:80], Y_[:80], loss="sparse_categorical_crossentropy", optimizer=opt,
               epochs=3, batch_size=32, validation_data=(X_[80:], Y_[80:]), seed=1,
               metrics=["accuracy"], callbacks=[Batches()], verbose=0, compile=compile,
               **options)
    return model.state_dict(), opt.state_dict(), h, batch_losses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_fit_is_bit_identical_to_eager(dtype: Any) -> None:
    eager, compiled = train(False, dtype), train(True, dtype)
    assert_same_states(eager[0], compiled[0])
    assert_same_states(eager[1], compiled[1])
    assert_same_histories(eager[2], compiled[2])
    assert eager[3] == compiled[3] and len(eager[3]) == 9  # 3 epochs of 32, 32, 16


def test_compiled_fit_with_sample_weights_is_bit_identical() -> None:
    w = np.linspace(0.5, 1.5, 80)
    eager, compiled = (train(c, np.float64, sample_weight=w) for c in (False, True))
    assert_same_states(eager[0], compiled[0])
    assert_same_histories(eager[2], compiled[2])


def test_compiled_fit_traces_once_per_batch_shape() -> None:
    calls = []

    def loss(outputs: Any, labels: Any, reduction: str = "mean") -> Any:
        calls.append(1)  # Python in the step: runs at each trace only
        return nn.softmax_cross_entropy(outputs, labels, reduction=reduction)

    nn.fit(mlp(np.float64), X, Y, loss=loss, optimizer="adam", epochs=4, batch_size=32,
           metric=None, verbose=0, compile=True)
    assert len(calls) == 2  # batches of 32, then the last one of 4


def test_compiled_fit_raises_on_a_nonfinite_loss_like_eager() -> None:
    errors = []
    for compile in (False, True):
        model = mlp(np.float64)
        with pytest.raises(FloatingPointError) as e, warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            nn.fit(model, X * 1e3, Y, loss="sparse_categorical_crossentropy",
                   optimizer=optim.SGD(1e300), epochs=3, batch_size=32, verbose=0,
                   compile=compile)
        errors.append((str(e.value), model.state_dict()))
    assert "training diverged at epoch" in errors[0][0]
    assert errors[0][0] == errors[1][0]
    assert_same_states(errors[0][1], errors[1][1])


def test_compile_must_be_a_flag() -> None:
    with pytest.raises(TypeError, match="compile must be True or False, got 'yes'"):
        nn.fit(mlp(np.float64), X, Y, loss="mse", optimizer="sgd", compile="yes")


def test_compiled_population_fit_freezes_the_same_members() -> None:
    def regression() -> nn.Module:
        return nn.Sequential([nn.Dense(4, dtype=np.float64), nn.BatchNorm(dtype=np.float64),
                              nn.Dense(1, dtype=np.float64)])

    y = X[:, :1] * 3.0
    runs = []
    for compile in (False, True):
        pop = nn.Population(regression, 3, seed=0)
        pop.build((None, 6))
        opt = optim.SGD(np.array([0.01, 1e200, 0.02]), momentum=0.9)
        h = nn.fit(pop, X, y, loss="mse", optimizer=opt, epochs=2, batch_size=32, seed=0,
                   verbose=0, compile=compile)
        runs.append((pop.state_dict(), opt.state_dict(), h, pop.frozen.tolist()))
    (a_state, a_opt, a_h, a_frozen), (b_state, b_opt, b_h, b_frozen) = runs
    assert a_frozen == b_frozen == [False, True, False]
    assert a_h.frozen == b_h.frozen
    assert_same_states(a_state, b_state)
    assert_same_states(a_opt, b_opt)
    assert_same_histories(a_h, b_h)


def test_compiled_fit_with_dropout_class_weights_and_validation_split_is_bit_identical() -> None:
    runs = []
    for compile in (False, True):
        model = nn.Sequential([nn.Dense(8, seed=0), nn.Dropout(0.3, seed=1), nn.ReLU(),
                               nn.Dense(3, seed=2)])
        model.build((None, 6))
        h = nn.fit(model, X, Y, loss="sparse_categorical_crossentropy", optimizer="adam",
                   epochs=2, batch_size=32, verbose=0, compile=compile,
                   class_weight={0: 1.0, 1: 2.0, 2: 0.5}, validation_split=0.2)
        runs.append((model.state_dict(), h))
    assert_same_states(runs[0][0], runs[1][0])
    assert_same_histories(runs[0][1], runs[1][1])


def test_compiled_fit_traces_again_when_a_callback_replaces_the_variables() -> None:
    """A callback that culls a population between epochs gives it new Variables: the step
    traces again for them (the old program would update the culled members' old Variables)."""
    runs = []
    for compile in (False, True):
        pop = nn.Population(lambda: mlp(np.float64), 4, seed=[0, 1, 2, 3])
        opt = optim.Adam(np.array([0.001, 0.01, 0.02, 0.05]))

        def cull(state: nn.TrainingState, pop: nn.Population = pop, opt: Any = opt) -> None:
            if state.epoch == 0:
                pop.select([3, 1], optimizer=opt)

        h = nn.fit(pop, X, Y, loss="sparse_categorical_crossentropy", optimizer=opt, epochs=3,
                   batch_size=32, seed=0, verbose=0, callbacks=[cull], compile=compile)
        runs.append((pop.state_dict(), opt.state_dict(), h))
    assert runs[1][0]["0/kernel"].shape[0] == 2
    assert_same_states(runs[0][0], runs[1][0])
    assert_same_states(runs[0][1], runs[1][1])
    assert [np.shape(v) for v in runs[1][2].loss] == [(4,), (2,), (2,)]
    for key, values in runs[0][2].history.items():
        for a, b in zip(values, runs[1][2].history[key], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=key)


def test_compiled_fit_runs_eagerly_after_batches_of_many_shapes() -> None:
    batches = [(X[i:i + n], Y[i:i + n]) for i, n in ((0, 10), (10, 11), (21, 12), (33, 13),
                                                     (46, 14), (60, 15), (75, 25))]
    runs = []
    for compile in (False, True):
        model = mlp(np.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            h = nn.fit(model, batches, loss="sparse_categorical_crossentropy",
                       optimizer="adam", epochs=2, verbose=0, compile=compile)
        runs.append((model.state_dict(), h, [str(w.message) for w in caught]))
    assert runs[0][2] == []
    assert runs[1][2] == [
        "nn.fit(compile=True): the batches came in more than 4 shapes (the last: x (14, 6)), "
        "and each new shape traces the training step again; the remaining steps run eagerly. "
        "Batches of one shape (drop_last=True, or padded batches) stay compiled; "
        "compile=False runs eagerly from the start"]
    assert_same_states(runs[0][0], runs[1][0])
    assert_same_histories(runs[0][1], runs[1][1])
