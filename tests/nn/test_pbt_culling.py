"""Successive halving and population-based training inside one nn.Population."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import nn
import optim
from nn.tuning.pbt import perturb
from optim.search import Choice, LogUniform, OneMinusLogUniform, Uniform

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)


def setup(k=6, lrs=None):
    pop = nn.Population(lambda: nn.Sequential([nn.Dense(4), nn.BatchNorm(), nn.ReLU(),
                                               nn.Dense(1)]), size=k, seed=0)
    opt = optim.Adam(lrs if lrs is not None else 0.01)

    def train(epoch):
        pop.train_step(X, Y, nn.mean_squared_error, opt)

    def score():
        return -pop.member_losses(nn.mean_squared_error, pop(X), Y, shared=True).numpy()

    return pop, opt, train, score


def member_state(pop, opt, k):
    return ([v.numpy()[k] for v in pop.variables],
            {key: v[k] for key, v in opt.state_dict().items()
             if key.startswith("slots/")})


def test_culling_keeps_the_best_half_until_one_remains_with_its_optimizer_state():
    lrs = [0.0, 0.05, 1e-4, 0.02, 0.0, 0.01]
    pop, opt, train, score = setup(6, lrs)
    seen = []
    result = nn.cull(pop, opt, lambda e: (seen.append(pop.size), train(e)), score,
                     interval=2, eta=2)
    assert seen == [6, 6, 3, 3, 2, 2, 1, 1]
    assert [len(m) for m in result.members] == [6, 3, 2, 1]
    for before, after, scores in zip(result.members, result.members[1:], result.scores):
        best = np.argsort(-np.array(scores), kind="stable")[: len(after)]
        assert sorted(after) == sorted(before[i] for i in best)
    assert pop.size == 1 and opt.learning_rate.tolist() == [lrs[result.survivor]]
    assert lrs[result.survivor] > 0 and opt.state_dict()["slots/0/m"].shape[0] == 1
    with pytest.raises(ValueError, match="eta must be an integer >= 2"):
        nn.cull(pop, opt, train, score, interval=1, eta=1)


SPACE = {"learning_rate": LogUniform(1e-3, 0.1), "beta_1": OneMinusLogUniform(0.8, 0.99)}


def test_right_after_a_copy_the_member_equals_its_source():
    def run(check=None):
        pop, opt, train, score = setup(4)

        def train_and_check(epoch):
            if check is not None and epoch == 2:  # right after the first exploit step
                check(pop, opt)
            train(epoch)

        return nn.population_based_training(pop, opt, train_and_check, score, epochs=4,
                                            interval=2, space=SPACE, fraction=0.25,
                                            resample=0.0, seed=1)

    first = run()  # the same call again makes the same copies: check them as they happen
    copies = [c for c in first.copies if c[0] == 2]
    checked = []

    def check(pop, opt):
        for _, target, source, _ in copies:
            w_t, s_t = member_state(pop, opt, target)
            w_s, s_s = member_state(pop, opt, source)
            for a, b in zip(w_t, w_s, strict=True):
                assert_array_equal(a, b)
            for key in s_s:
                assert_array_equal(s_t[key], s_s[key])
            checked.append(target)

    again = run(check)
    assert copies and checked == [c[1] for c in copies] and again.copies == first.copies
    for epoch, target, source, why in first.copies:
        assert why == "exploit" and first.schedule[target][-1][0] == epoch
        explored = first.schedule[target][-1][1]["learning_rate"]
        parent = [lr for start, lr in ((e, h["learning_rate"]) for e, h in
                                       first.schedule[source]) if start < epoch][-1]
        ratio = explored / parent
        assert np.isclose(ratio, 0.8) or np.isclose(ratio, 1.25) or explored in (1e-3, 0.1)
    assert first.lineage(first.copies[0][1])[0] == first.copies[0]


def test_a_member_that_turns_nan_is_replaced_at_the_next_exploit_step():
    pop, opt, train, score = setup(4)

    def poisoning(epoch):
        if epoch == 1:
            v = pop.trainable_variables[0]
            value = v.numpy()
            value[2] = np.nan
            v.assign(value)
        train(epoch)

    result = nn.population_based_training(pop, opt, poisoning, score, epochs=4, interval=2,
                                          space={"learning_rate": LogUniform(1e-3, 0.1)},
                                          fraction=0.25, seed=0)
    nan_copies = [c for c in result.copies if c[1] == 2]
    assert nan_copies and nan_copies[0][0] == 2 and nan_copies[0][3] == "nonfinite"
    assert np.isnan(result.scores[0][2])
    assert not pop.frozen.any()
    assert all(np.isfinite(v.numpy()).all() for v in pop.variables)


def test_explore_stays_inside_the_space_on_its_own_scale():
    rng = np.random.default_rng(0)
    lr, beta = LogUniform(1e-4, 0.1), OneMinusLogUniform(0.9, 0.999)
    for _ in range(50):
        assert 1e-4 <= perturb(lr, 0.1, rng, 0.0) <= 0.1
        b = perturb(beta, 0.999, rng, 0.0)
        assert 0.9 <= b <= 0.999
        assert np.isclose(1 - b, 0.001 * 1.25) or np.isclose(b, 0.999)
        assert perturb(Choice([1, 2, 3]), 2, rng, 0.0) in (1, 3)
        assert 0 <= perturb(Uniform(0, 1), 0.5, rng, 1.0) <= 1


def test_bad_arguments():
    pop, opt, train, score = setup(4)
    with pytest.raises(ValueError, match=r"space names \['momentum'\], which are not"):
        nn.population_based_training(pop, opt, train, score, epochs=2, interval=1,
                                      space={"momentum": Uniform(0, 1)})
    with pytest.raises(ValueError, match="fraction must be in"):
        nn.population_based_training(pop, opt, train, score, epochs=2, interval=1,
                                      space={}, fraction=0.9)
    with pytest.raises(ValueError, match="score\\(\\) must give one value per member"):
        nn.cull(pop, opt, train, lambda: [1.0], interval=1)


def replay_run(k=4, epochs=6, dtype=np.float64):
    """A PBT run trained by `nn.fit` one epoch at a time (no shuffling), and a function that
    replays member m's schedule on a standalone model with nn.fit over all the epochs."""
    def build():
        return nn.Sequential([nn.Dense(4, dtype=dtype), nn.ReLU(), nn.Dense(1, dtype=dtype)])

    x, y = X.astype(dtype), Y.astype(dtype)
    fit = dict(loss=nn.mean_squared_error, batch_size=8, shuffle=False, verbose=0)
    pop = nn.Population(build, size=k, seed=3)
    opt = optim.Adam(0.01)

    def train(epoch):
        nn.fit(pop, x, y, optimizer=opt, epochs=epoch + 1, initial_epoch=epoch, **fit)

    def score():
        return -pop.member_losses(nn.mean_squared_error, pop(x), y, shared=True).numpy()

    result = nn.population_based_training(pop, opt, train, score, epochs=epochs, interval=2,
                                          space=SPACE, fraction=0.25, resample=0.0, seed=2)

    def replay(m):
        with nn.seeded(pop.seeds[result.origin(m)]):
            model = build()
        nn.fit(model, x, y, optimizer=optim.Adam(0.5), epochs=epochs,
               callbacks=[nn.HyperparameterSchedule(result.schedule_of(m))], **fit)
        return model

    return pop, result, replay


