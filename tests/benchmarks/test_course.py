"""The course tour (`python -m benchmarks.course`): the quick tour runs end to end and reports
every section; the command line and the shared helpers behave."""

from __future__ import annotations

import contextlib
import doctest
import functools
import importlib
import io
import math
import pkgutil
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

import benchmarks.course as course  # noqa: E402
import nn  # noqa: E402
from benchmarks.course import SECTIONS, Config  # noqa: E402
from benchmarks.course import batchnorm_training as bt  # noqa: E402
from benchmarks.course import regularization as reg  # noqa: E402
from benchmarks.course.__main__ import main  # noqa: E402
from benchmarks.course.common import forward_with_batch_statistics, network, plot  # noqa: E402


@pytest.fixture(scope="module")
def quick_tour(tmp_path_factory):
    """The quick tour, run once through the command line: (results, printed text, plot dir)."""
    out = tmp_path_factory.mktemp("course")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = main(["--quick", "--out", str(out)])
    return results, printed.getvalue(), out


def test_quick_tour_prints_every_section(quick_tour):
    results, text, _ = quick_tour
    assert [r.section.number for r in results] == sorted(SECTIONS) == list(range(1, 17))
    for s in SECTIONS.values():
        assert f"== {s.number}. {s.title} " in text
    for label in ("claim:", "criterion:", "measured:", "result:"):
        assert text.count(f"\n{label}") + text.startswith(label) == len(SECTIONS)
    held = sum(r.outcome.held for r in results)
    assert f"{held} of {len(SECTIONS)} claims held" in text


def test_every_result_has_a_verdict_a_headline_and_finite_numbers(quick_tour):
    results, _, _ = quick_tour
    for r in results:
        assert isinstance(r.outcome.held, bool)
        assert r.outcome.headline and r.outcome.numbers and r.seconds >= 0
        assert all(math.isfinite(v) for v in r.outcome.numbers.values()), r.section.title


def test_sections_measure_what_they_say(quick_tour):
    by_number = {r.section.number: r.outcome.numbers for r in quick_tour[0]}
    assert (by_number[1]["grid_distinct_a"], by_number[1]["random_distinct_a"]) == (5, 25)
    assert by_number[11]["w_apply_gradients"] == pytest.approx(5.0, abs=1e-3)
    assert by_number[11]["w_minimize"] == pytest.approx(5.0, abs=1e-3)
    assert set(by_number[9]) == {"noise_16", "noise_64", "noise_256"}
    assert set(by_number[6]) == {"width_decades_with_bn", "width_decades_without_bn",
                                 "highest_stable_lr_with_bn", "highest_stable_lr_without_bn"}
    assert {"learning_rates_compared", "rates_with_smaller_drift_with_bn"} <= set(by_number[13])
    assert {"reached_with_bn", "best_lr_with_bn", "best_lr_without_bn"} <= set(by_number[14])
    variants = ("plain", "dropout", "batch_norm", "both")
    assert set(by_number[15]) == {f"{k}_{v}" for k in ("gap", "val_accuracy") for v in variants}
    assert all(0.5 < by_number[15][f"val_accuracy_{v}"] <= 1 for v in variants)


def test_the_summary_lists_the_batch_norm_training_sections(quick_tour):
    results, text, _ = quick_tour
    summary = text[text.rindex(" #  section"):]
    for r in results:
        if r.section.number in (6, 13, 14):
            assert f"{r.section.number:>2}  {r.section.title}" in summary
            assert r.outcome.headline in summary


def test_the_sweep_records_what_the_sections_read():
    d, runs = bt.design(quick=True, seed=0), bt.sweep(True, 0)  # cached by the quick tour
    seeds, rates = len(d.seeds), len(d.rates)
    for r in runs.values():
        assert r.steps[0] == 0 and np.all(np.diff(r.steps) > 0)
        assert r.steps[-1] == d.epochs * 23  # 1438 training examples in batches of 64
        assert r.accuracy.shape == r.drift.shape == (seeds, rates, len(r.steps))
        for a in (r.batch_accuracy, r.diverged, r.mean_shift, r.std_change, r.kernel_change):
            assert a.shape == (seeds, rates)
        np.testing.assert_array_equal(r.drift[..., 0], 0.0)  # step 0 is the reference
        assert np.all(r.kernel_change > 0)  # the first layer learned at every rate
    np.testing.assert_array_equal(runs[True].steps, runs[False].steps)


