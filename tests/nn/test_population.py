"""nn.Population: stacking, per-member training equal to standalone training, frozen members,
member/select, fit and evaluate with one value per member, bad input."""

import numpy as np
import pytest

import nn
import optim
import tape
from nn.layers.core import make_rng, per_member

RNG = np.random.default_rng(0)
X = RNG.standard_normal((640, 6))
Y = np.argmax(X @ RNG.standard_normal((6, 3)), axis=1)
K = 4
LRS = np.array([1e-3, 3e-3, 1e-2, 3e-2])
BETAS = np.array([0.9, 0.8, 0.95, 0.5])


def build(dtype=np.float32):
    """Layers without seeds: a population seeds them per member."""
    return nn.Sequential([nn.Dense(8, use_bias=False, dtype=dtype), nn.BatchNorm(dtype=dtype),
                          nn.ReLU(), nn.Dense(3, dtype=dtype)])


def states_close(a, b, rtol):
    assert list(a) == list(b)
    for name in a:
        scale = np.max(np.abs(b[name])) or 1.0
        assert np.max(np.abs(a[name] - b[name])) <= rtol * scale, name


def test_member_k_starts_as_build_alone_with_its_seed():
    pop = nn.Population(build, K, seed=7)
    assert pop.seeds == [int(s) for s in np.random.SeedSequence(7).generate_state(K)]
    pop.build((None, 6))
    for k in (0, 3):
        with nn.seeded(pop.seeds[k]):
            alone = build()
        alone.build((None, 6))
        states_close(pop.member(k).state_dict(), alone.state_dict(), 0.0)
    kernels = pop.state_dict()["0/kernel"]
    assert kernels.shape == (K, 6, 8) and not np.array_equal(kernels[0], kernels[1])


def test_build_taking_a_seed_gets_the_member_seed():
    pop = nn.Population(lambda seed: nn.Dense(2, input_dim=3, seed=seed), 3, seed=[5, 5, 6])
    kernels = pop.state_dict()["kernel"]  # built at construction: stacked at once
    np.testing.assert_array_equal(kernels[0], kernels[1])
    np.testing.assert_array_equal(kernels[2], nn.Dense(2, input_dim=3, seed=6).kernel.numpy())


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("own_data", [False, True], ids=["shared data", "own data"])
def test_member_trains_exactly_like_the_model_alone(dtype, rtol, own_data):
    pop = nn.Population(lambda: build(dtype), K, seed=1)
    pop.build((None, 6))
    alone = [pop.member(k) for k in range(K)]
    data = [np.roll(X, 7 * k, axis=0) if own_data else X for k in range(K)]
    labels = [np.roll(Y, 7 * k) if own_data else Y for k in range(K)]
    Xp, Yp = (np.stack(data), np.stack(labels)) if own_data else (X, Y)
    fit = dict(loss=nn.softmax_cross_entropy, epochs=1, batch_size=64, seed=3)  # 10 steps
    history = nn.fit(pop, Xp, Yp, optimizer=optim.Adam(LRS, beta_1=BETAS), **fit)
    for k in range(K):
        h = nn.fit(alone[k], data[k], labels[k],
                   optimizer=optim.Adam(float(LRS[k]), beta_1=float(BETAS[k])), **fit)
        states_close(pop.member(k).state_dict(), alone[k].state_dict(), rtol)
        assert history.loss[0][k] == pytest.approx(h.loss[0], rel=rtol)
        assert history.accuracy[0][k] == pytest.approx(h.accuracy[0], abs=1e-12)


