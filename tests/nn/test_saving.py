"""Save model and optimizer, load them into fresh objects, continue training: bit for bit."""

import json

import numpy as np
import pytest

import nn
import optim
from tape.utils import npz

RNG = np.random.default_rng(0)
X = RNG.standard_normal((96, 4))
Y = np.argmax(X @ RNG.standard_normal((4, 3)), axis=1)


def model():
    return nn.Sequential([nn.Dense(8, use_bias=False, seed=0), nn.BatchNorm(), nn.ReLU(),
                          nn.Dense(3, seed=1)])


def fit(m, opt, epochs, initial_epoch=0):
    return nn.fit(m, X, Y, loss="sparse_categorical_crossentropy", optimizer=opt,
                  epochs=epochs, initial_epoch=initial_epoch, batch_size=16, seed=0, verbose=0)


@pytest.mark.parametrize("built", [True, False])
def test_save_load_into_fresh_objects_and_continue_is_the_same_as_never_stopping(tmp_path,
                                                                                 built):
    straight, straight_opt = model(), optim.Adam(0.01)
    fit(straight, straight_opt, 4)
    first, first_opt = model(), optim.Adam(0.01)
    fit(first, first_opt, 2)
    nn.save_checkpoint(tmp_path / "run.npz", first, first_opt, epoch=2)
    fresh, fresh_opt = model(), optim.Adam(0.01)
    if built:
        fresh.build((None, 4))
    assert bool(fresh.variables) == built  # unbuilt: load_checkpoint builds it from the file
    start = nn.load_checkpoint(tmp_path / "run.npz", fresh, fresh_opt)
    h = fit(fresh, fresh_opt, 4, initial_epoch=start)
    assert start == 2 and len(h) == 2 and fresh_opt.iterations == straight_opt.iterations
    assert list(fresh.state_dict()) == list(straight.state_dict())
    for name, value in straight.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[name], value)
    np.testing.assert_array_equal(fresh(X).numpy(), straight(X).numpy())


def test_module_save_records_the_input_so_load_builds_a_fresh_model(tmp_path):
    m, opt = model(), optim.Adam(0.01)
    fit(m, opt, 1)
    m.save(tmp_path / "m.npz")
    assert json.loads(str(np.load(tmp_path / "m.npz")["__input__"])) == {
        "shape": [None, 4], "dtype": "float64"}
    fresh = model()
    fresh.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(fresh(X).numpy(), m(X).numpy())
    # a file without the record (an older `save`) loads into a built model only
    npz.save_arrays(tmp_path / "old.npz", m.state_dict())
    with pytest.raises(ValueError, match=r"no variables yet, and '.*old.npz' does not record"):
        model().load(tmp_path / "old.npz")
    built = model()
    built.build((None, 4))
    built.load(tmp_path / "old.npz")
    np.testing.assert_array_equal(built(X).numpy(), m(X).numpy())


@pytest.mark.parametrize("entry, message", [
    ("[1, 2]", r"the entry '__input__' is not a JSON input signature"),
    ('{"shape": [null, 4], "dtype": "object"}', r"the stored input signature .* is not"),
    ('{"shape": [null, -4], "dtype": "float32"}', r"the stored input signature .* is not"),
    ('{"shape": [null, 4.5], "dtype": "float32"}', r"the stored input signature .* is not"),
    ('{"shape": [null, 4]}', r"the stored input signature .* is not"),
])
def test_a_damaged_input_record_is_refused_with_the_file_name(tmp_path, entry, message):
    m = model()
    m.build((None, 4))
    npz.save_arrays(tmp_path / "bad.npz",
                              {**m.state_dict(), "__input__": np.asarray(entry)})
    with pytest.raises(ValueError, match=r"bad.npz.*" + message):
        model().load(tmp_path / "bad.npz")


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
    old = dict(np.load(tmp_path / "run.npz"))  # as written before the input was recorded
    meta = json.loads(str(old["meta"]))
    del meta["input"]
    np.savez(tmp_path / "old.npz", **{**old, "meta": np.asarray(json.dumps(meta))})
    with pytest.raises(ValueError, match=r"no variables yet, and '.*old.npz' does not record "
                       r"the input shape.*model.build\(\(None, n_features\)\)"):
        nn.load_checkpoint(tmp_path / "old.npz", model(), optim.Adam())
    built = model()
    built.build((None, 4))
    assert nn.load_checkpoint(tmp_path / "old.npz", built, optim.Adam()) == 0
    nn.save_checkpoint(tmp_path / "weights.npz", m)
    with pytest.raises(ValueError, match=r"holds no optimizer state"):
        nn.load_checkpoint(tmp_path / "weights.npz", m, optim.Adam())
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match=r"not a file written by nn.save_checkpoint"):
        nn.load_checkpoint(tmp_path / "other.npz", m)
