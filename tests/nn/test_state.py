"""State dicts, save/load round trips, and loading a different architecture."""

import os

import numpy as np
import pytest

import nn


def make(width=4, seed=0):
    return nn.Sequential([nn.Dense(width, use_bias=False, seed=seed), nn.BatchNorm(), nn.ReLU(),
                          nn.Dense(3, seed=seed + 1)])


X = np.random.default_rng(0).standard_normal((8, 5))


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    a, b = make(seed=0), make(seed=10)
    a(X, training=True)
    b.build((None, 5))
    path = tmp_path / "model.npz"
    a.save(str(path))
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary left behind
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted([*a.state_dict(), "__input__"])
    assert not np.array_equal(a(X).numpy(), b(X).numpy())
    b.load(str(path))
    np.testing.assert_array_equal(a(X).numpy(), b(X).numpy())
    np.testing.assert_array_equal(b.layers[1].moving_mean.numpy(),
                                  a.layers[1].moving_mean.numpy())


def test_state_dict_is_a_copy():
    model = make()
    model.build((None, 5))
    state = model.state_dict()
    state["0/kernel"][...] = 0
    assert model.layers[0].kernel.numpy().any()


def test_load_of_another_architecture_lists_mismatches_and_changes_nothing(tmp_path):
    wide, narrow = make(width=6), make(width=4)
    wide.build((None, 5))
    narrow.build((None, 5))
    path = str(tmp_path / "wide.npz")
    wide.save(path)
    before = narrow.state_dict()
    with pytest.raises(ValueError) as err:
        narrow.load(path)
    message = str(err.value)
    for text in ("'0/kernel': shape (5, 6) in the state, (5, 4) in the model",
                 "'1/gamma'", "'3/kernel'"):
        assert text in message
    after = narrow.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    state = wide.state_dict()
    state["extra"] = np.zeros(2)
    del state["3/bias"]
    with pytest.raises(ValueError, match=r"missing '3/bias'.*unexpected 'extra'"):
        wide.load_state_dict(state)


def test_load_into_unbuilt_model_says_to_build():
    with pytest.raises(ValueError, match="build"):
        make().load_state_dict(make().state_dict() | {"0/kernel": np.zeros((5, 4))})


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    model = make()
    model.build((None, 5))
    path = str(tmp_path / "m.npz")
    model.save(path)
    original = open(path, "rb").read()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert open(path, "rb").read() == original
    assert os.listdir(tmp_path) == ["m.npz"]