def test_fit_and_evaluate_give_one_value_per_member():
    pop = nn.Population(build, K, seed=0)
    history = nn.fit(pop, X[:512], Y[:512], loss=nn.softmax_cross_entropy,
                     optimizer=optim.Adam(LRS * 10), epochs=3, batch_size=64,
                     validation_data=(X[512:], Y[512:]))
    assert len(history) == 3 and history.frozen == {} and not pop.frozen.any()
    for values in history.history.values():
        assert all(v.shape == (K,) for v in values)
    val = nn.evaluate(pop, X[512:], Y[512:], loss=nn.softmax_cross_entropy)
    np.testing.assert_allclose(val["accuracy"], history.val_accuracy[-1])
    best = pop.member(int(np.argmax(history.val_accuracy[-1])))
    assert isinstance(best, nn.Sequential)
    assert nn.accuracy(best(X[512:]), Y[512:]) == np.max(history.val_accuracy[-1])
    assert pop(X[:5]).shape == (K, 5, 3)


def test_a_diverging_member_is_frozen_and_the_others_go_on():
    def regression():
        return nn.Sequential([nn.Dense(4, dtype=np.float64), nn.BatchNorm(dtype=np.float64),
                              nn.Dense(1, dtype=np.float64)])
    y = X[:, :1] * 3.0
    lrs = np.array([0.01, 1e200, 0.02])
    pop = nn.Population(regression, 3, seed=0)
    pop.build((None, 6))
    alone = [pop.member(k) for k in (0, 2)]
    before = pop.member(1).state_dict()
    fit = dict(loss=nn.mean_squared_error, epochs=2, batch_size=64, seed=0)
    history = nn.fit(pop, X, y, optimizer=optim.SGD(lrs, momentum=0.9), **fit)
    assert pop.frozen.tolist() == [False, True, False]
    assert list(history.frozen) == [1] and "training diverged at epoch 1/2, step" in \
        history.frozen[1]
    frozen = pop.member(1).state_dict()  # as it was before the step that diverged
    assert all(np.isfinite(v).all() for v in frozen.values())
    assert frozen["1/moving_mean"].tolist() != before["1/moving_mean"].tolist()  # stepped once
    for model, k in zip(alone, (0, 2)):
        nn.fit(model, X, y, optimizer=optim.SGD(float(lrs[k]), momentum=0.9), **fit)
        states_close(pop.member(k).state_dict(), model.state_dict(), 1e-10)
    assert np.isfinite(history.loss[-1][[0, 2]]).all()


def test_training_stops_when_every_member_diverged():
    pop = nn.Population(lambda: nn.Dense(1, input_dim=6, dtype=np.float64), 2, seed=0)
    history = nn.fit(pop, X, X[:, :1], loss=nn.mean_squared_error,
                     optimizer=optim.SGD([1e200, 1e250]), epochs=5, batch_size=64)
    assert pop.frozen.all() and len(history) == 1
    assert history.stop_reason == "every member of the population diverged"


def test_select_keeps_members_and_their_optimizer_state():
    full = nn.Population(build, K, seed=2)
    part = nn.Population(build, K, seed=2)
    fit = dict(loss=nn.softmax_cross_entropy, epochs=1, batch_size=64, seed=0)
    opt_full, opt_part = optim.Adam(LRS), optim.Adam(LRS)
    nn.fit(full, X, Y, optimizer=opt_full, **fit)
    nn.fit(part, X, Y, optimizer=opt_part, **fit)
    part.select([3, 1], optimizer=opt_part)
    assert part.size == 2 and part.seeds == [full.seeds[3], full.seeds[1]]
    np.testing.assert_array_equal(opt_part.learning_rate, LRS[[3, 1]])
    nn.fit(full, X, Y, optimizer=opt_full, **{**fit, "seed": 1})
    nn.fit(part, X, Y, optimizer=opt_part, **{**fit, "seed": 1})
    states_close(part.member(0).state_dict(), full.member(3).state_dict(), 0.0)
    states_close(part.member(1).state_dict(), full.member(1).state_dict(), 0.0)


