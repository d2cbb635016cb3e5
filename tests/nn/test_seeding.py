"""nn.set_seed: one global seed makes unseeded initializers and data order reproducible."""

import random

import numpy as np
import pytest

import nn
import optim

X = np.random.default_rng(0).standard_normal((64, 3))
Y = (X[:, 0] > 0).astype(int)


@pytest.fixture(autouse=True)
def no_global_seed_after():
    yield
    nn.set_seed(None)


def script():
    """A whole training script with no seed anywhere: returns its weights and losses."""
    model = nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(2)])
    h = nn.fit(model, X, Y, loss="sparse_categorical_crossentropy", optimizer=optim.Adam(0.01),
               epochs=2, batch_size=8, seed=None, verbose=0)
    return [v.numpy() for v in model.variables], h.loss


def test_the_same_global_seed_gives_the_same_run():
    nn.set_seed(7)
    w1, loss1 = script()
    nn.set_seed(7)
    w2, loss2 = script()
    assert loss1 == loss2
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_array_equal(a, b)
    nn.set_seed(8)
    w3, loss3 = script()
    assert loss3 != loss1 and not np.array_equal(w3[0], w1[0])


def test_the_global_seed_drives_the_data_order():
    def order():
        return np.concatenate([yb for _, yb in nn.MiniBatches(X, np.arange(64), 8, seed=None)])

    nn.set_seed(1)
    a, b = order(), order()
    nn.set_seed(1)
    assert np.array_equal(order(), a) and not np.array_equal(a, b)


def test_without_a_global_seed_layers_are_random_and_fit_shuffles_from_0():
    a, b = nn.Dense(2, input_dim=3), nn.Dense(2, input_dim=3)
    assert not np.array_equal(a.kernel.numpy(), b.kernel.numpy())
    runs = [nn.fit(nn.Dense(2, seed=0), X, Y, loss="sparse_categorical_crossentropy",
                   optimizer="sgd", epochs=2, batch_size=8, verbose=0, seed=s).loss
            for s in (None, 0)]
    assert runs[0] == runs[1]


def test_seeded_and_explicit_seeds_win_over_the_global_seed():
    nn.set_seed(3)
    with nn.seeded(5):
        inside = nn.Dense(2, input_dim=3).kernel.numpy()
    explicit = nn.Dense(2, input_dim=3, seed=11).kernel.numpy()
    nn.set_seed(4)
    with nn.seeded(5):
        assert np.array_equal(nn.Dense(2, input_dim=3).kernel.numpy(), inside)
    assert np.array_equal(nn.Dense(2, input_dim=3, seed=11).kernel.numpy(), explicit)


def test_set_seed_also_seeds_numpy_and_python():
    nn.set_seed(2)
    first = (np.random.rand(), random.random())
    nn.set_seed(2)
    assert (np.random.rand(), random.random()) == first


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True])
def test_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative integer or None"):
        nn.set_seed(bad)
