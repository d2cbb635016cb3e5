"""state_dict/load_state_dict resume bit for bit; hyperparameters change between steps."""

from __future__ import annotations

import io

import numpy as np
import pytest

import tape
from optim import SGD, Adam, AdamW, RMSprop, schedules
from tape import Variable

MAKERS = [
    ("adam", lambda: Adam(schedules.ExponentialDecay(0.05, 0.9), clipnorm=0.5)),
    ("adamw amsgrad", lambda: AdamW(0.05, weight_decay=0.1, amsgrad=True)),
    ("rmsprop", lambda: RMSprop(0.01, global_clipnorm=1.0)),
    ("nesterov", lambda: SGD(0.01, momentum=0.9, nesterov=True)),
]


def _model(seed: int = 0) -> list[Variable]:
    rng = np.random.default_rng(seed)
    return [Variable(rng.standard_normal((4, 3)).astype(np.float32), name="kernel"),
            Variable(np.zeros(3, np.float32), name="bias")]


def _step(opt, variables, i):
    kernel, bias = variables
    x = np.random.default_rng(100 + i).standard_normal((5, 4)).astype(np.float32)
    opt.minimize(lambda: tape.sum(tape.tanh(x @ kernel + bias) ** 2), variables)


def _saved(state):
    buffer = io.BytesIO()
    np.savez(buffer, **state)  # no pickle needed: numbers and arrays only
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        return dict(data)


@pytest.mark.parametrize("name, make", MAKERS, ids=[m[0] for m in MAKERS])
def test_save_and_load_resumes_bit_for_bit(name, make):
    variables, opt = _model(), make()
    for i in range(5):
        _step(opt, variables, i)
    state = _saved(opt.state_dict())
    weights = [v.numpy() for v in variables]
    for i in range(5, 10):
        _step(opt, variables, i)

    resumed_vars = [Variable(w, name=v.name) for w, v in zip(weights, variables, strict=True)]
    resumed = make()
    resumed.load_state_dict(state, resumed_vars)
    assert resumed.iterations == 5
    for i in range(5, 10):
        _step(resumed, resumed_vars, i)
    for a, b in zip(variables, resumed_vars, strict=True):
        assert a.dtype == b.dtype == np.float32
        assert a.numpy().tobytes() == b.numpy().tobytes()
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)


def test_state_dict_is_plain_and_keyed_by_position():
    variables, opt = _model(), Adam(0.1)
    _step(opt, variables, 0)
    state = opt.state_dict()
    assert sorted(state) == [
        "hyperparameters/beta_1", "hyperparameters/beta_2", "hyperparameters/epsilon",
        "hyperparameters/learning_rate", "iterations",
        "slots/0/m", "slots/0/v", "slots/1/m", "slots/1/v"]
    assert state["iterations"] == 1 and state["slots/1/m"].shape == (3,)
    state["slots/0/m"][...] = 123.0  # a copy: the optimizer is not affected
    assert not np.any(opt.state_dict()["slots/0/m"] == 123.0)


def test_build_fixes_positions_and_load_needs_variables():
    a, b = Variable(np.ones(2)), Variable(np.ones(3))
    opt = SGD(0.1, momentum=0.9)
    opt.build([a, b])
    opt.apply_gradients([(np.ones(3), b), (np.ones(2), a)])
    assert opt.state_dict()["slots/0/momentum"].shape == (2,)
    with pytest.raises(ValueError, match=r"this SGD has no variables yet, so the saved slots of "
                       r"2 variable\(s\) \['slots/0/momentum', 'slots/1/momentum'\] have "
                       r"nothing to load into: pass var_list.*model.trainable_variables.*"
                       r"nn.load_checkpoint"):
        SGD(0.1, momentum=0.9).load_state_dict(opt.state_dict())
    other = SGD(0.1, momentum=0.9)
    other.build([a, b])
    other.load_state_dict(opt.state_dict())  # the variables it knows
    assert other.iterations == 1


def _corrupt(state, change):
    state = dict(state)
    change(state)
    return state


BAD_STATES = [
    ("missing slot", lambda s: s.pop("slots/1/v"), "missing slot"),
    ("misshapen slot", lambda s: s.update({"slots/0/m": np.zeros((3, 4))}), "shape"),
    ("extra slot", lambda s: s.update({"slots/2/m": np.zeros(3)}), "unexpected"),
    ("no iterations", lambda s: s.pop("iterations"), "iterations"),
    ("bad hyperparameter", lambda s: s.update({"hyperparameters/beta_1": 1.5}), "beta_1"),
    ("unknown hyperparameter", lambda s: s.update({"hyperparameters/rho": 0.5}), "rho"),
]


@pytest.mark.parametrize("name, change, match", BAD_STATES, ids=[b[0] for b in BAD_STATES])
def test_bad_state_is_refused_and_changes_nothing(name, change, match):
    variables, opt = _model(), Adam(0.1)
    _step(opt, variables, 0)
    good = opt.state_dict()
    target_vars, target = _model(1), Adam(0.2)
    for i in range(3):
        _step(target, target_vars, i)
    before = target.state_dict()
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(_corrupt(good, change), target_vars)
    after = target.state_dict()
    assert sorted(after) == sorted(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


# -- hyperparameters mid-run --------------------------------------------------------------------

def test_hyperparameters_can_be_changed_and_are_validated():
    opt = Adam(0.001)
    opt.beta_1 = 0.95
    opt.learning_rate = np.float32(0.01)
    assert opt.beta_1 == 0.95 and opt.learning_rate == pytest.approx(0.01)
    assert type(opt.learning_rate) is float
    with pytest.raises(ValueError, match="beta_1"):
        opt.beta_1 = 1.0
    with pytest.raises(ValueError, match="no hyperparameters"):
        opt.set_hyperparameters(momentum=0.9)
    with pytest.raises(ValueError, match="beta_2"):
        opt.set_hyperparameters(beta_1=0.5, beta_2=-0.1)
    assert opt.beta_1 == 0.95 and opt.beta_2 == 0.999  # nothing changed
    assert opt.hyperparameters["epsilon"] == 1e-8
    assert "beta_1" in dir(opt) and "Adam(learning_rate=" in repr(opt)


def test_babysitting_a_run_changes_the_next_step():
    w = Variable(0.0)
    opt = SGD(0.1, momentum=0.0)
    opt.apply_gradients([(1.0, w)])
    opt.set_hyperparameters(learning_rate=1.0, momentum=0.5)
    opt.apply_gradients([(1.0, w)])  # b = 0.5*0 + 1 (the buffer starts when momentum does)
    opt.apply_gradients([(1.0, w)])  # b = 0.5*1 + 1
    assert float(w) == pytest.approx(-0.1 - 1.0 - 1.5)
