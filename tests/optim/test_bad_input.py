"""Every bad input is refused with a clear error, and nothing is half-applied."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tape
from optim import SGD, Adam, AdamW, RMSprop
from tape import Tape, Variable

NAN, INF = float("nan"), float("inf")

BAD_HYPERPARAMETERS = [
    (lambda: SGD(-0.1), "learning_rate"),
    (lambda: SGD(INF), "learning_rate"),
    (lambda: Adam(NAN), "learning_rate"),
    (lambda: Adam(np.array([0.1, -0.1])), "learning_rate"),
    (lambda: Adam(beta_1=1.0), "beta_1"),
    (lambda: Adam(beta_1=-0.1), "beta_1"),
    (lambda: Adam(beta_2=1.5), "beta_2"),
    (lambda: Adam(beta_2=NAN), "beta_2"),
    (lambda: Adam(epsilon=-1e-8), "epsilon"),
    (lambda: RMSprop(0.1, rho=1.0), "rho"),
    (lambda: RMSprop(0.1, epsilon=INF), "epsilon"),
    (lambda: SGD(0.1, momentum=1.0), "momentum"),
    (lambda: AdamW(weight_decay=-0.01), "weight_decay"),
    (lambda: Adam(clipnorm=0.0), "clipnorm"),
    (lambda: Adam(global_clipnorm=-1.0), "global_clipnorm"),
    (lambda: Adam(clipnorm=1.0, global_clipnorm=1.0), "only one"),
    (lambda: Adam(np.ones((2, 2))), "1-D"),
    (lambda: Adam(np.array([])), "1-D"),
    (lambda: Adam(np.array([0.1, 0.2]), beta_1=np.array([0.9, 0.9, 0.9])), "same length"),
]


@pytest.mark.parametrize("make, match", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_hyperparameters_on_assignment_change_nothing():
    opt = SGD(0.1, momentum=0.5)
    for name, value in (("learning_rate", -1.0), ("momentum", 1.0), ("clipnorm", 0.0)):
        with pytest.raises(ValueError, match=name):
            setattr(opt, name, value)
    with pytest.raises(TypeError):
        opt.learning_rate = "fast"
    assert opt.learning_rate == 0.1 and opt.momentum == 0.5 and opt.clipnorm is None


def test_gradient_shape_mismatch_names_variable_and_shapes():
    w = Variable(np.zeros((2, 3)), name="kernel")
    with pytest.raises(ValueError, match=r"'kernel'.*\(3, 2\).*\(2, 3\)"):
        Adam().apply_gradients([(np.zeros((3, 2)), w)])


@pytest.mark.parametrize("pairs", [
    lambda w: [(np.zeros(2), np.zeros(2))],
    lambda w: [(np.zeros(2), tape.constant(np.zeros(2)))],
    lambda w: [(w, np.zeros(2))],  # swapped order
    lambda w: [np.zeros(2)],
    lambda w: [(np.zeros(2), Variable(np.zeros(2, np.int64)))],
])
def test_non_variables_in_grads_and_vars(pairs):
    w = Variable(np.zeros(2))
    with pytest.raises(TypeError):
        Adam().apply_gradients(pairs(w))


def test_non_variables_in_var_list():
    w = Variable(1.0)
    with pytest.raises(TypeError, match="not a tape.Variable"):
        Adam().minimize(lambda: w * 2, [w, np.ones(2)])
    with pytest.raises(TypeError, match="not a tape.Variable"):
        Adam().build([tape.constant(1.0)])


def test_none_gradients_warn_once_and_the_rest_is_applied():
    a, b, c = Variable(1.0, name="a"), Variable(1.0, name="b"), Variable(1.0, name="c")
    opt = SGD(0.5)
    with Tape() as t:
        y = a * 2.0
    with pytest.warns(UserWarning, match=r"\['b', 'c'\]") as record:
        opt.apply_gradients(zip(t.gradient(y, [a, b, c]), [a, b, c], strict=True))
    assert len(record) == 1
    assert (float(a), float(b), float(c)) == (0.0, 1.0, 1.0)


def test_all_none_or_no_gradients_raise():
    a = Variable(1.0, name="a")
    with pytest.raises(ValueError, match=r"\['a'\]"):
        SGD(0.1).apply_gradients([(None, a)])
    with pytest.raises(ValueError, match="no gradients"):
        SGD(0.1).apply_gradients([])
    with pytest.raises(ValueError, match="no gradients"):
        SGD(0.1).minimize(lambda: tape.constant(1.0) * 2.0, [a])


def test_duplicate_variable_is_refused():
    a = Variable(1.0)
    with pytest.raises(ValueError, match="more than once"):
        SGD(0.1).apply_gradients([(1.0, a), (1.0, a)])


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_nonfinite_gradient_updates_no_variable(bad):
    a, b = Variable(np.ones(3), name="good"), Variable(np.ones(2), name="bad")
    opt = Adam(0.1)
    opt.apply_gradients([(np.ones(3), a), (np.ones(2), b)])
    before = {k: np.copy(v) for k, v in opt.state_dict().items()}
    weights = a.numpy(), b.numpy()
    with pytest.raises(FloatingPointError, match=r"\['bad'\]"):
        opt.apply_gradients([(np.ones(3), a), (np.array([1.0, bad]), b)])
    np.testing.assert_array_equal(a.numpy(), weights[0])
    np.testing.assert_array_equal(b.numpy(), weights[1])
    assert opt.iterations == 1
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_skip_nonfinite_skips_the_step_with_a_warning():
    w = Variable(np.ones(2), name="w")
    opt = SGD(0.1, momentum=0.9, skip_nonfinite=True)
    with pytest.warns(RuntimeWarning, match=r"skipped step 0.*\['w'\]"):
        assert opt.apply_gradients([(np.array([NAN, 1.0]), w)]) is False
    assert opt.iterations == 0 and np.all(w.numpy() == 1.0)
    assert opt.apply_gradients([(np.ones(2), w)]) is True
    assert opt.iterations == 1


@pytest.mark.parametrize("size", [4, 10_000])
def test_huge_finite_gradients_are_not_mistaken_for_nonfinite(size):
    w = Variable(np.zeros(size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SGD(1e-300).apply_gradients([(np.full(size, 1e308), w)])  # their sum overflows
    np.testing.assert_allclose(w.numpy(), -1e8)


@pytest.mark.parametrize("bad", [NAN, INF])
def test_nonfinite_entry_in_a_large_gradient(bad):
    w = Variable(np.zeros((100, 100), np.float32), name="big")
    g = np.ones((100, 100), np.float32)
    g[57, 3] = bad
    with pytest.raises(FloatingPointError, match="big"):
        Adam().apply_gradients([(g, w)])
    assert not w.numpy().any()


def test_nonfinite_scalar_gradient_from_a_tape():
    w = Variable(0.0, name="w")
    with np.errstate(divide="ignore"), pytest.raises(FloatingPointError, match="w"):
        Adam().minimize(lambda: tape.log(w), [w])  # d/dw log(w) at 0 is inf
    assert float(w) == 0.0