def test_the_layer_2_pre_activations_of_a_population_are_its_members():
    X = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    build = functools.partial(network, hidden=(16, 16, 16), momentum=bt.MOMENTUM)
    pop = nn.Population(build, size=3, seed=[0, 1, 2])
    pop.build((None, 64))
    together = forward_with_batch_statistics(bt.layer_2_input(pop.submodules), pop.stack(X))
    for k in range(3):
        alone = forward_with_batch_statistics(bt.layer_2_input(pop.member(k).layers), X)
        # a stacked matmul may round differently from a single one (BLAS kernels differ)
        np.testing.assert_allclose(together[k], alone, rtol=1e-4, atol=1e-5)
    # normalized with gamma 1 and beta 0: per unit, mean 0 and variance var / (var + epsilon)
    np.testing.assert_allclose(together.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(together.var(axis=1), 1, atol=1e-2)


def fake_runs(final_accuracy, diverged, drift=None, steps_to=None):
    """A `Runs` for one seed whose last record has `final_accuracy` per learning rate (and
    that first reaches the target at `steps_to`), with the given divergence and drift."""
    final_accuracy = np.array([final_accuracy], float)
    rates = final_accuracy.shape[1]
    steps = np.arange(0, 50, 5)
    accuracy = np.zeros((1, rates, len(steps)))
    if steps_to is not None:
        for k, s in enumerate(steps_to):
            if s is not None:
                accuracy[0, k, list(steps).index(s):] = bt.TARGET
    accuracy[..., -1] = final_accuracy
    drift = np.zeros((1, rates, len(steps))) if drift is None else \
        np.broadcast_to(np.array(drift, float)[None, :, None], (1, rates, len(steps)))
    zeros = np.zeros((1, rates))
    return bt.Runs(steps, accuracy, zeros, np.array([diverged]), drift, zeros, zeros, zeros)


def test_the_verdicts_follow_the_criteria(monkeypatch):
    monkeypatch.setattr(bt, "design", lambda quick, seed: bt.Design((-2.0, -1.0, 0.0, 1.0),
                                                                   1, (0,)))
    wide = fake_runs([0.95, 0.95, 0.95, 0.5], [False, False, False, True],
                     drift=[0.1, 0.2, 0.3, 0.4], steps_to=[45, 20, 10, None])
    narrow = fake_runs([0.5, 0.95, 0.95, 0.1], [False, False, True, True],
                       drift=[0.5, 0.5, 0.2, 0.5], steps_to=[None, 30, 15, None])
    config = Config(quick=True, out=None)

    def measure(number, with_bn, without_bn):
        monkeypatch.setattr(bt, "sweep", lambda quick, seed: {True: with_bn, False: without_bn})
        return SECTIONS[number].measure(config)

    six = measure(6, wide, narrow)
    assert six.held and six.numbers["width_decades_with_bn"] == 3.0
    assert six.numbers["width_decades_without_bn"] == 1.0  # 1.0 diverged though accurate
    assert six.numbers["highest_stable_lr_with_bn"] == 1.0
    assert six.numbers["highest_stable_lr_without_bn"] == 0.1
    assert not measure(6, narrow, wide).held
    assert not measure(6, wide, wide).held  # a tie is not "wider"

    thirteen = measure(13, wide, narrow)  # both train only at 0.1: drift 0.2 vs 0.5
    assert thirteen.held and thirteen.numbers["learning_rates_compared"] == 1
    assert not measure(13, narrow, wide).held
    nothing = fake_runs([0.1] * 4, [False] * 4)
    assert not measure(13, wide, nothing).held
    assert "no learning rate at which both networks train" in measure(13, wide, nothing).headline

    fourteen = measure(14, wide, narrow)  # 10 steps at lr 1 vs 30 at 0.1 (1 diverged)
    assert fourteen.held and fourteen.numbers["steps_to_target_with_bn"] == 10
    assert fourteen.numbers["steps_to_target_without_bn"] == 30
    assert fourteen.numbers["best_lr_without_bn"] == 0.1
    assert not measure(14, narrow, wide).held
    never = measure(14, nothing, wide)
    assert not never.held and "steps_to_target_with_bn" not in never.numbers
    assert "never within 45 steps" in never.headline


def test_the_regularization_verdict_follows_its_criterion(monkeypatch):
    def runs(gaps):  # (training accuracy, validation accuracy, validation loss) per variant
        table = dict(zip(reg.VARIANTS, gaps))
        return lambda bn, rate, epochs, seed: (1.0, 1.0 - table[
            [n for n, v in reg.VARIANTS.items() if v == (bn, rate)][0]], 0.3)

    config = Config(quick=True, out=None)
    monkeypatch.setattr(reg, "overfit_run", runs([0.10, 0.05, 0.08, 0.04]))
    held = SECTIONS[15].measure(config)
    assert held.held and held.numbers["gap_dropout"] == pytest.approx(0.05)
    monkeypatch.setattr(reg, "overfit_run", runs([0.10, 0.09, 0.08, 0.04]))  # bn narrows more
    assert not SECTIONS[15].measure(config).held
    monkeypatch.setattr(reg, "overfit_run", runs([0.10, 0.12, 0.13, 0.04]))  # dropout widens
    assert not SECTIONS[15].measure(config).held


def test_plots_are_written_when_matplotlib_is_installed(quick_tour):
    pytest.importorskip("matplotlib")
    results, _, out = quick_tour
    plots = [p for r in results for p in r.outcome.plots]
    assert len(plots) >= 8
    assert {"06_bn_learning_rate.png", "13_bn_covariate_shift.png", "14_bn_speed.png",
            "15_dropout_vs_bn.png"} <= {
        p.split("/")[-1] for p in plots}
    assert all(p.startswith(str(out)) and (out / p.split("/")[-1]).stat().st_size > 0
               for p in plots)


def test_only_runs_the_chosen_sections_and_no_plots(capsys):
    results = main(["--quick", "--only", "11", "10", "--no-plots"])
    text = capsys.readouterr().out
    assert [r.section.number for r in results] == [10, 11]
    assert "== 10." in text and "== 11." in text and "== 1." not in text
    assert all(not r.outcome.plots for r in results)


def test_an_unknown_section_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["--only", "99"])
    assert "invalid choice: 99" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no section numbered"):
        course.run(Config(quick=True, out=None), [0], echo=lambda s: None)


def test_the_tour_works_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    assert plot(Config(out=tmp_path), "nothing", lambda ax: None) == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(m.name for m in pkgutil.iter_modules(course.__path__))
                         + ["__init__"])
def test_docstring_examples(name):
    module = importlib.import_module("benchmarks.course" + ("" if name == "__init__"
                                                            else f".{name}"))
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_importance_section_decides_by_its_stated_criterion(quick_tour):
    from benchmarks.course.importance import NEGLIGIBLE, SPACE, TIERS

    result = next(r for r in quick_tour[0] if r.section.number == 16)
    numbers = result.outcome.numbers
    shares = {name: numbers[f"share_{name}"] for name in SPACE}
    assert sorted(shares) == sorted(n for tier in TIERS for n in tier)
    means = [numbers[f"tier{k}_mean"] for k in range(1, 5)]
    assert means == pytest.approx([np.mean([shares[n] for n in t]) for t in TIERS])
    held = (max(shares, key=shares.get) == "learning_rate"
            and all(shares[n] < NEGLIGIBLE for n in TIERS[3]) and means[1] > means[2] > means[3])
    assert result.outcome.held == held
    assert "first: " in result.outcome.headline
