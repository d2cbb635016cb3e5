"""study.importance(): functional ANOVA on a random forest, on each hyperparameter's scale."""

import builtins
import math

import numpy as np
import pytest

from optim.search import (
    LogUniform,
    OneMinusLogUniform,
    Uniform,
    plot_importance,
    random_search,
)
from optim.search.importance import tree_shares

pytest.importorskip("sklearn")


def test_known_importance_10u1_plus_u2_plus_0u3():
    space = {"u1": Uniform(0, 1), "u2": Uniform(0, 1), "u3": Uniform(0, 1)}
    study = random_search(lambda p: 10 * p["u1"] + p["u2"] + 0 * p["u3"], space, 200, seed=0,
                          progress=False)
    shares = study.importance()
    assert list(shares) == ["u1", "u2", "u3"]
    # exact shares of a linear function: 100/101 and 1/101
    assert shares["u1"] == pytest.approx(100 / 101, abs=0.05)
    assert 0.001 < shares["u2"] < 0.05 and shares["u3"] < 0.005


def test_importance_is_measured_on_each_hyperparameters_own_scale():
    # linear in log10(lr) and in log10(1 - beta): all the variance on the warped scale
    space = {"lr": LogUniform(1e-4, 1), "beta": OneMinusLogUniform(0.9, 0.9999)}
    study = random_search(lambda p: math.log10(p["lr"]) + 0.01 * math.log10(1 - p["beta"]),
                          space, 150, seed=1, progress=False)
    shares = study.importance()
    assert shares["lr"] > 0.95 and shares["beta"] < 0.01


def test_a_tree_that_splits_once_gives_the_exact_share():
    from sklearn.tree import DecisionTreeRegressor

    x = np.array([[0.1, 0.3], [0.9, 0.7], [0.2, 0.8], [0.8, 0.1]])
    y = np.array([0.0, 4.0, 0.0, 4.0])
    np.testing.assert_array_equal(tree_shares(DecisionTreeRegressor().fit(x, y).tree_, 2),
                                  [1.0, 0.0])
    assert tree_shares(DecisionTreeRegressor().fit(x, np.ones(4)).tree_, 2) is None


def test_too_few_trials_and_a_missing_sklearn(monkeypatch):
    study = random_search(lambda p: p["x"], {"x": Uniform(0, 1)}, 1, seed=0, progress=False)
    with pytest.raises(ValueError, match="at least 2 'ok' trials.*1 ok trials"):
        study.importance()
    study = random_search(lambda p: p["x"], {"x": Uniform(0, 1)}, 5, seed=0, progress=False)
    real = builtins.__import__

    def no_sklearn(name, *args, **kw):
        if name.startswith("sklearn"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match=r"tape-autodiff\[demo\]"):
        study.importance()


def test_plot_importance_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    study = random_search(lambda p: p["x"] + 0.1 * p["y"],
                          {"x": Uniform(0, 1), "y": Uniform(0, 1)}, 30, seed=0, progress=False)
    path = plot_importance(study, tmp_path / "imp.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
