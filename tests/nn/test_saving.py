"""Save model and optimizer, load them into fresh objects, continue training: bit for bit."""

import numpy as np
import pytest

import nn
import optim

RNG = np.random.default_rng(0)
X = RNG.standard_normal((96, 4))
Y = np.argmax(X @ RNG.standard_normal((4, 3)), axis=1)


def model():
    return nn.Sequential([nn.Dense(8, use_bias=False, seed=0), nn.BatchNorm(), nn.ReLU(),
                          nn.Dense(3, seed=1)])


def fit(m, opt, epochs, initial_epoch=0):
    return nn.fit(m, X, Y, loss="sparse_categorical_crossentropy", optimizer=opt,
                  epochs=epochs, initial_epoch=initial_epoch, batch_size=16, seed=0, verbose=0)


def test_save_load_and_continue_is_the_same_as_never_stopping(tmp_path):
    straight, straight_opt = model(), optim.Adam(0.01)
    fit(straight, straight_opt, 4)
    first, first_opt = model(), optim.Adam(0.01)
    fit(first, first_opt, 2)
    nn.save_checkpoint(tmp_path / "run.npz", first, first_opt, epoch=2)
    fresh, fresh_opt = model(), optim.Adam(0.01)
    fresh.build((None, 4))
    start = nn.load_checkpoint(tmp_path / "run.npz", fresh, fresh_opt)
    h = fit(fresh, fresh_opt, 4, initial_epoch=start)
    assert start == 2 and len(h) == 2 and fresh_opt.iterations == straight_opt.iterations
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[name], value)


def test_a_population_round_trips(tmp_path):
    def make():
        return nn.Population(lambda: nn.Sequential([nn.Dense(4), nn.Dense(3)]), 2, seed=0)

    pop, opt = make(), optim.SGD([0.1, 0.2], momentum=0.9)
    fit(pop, opt, 1)
    nn.save_checkpoint(tmp_path / "pop.npz", pop, opt, epoch=1)
    fresh, fresh_opt = make(), optim.SGD([0.5, 0.5], momentum=0.9)
    fresh.build((None, 4))
    assert nn.load_checkpoint(tmp_path / "pop.npz", fresh, fresh_opt) == 1
    np.testing.assert_array_equal(fresh_opt.learning_rate, [0.1, 0.2])
    np.testing.assert_array_equal(fresh(X).numpy(), pop(X).numpy())


def test_loading_is_all_or_nothing(tmp_path):
    m, opt = model(), optim.Adam(0.01)
    fit(m, opt, 1)
    nn.save_checkpoint(tmp_path / "run.npz", m, opt)
    other = nn.Sequential([nn.Dense(8, use_bias=False, seed=5), nn.BatchNorm(), nn.ReLU(),
                           nn.Dense(3, seed=6)])
    other.build((None, 4))
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"missing slot 'slots/0/momentum'"):
        nn.load_checkpoint(tmp_path / "run.npz", other, optim.SGD(0.1, momentum=0.5))
    for name, value in before.items():
        np.testing.assert_array_equal(other.state_dict()[name], value)
    with pytest.raises(ValueError, match=r"no variables yet.*model.build\(\(None, n_features\)\)"):
        nn.load_checkpoint(tmp_path / "run.npz", model(), optim.Adam())
    nn.save_checkpoint(tmp_path / "weights.npz", m)
    with pytest.raises(ValueError, match=r"holds no optimizer state"):
        nn.load_checkpoint(tmp_path / "weights.npz", m, optim.Adam())
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match=r"not a file written by nn.save_checkpoint"):
        nn.load_checkpoint(tmp_path / "other.npz", m)
