"""Mini-batches and accuracy."""

import numpy as np
import pytest

import nn

X = np.arange(20.0).reshape(10, 2)
Y = np.arange(10)


def test_batches_cover_the_data_once_per_epoch():
    batches = nn.MiniBatches(X, Y, batch_size=4, seed=0)
    assert len(batches) == 3
    epoch = list(batches)
    assert [len(yb) for _, yb in epoch] == [4, 4, 2]
    ys = np.concatenate([yb for _, yb in epoch])
    assert sorted(ys) == list(range(10)) and not np.array_equal(ys, Y)
    for xb, yb in epoch:
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)  # rows stay paired


def test_shuffle_is_seeded_per_epoch():
    def order(seed, e):
        return np.concatenate([yb for _, yb in nn.MiniBatches(X, Y, 3, seed=seed).epoch(e)])

    assert np.array_equal(order(0, 0), order(0, 0))
    assert not np.array_equal(order(0, 0), order(0, 1))
    assert not np.array_equal(order(0, 0), order(1, 0))
    batches = nn.MiniBatches(X, Y, 3, seed=0)
    first, second = (np.concatenate([yb for _, yb in batches]) for _ in range(2))
    assert np.array_equal(first, order(0, 0)) and np.array_equal(second, order(0, 1))


def test_drop_last_and_no_shuffle_and_x_only():
    batches = nn.MiniBatches(X, Y, batch_size=4, drop_last=True, shuffle=False)
    assert len(batches) == 2
    assert [yb.tolist() for _, yb in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [len(xb) for xb in nn.MiniBatches(X, batch_size=6)] == [6, 4]


def test_bad_batches():
    with pytest.raises(ValueError, match=r"10 examples.*\(10, 2\).*9.*\(9,\)"):
        nn.MiniBatches(X, Y[:9])
    with pytest.raises(ValueError, match="batch_size"):
        nn.MiniBatches(X, Y, batch_size=0)


def test_accuracy_forms():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    ids = np.array([0, 1, 1, 0])
    assert nn.accuracy(logits, ids) == 0.75
    assert nn.accuracy(logits, np.eye(3)[ids]) == 0.75
    assert nn.accuracy(np.array([-1.0, 2.0, 0.5]), np.array([0, 1, 0])) == pytest.approx(2 / 3)
    assert nn.accuracy(np.array([[0.2], [0.7]]), np.array([[0.0], [1.0]]), threshold=0.5) == 1.0
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3,\)"):
        nn.accuracy(logits, ids[:3])


def test_sample_weights_follow_their_rows():
    w = np.arange(10) / 10
    batches = nn.MiniBatches(X, Y, batch_size=4, seed=0, sample_weight=w)
    for xb, yb, wb in batches:
        np.testing.assert_array_equal(wb, yb / 10)
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)
    with pytest.raises(ValueError, match=r"one weight per example, shape \(10,\); got shape "
                                         r"\(9,\)"):
        nn.MiniBatches(X, Y, sample_weight=w[:9])


@pytest.mark.parametrize("batch_size", [3.0, 0, True, "4"])
def test_batch_size_must_be_an_integer(batch_size):
    with pytest.raises(ValueError, match=r"^batch_size must be an integer >= 1, got "):
        nn.MiniBatches(np.zeros((8, 2)), batch_size=batch_size)