def test_replaying_a_member_never_overwritten_retraces_it():
    pop, result, replay = replay_run()
    kept = [m for m in range(pop.size) if not result.lineage(m)]
    assert kept and result.copies  # some members were copied, some never
    for m in kept:
        assert result.origin(m) == m and len(result.schedule_of(m)) == 1
        model = replay(m)
        for a, b in zip(model.state_dict().values(), pop.member(m).state_dict().values(),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_replaying_a_copied_member_follows_its_lineage():
    pop, result, replay = replay_run()
    m = result.copies[-1][1]
    schedule = result.schedule_of(m)
    assert schedule[-1] == result.schedule[m][-1] and len(schedule) >= 2
    model = replay(m)
    for a, b in zip(model.state_dict().values(), pop.member(m).state_dict().values(),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_hyperparameter_schedule_checks_its_schedule():
    with pytest.raises(ValueError, match="increasing integer epochs >= 0; got epochs"):
        nn.HyperparameterSchedule([(2, {}), (1, {})])
    with pytest.raises(ValueError, match=r"the schedule sets \['momentum'\], which are not"):
        nn.fit(nn.Dense(1, seed=0), X, Y, loss=nn.mean_squared_error, optimizer=optim.Adam(0.1),
               verbose=0, callbacks=[nn.HyperparameterSchedule([(0, {"momentum": 0.5})])])


def test_plot_draws_the_scores_and_the_copies_into_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    pop, opt, train, score = setup(4)
    result = nn.population_based_training(pop, opt, train, score, epochs=7, interval=2,
                                          space=SPACE, seed=0)
    assert result.score_epochs == [2, 4, 6] and result.copies
    path = tmp_path / "pbt.png"
    assert nn.plot_pbt(result, path) == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.plot(tmp_path / "again.png").endswith("again.png")
    with pytest.raises(ValueError, match="nothing to plot: the result has no scores"):
        nn.PBTResult().plot(tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()
