"""Optimizers: convergence, the published update equations step by step, the seed example."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from optim import SGD, Adagrad, Adam, AdamW, Nadam, Optimizer, RMSprop
from optim.transforms import ScaleByRms, Trace
from tape import Tape, Variable

# -- convergence: one table, two functions ---------------------------------------------------

CONVERGENCE = [
    # name, factory of the learning rate, (lr, steps) on the parabola, (lr, steps) on Rosenbrock
    ("sgd", lambda lr: SGD(lr), (0.04, 500), (0.002, 7000)),
    ("momentum", lambda lr: SGD(lr, momentum=0.9), (0.04, 500), (0.001, 2000)),
    ("nesterov", lambda lr: SGD(lr, momentum=0.9, nesterov=True), (0.04, 500), (0.001, 2000)),
    ("rmsprop", lambda lr: RMSprop(lr), (0.04, 500), (0.003, 5000)),
    ("adam", lambda lr: Adam(lr), (0.04, 500), (0.05, 2500)),
    ("amsgrad", lambda lr: Adam(lr, amsgrad=True), (0.04, 500), (0.05, 3000)),
    ("adamw", lambda lr: AdamW(lr, weight_decay=1e-4), (0.04, 500), (0.05, 3000)),
    ("adagrad", lambda lr: Adagrad(lr), (1.0, 500), (0.3, 10000)),
    ("nadam", lambda lr: Nadam(lr), (0.04, 500), (0.05, 2500)),
]


def _parabola(w: Variable) -> tape.Tensor:
    return tape.sum((w - np.array([3.0, -2.0])) ** 2 * np.array([1.0, 10.0]))


def _rosenbrock(w: Variable) -> tape.Tensor:
    x, y = w[0], w[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


@pytest.mark.parametrize("name, make, parabola, rosenbrock", CONVERGENCE,
                         ids=[row[0] for row in CONVERGENCE])
def test_converges_on_parabola_and_rosenbrock(name, make, parabola, rosenbrock):
    for loss, start, (lr, steps), target, tol in (
        (_parabola, [0.0, 0.0], parabola, [3.0, -2.0], 1e-3),
        (_rosenbrock, [-1.0, 1.5], rosenbrock, [1.0, 1.0], 1e-2),
    ):
        w = Variable(start)
        opt = make(lr)
        for _ in range(steps):
            opt.minimize(lambda: loss(w), [w])  # noqa: B023
        np.testing.assert_allclose(w.numpy(), target, atol=tol, err_msg=loss.__name__)


# -- the published update equations, from scratch ----------------------------------------------

def _adam_reference(lr, b1, b2, eps, wd=0.0, amsgrad=False):
    m = v = v_max = 0.0

    def step(w, g, t):
        nonlocal m, v, v_max
        w = w - lr * wd * w  # decoupled decay (AdamW); no-op when wd == 0
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_max = np.maximum(v_max, v)
        m_hat = m / (1 - b1**t)
        v_hat = (v_max if amsgrad else v) / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return step


def _adagrad_reference(lr, eps):
    s = 0.0

    def step(w, g, t):
        nonlocal s
        s = s + g**2
        return w - lr * g / (np.sqrt(s) + eps)
    return step


def _nadam_reference(lr, b1, b2, eps):
    m = v = 0.0

    def step(w, g, t):
        nonlocal m, v
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        return w - lr * m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
    return step


def _rmsprop_reference(lr, rho, eps):
    s = 0.0

    def step(w, g, t):
        nonlocal s
        s = rho * s + (1 - rho) * g**2
        return w - lr * g / (np.sqrt(s) + eps)
    return step


def _momentum_reference(lr, mu, nesterov=False):
    b = 0.0

    def step(w, g, t):
        nonlocal b
        b = mu * b + g
        return w - lr * (g + mu * b if nesterov else b)
    return step


REFERENCES = [
    ("adam", lambda: Adam(0.01, 0.8, 0.95, 1e-3), _adam_reference(0.01, 0.8, 0.95, 1e-3)),
    ("amsgrad", lambda: Adam(0.01, 0.8, 0.95, 1e-3, amsgrad=True),
     _adam_reference(0.01, 0.8, 0.95, 1e-3, amsgrad=True)),
    ("adamw", lambda: AdamW(0.01, 0.8, 0.95, 1e-3, weight_decay=0.3),
     _adam_reference(0.01, 0.8, 0.95, 1e-3, wd=0.3)),
    ("rmsprop", lambda: RMSprop(0.01, rho=0.8, epsilon=1e-3), _rmsprop_reference(0.01, 0.8, 1e-3)),
    ("momentum", lambda: SGD(0.01, momentum=0.7), _momentum_reference(0.01, 0.7)),
    ("nesterov", lambda: SGD(0.01, momentum=0.7, nesterov=True),
     _momentum_reference(0.01, 0.7, nesterov=True)),
    ("sgd", lambda: SGD(0.01), _momentum_reference(0.01, 0.0)),
    ("adagrad", lambda: Adagrad(0.01, epsilon=1e-3), _adagrad_reference(0.01, 1e-3)),
    ("nadam", lambda: Nadam(0.01, 0.8, 0.95, 1e-3), _nadam_reference(0.01, 0.8, 0.95, 1e-3)),
]


@pytest.mark.parametrize("name, make, reference", REFERENCES, ids=[r[0] for r in REFERENCES])
def test_matches_published_equations_for_20_steps(name, make, reference):
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((20, 2, 3)) * np.logspace(-3, 1, 20)[:, None, None]
    w0 = rng.standard_normal((2, 3))
    w, expected = Variable(w0), w0.copy()
    opt = make()
    for t, g in enumerate(grads, start=1):
        opt.apply_gradients([(g, w)])
        expected = reference(expected, g, t)
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-12, atol=1e-14,
                                   err_msg=f"step {t}")
    assert opt.iterations == 20


def test_momentum_is_a_weighted_average_with_scaled_learning_rate():
    alpha, beta = 0.1, 0.9
    rng = np.random.default_rng(2)
    w, course_w, v = Variable(np.zeros(4)), np.zeros(4), np.zeros(4)
    opt = SGD(learning_rate=alpha * (1 - beta), momentum=beta)
    for g in rng.standard_normal((20, 4)):
        opt.apply_gradients([(g, w)])
        v = beta * v + (1 - beta) * g
        course_w = course_w - alpha * v
    np.testing.assert_allclose(w.numpy(), course_w, rtol=1e-12, atol=1e-15)


def test_rmsprop_with_momentum_composes_links():
    # PyTorch's RMSprop(momentum=mu): b = mu*b + g/(sqrt(v)+eps); w -= lr*b
    w, ref_w, v, b = Variable(np.ones(3)), np.ones(3), 0.0, 0.0
    opt = Optimizer(0.01, [ScaleByRms(), Trace()], rho=0.9, momentum=0.5, epsilon=1e-8)
    for g in np.random.default_rng(3).standard_normal((10, 3)):
        opt.apply_gradients([(g, w)])
        v = 0.9 * v + 0.1 * g**2
        b = 0.5 * b + g / (np.sqrt(v) + 1e-8)
        ref_w = ref_w - 0.01 * b
    np.testing.assert_allclose(w.numpy(), ref_w, rtol=1e-12)


# -- the seed example, both forms --------------------------------------------------------------

X = np.array([1.0, -10.0, 25.0])


def test_seed_example_with_minimize():
    w = Variable(0.0)
    opt = Adam(0.1)
    for _ in range(1000):
        loss = opt.minimize(lambda: X[0] * w**2 + X[1] * w + X[2], [w])
    assert abs(float(w) - 5.0) < 1e-3
    assert isinstance(loss, tape.Tensor) and float(loss) < 1e-5
    assert opt.iterations == 1000


def test_seed_example_with_apply_gradients_and_zip():
    w = Variable(0.0)
    variables = [w]
    opt = Adam(0.1)
    for _ in range(1000):
        with Tape() as t:
            cost = X[0] * w**2 + X[1] * w + X[2]
        assert opt.apply_gradients(zip(t.gradient(cost, variables), variables, strict=True))
    assert abs(float(w) - 5.0) < 1e-3


# -- dtypes, in-place updates, tapes -----------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9, nesterov=True),
                                  lambda: RMSprop(0.1), lambda: AdamW(0.1, amsgrad=True)])
def test_float32_variables_and_slots_stay_float32(make):
    w = Variable(np.ones((3, 2), np.float32))
    array = np.asarray(w)
    opt = make()
    for _ in range(3):
        opt.minimize(lambda: tape.sum(w * w), [w])
        opt.apply_gradients([(np.ones((3, 2)), w)])  # a float64 gradient is cast
    assert w.dtype == np.float32 and np.asarray(w) is array  # updated in place
    assert all(v.dtype == np.float32 for k, v in opt.state_dict().items()
               if k.startswith("slots/"))


def test_updates_are_not_recorded_and_bump_the_version():
    w = Variable([1.0, 2.0])
    opt = Adam(0.1)
    with Tape(persistent=True) as t:
        opt.apply_gradients([(np.ones(2), w)])
        y = tape.sum(w * 3.0)
    assert t.watched_variables() == (w,)
    np.testing.assert_array_equal(t.gradient(y, w), [3.0, 3.0])
    with Tape() as t:
        y = tape.sum(w * w)
    opt.apply_gradients([(np.ones(2), w)])
    with pytest.raises(RuntimeError, match="assigned after"):
        t.gradient(y, w)  # the tape sees the in-place update (version counter)


def test_minimize_several_variables_and_learning_rate_change_between_steps():
    a, b = Variable(np.zeros(2)), Variable(0.0)
    opt = SGD(0.1)
    opt.minimize(lambda: tape.sum((a - 1.0) ** 2) + (b + 2.0) ** 2, [a, b])
    np.testing.assert_allclose(a.numpy(), [0.2, 0.2])
    assert float(b) == pytest.approx(-0.4)
    opt.learning_rate = 0.0
    opt.minimize(lambda: tape.sum((a - 1.0) ** 2) + (b + 2.0) ** 2, [a, b])
    np.testing.assert_allclose(a.numpy(), [0.2, 0.2])


def test_schedule_sees_the_step_count():
    seen = []
    w = Variable(1.0)

    def lr(step):
        seen.append(step)
        return 0.1

    opt = SGD(lr)
    for _ in range(3):
        opt.apply_gradients([(1.0, w)])
    assert seen == [0, 1, 2] and opt.current_learning_rate == 0.1
    assert float(w) == pytest.approx(0.7)


def test_minimize_updates_a_non_trainable_variable_it_is_given():
    frozen = Variable(1.0, trainable=False)
    SGD(0.5).minimize(lambda: frozen * 2.0, [frozen])
    assert float(frozen) == 0.0