def test_state_dict_round_trip_and_custom_losses():
    pop = nn.Population(build, 2, seed=0)
    out = pop(X[:8])
    copy = nn.Population(build, 2, seed=9)
    copy.build((None, 6))
    copy.load_state_dict(pop.state_dict())
    np.testing.assert_array_equal(copy(X[:8]).numpy(), out.numpy())

    def plain_mse(predictions, targets):  # no `reduction`: evaluated member by member
        return tape.mean((predictions - targets) ** 2)

    targets = np.zeros((8, 3))
    np.testing.assert_allclose(
        pop.member_losses(plain_mse, out, targets, shared=True).numpy(),
        pop.member_losses(nn.mean_squared_error, out, targets, shared=True).numpy(), rtol=1e-6)


def test_bad_input():
    widths = iter([4, 4, 5])
    with pytest.raises(ValueError, match=r"at '0', member 0 has \{'units': 4\} but member 2 "
                                         r"has \{'units': 5\}"):
        nn.Population(lambda: nn.Sequential([nn.Dense(next(widths))]), 3, seed=0).build((2, 3))
    pop = nn.Population(build, K, seed=0)
    pop.build((None, 6))
    with pytest.raises(ValueError, match="'learning_rate' has 3 values, but the population has 4"):
        nn.fit(pop, X, Y, loss=nn.softmax_cross_entropy, optimizer=optim.Adam(LRS[:3]))
    with pytest.raises(IndexError, match="member 4 is out of range"):
        pop.member(4)
    with pytest.raises(ValueError, match="takes inputs of 2 axes"):
        pop(np.ones((3, 5, 6)))
    with pytest.raises(ValueError, match="distinct"):
        pop.select([1, 1])
    with pytest.raises(ValueError, match="member seeds"):
        nn.Population(build, 3, seed=[1, 2])

    class Scale(nn.Module):  # owns a variable but knows nothing of populations
        def build(self, input_shape):
            self.w = tape.Variable(np.ones(input_shape[-1]))

        def call(self, x, training=False):
            return x * self.w

    with pytest.raises(TypeError, match="'scale' .* does not support populations"):
        nn.Population(Scale, 2, seed=0).build((None, 3))


class StackableScale(nn.Module):
    """A layer written for this test: `x * w + b` per feature, with population support from
    the one hook, `stack_members`, and nothing else."""

    def __init__(self, seed=None):
        super().__init__()
        self.rng = make_rng(seed, None)
        self.members = None

    def build(self, input_shape):
        self.w = tape.Variable(self.rng.standard_normal(input_shape[-1]))
        self.b = tape.Variable(np.zeros(input_shape[-1]))

    def stack_members(self, size):
        self.members = size

    def call(self, x, training=False):
        if self.members is None:
            return x * self.w + self.b
        return x * per_member(self.w, x.ndim) + per_member(self.b, x.ndim)


def test_a_new_layer_gets_population_support_from_the_hook_alone():
    def model():
        return nn.Sequential([StackableScale(), nn.Dense(3, dtype=np.float64)])

    x, y = X[:64], Y[:64]
    pop = nn.Population(model, 3, seed=7)
    hist = nn.fit(pop, x, y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD([0.1, 0.2, 0.3]),
                  epochs=2, batch_size=16, verbose=0, shuffle=False)
    assert hist.loss[-1].shape == (3,)
    assert pop.trainable_variables[0].shape == (3, 6)
    for k, lr in enumerate([0.1, 0.2, 0.3]):
        with nn.seeded(pop.seeds[k]):
            alone = model()
        nn.fit(alone, x, y, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(lr), epochs=2,
               batch_size=16, verbose=0, shuffle=False)
        states_close(pop.member(k).state_dict(), alone.state_dict(), 1e-12)


def test_the_policy_fit_asks_is_the_models():
    pop = nn.Population(build, 2, seed=0)
    assert pop.training_policy().per_member and pop.training_policy().examples_axis(X) == 0
    assert pop.training_policy().examples_axis(np.stack([X, X])) == 1
    single = build().training_policy()
    assert not single.per_member and single.frozen_count() == 0 and not single.all_frozen()
