"""Which hyperparameters mattered: functional ANOVA on a random-forest surrogate.

A random forest (scikit-learn, extra ``demo``) is fitted to the ``ok`` trials' values as a
function of each searched hyperparameter's warped unit coordinate (``to_unit``: log scale for
rates, ``1 - value`` on a log scale for betas, option bins for a ``Choice``). Each tree is a
piecewise-constant function on boxes of the unit cube, so its variance over the cube and the
variance of each one-dimensional marginal (the tree averaged over all other hyperparameters)
are computed exactly (Hutter, Hoos & Leyton-Brown 2014). A hyperparameter's importance is the
share of the variance its marginal explains, averaged over the trees; the shares need not sum
to 1 (the rest is interactions).

>>> from optim.search import Uniform, random_search
>>> study = random_search(lambda p: 10 * p["a"] + p["b"], {"a": Uniform(0, 1),
...                       "b": Uniform(0, 1), "c": Uniform(0, 1)}, 60, seed=0, progress=False)
>>> shares = study.importance()
>>> shares["a"] > 0.8 > shares["b"] > shares["c"]
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .spaces import Distribution, Fixed
from .trials import Trial

__all__ = ["importance", "tree_shares"]


def importance(space: Mapping[str, Distribution], trials: Sequence[Trial], *,
               n_trees: int = 64, seed: int = 0) -> dict[str, float]:
    """The share of the variance of the objective explained by each searched hyperparameter
    (see the module doc), most important first. ``ValueError`` with fewer than 2 ``ok``
    trials; ``ImportError`` naming the extra when scikit-learn is missing.

    >>> from optim.search import Trial, Uniform
    >>> trials = [Trial(k, {"x": k / 9, "y": (k * 7 % 10) / 9}, float(k), "ok") for k in range(10)]
    >>> {k: round(v, 2) for k, v in importance({"x": Uniform(0, 1), "y": Uniform(0, 1)},
    ...                                        trials).items()}  # doctest: +ELLIPSIS
    {'x': 0.9..., 'y': 0.0...}
    """
    names = [n for n, d in space.items() if not isinstance(d, Fixed)]
    ok = [t for t in trials if t.status == "ok"]
    if len(ok) < 2 or not names:
        raise ValueError(f"importance needs at least 2 'ok' trials and a searched "
                         f"hyperparameter; the study has {len(ok)} ok trials and searches "
                         f"{names}")
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError:
        raise ImportError("importance() fits a random forest with scikit-learn: "
                          "pip install 'tape-autodiff[demo]'") from None
    x = np.array([[space[n].to_unit(t.params[n]) for n in names] for t in ok], float)
    y = np.array([t.value for t in ok], float)
    forest = RandomForestRegressor(n_estimators=n_trees, random_state=seed, max_features=1.0,
                                   min_samples_leaf=1).fit(x, y)
    shares = [s for s in (tree_shares(e.tree_, len(names)) for e in forest.estimators_)
              if s is not None]
    mean = np.mean(shares, axis=0) if shares else np.zeros(len(names))
    order = np.argsort(-mean, kind="stable")
    return {names[i]: float(mean[i]) for i in order}


def tree_shares(tree: Any, dims: int) -> np.ndarray | None:
    """Each dimension's share of the variance of one fitted scikit-learn tree (``tree_``)
    over the unit cube; ``None`` for a constant tree.

    >>> from sklearn.tree import DecisionTreeRegressor
    >>> x = np.array([[0.2, 0.5], [0.8, 0.5]]); y = np.array([0.0, 1.0])
    >>> tree_shares(DecisionTreeRegressor().fit(x, y).tree_, 2).tolist()
    [1.0, 0.0]
    """
    leaves: list[tuple[np.ndarray, np.ndarray, float]] = []
    stack = [(0, np.zeros(dims), np.ones(dims))]
    while stack:
        node, lo, hi = stack.pop()
        left, right = tree.children_left[node], tree.children_right[node]
        if left == -1:
            leaves.append((lo, hi, float(tree.value[node].ravel()[0])))
            continue
        f, cut = tree.feature[node], min(max(tree.threshold[node], 0.0), 1.0)
        hi_left, lo_right = hi.copy(), lo.copy()
        hi_left[f], lo_right[f] = min(hi[f], cut), max(lo[f], cut)
        stack += [(left, lo, hi_left), (right, lo_right, hi)]
    lo = np.array([leaf[0] for leaf in leaves])
    hi = np.array([leaf[1] for leaf in leaves])
    v = np.array([leaf[2] for leaf in leaves])
    width = hi - lo
    vol = width.prod(axis=1)
    mean = float(vol @ v)
    total = float(vol @ (v - mean) ** 2)
    if total <= 1e-12 * max(1.0, mean * mean):
        return None
    shares = np.zeros(dims)
    for i in range(dims):
        cuts = np.unique(np.concatenate([lo[:, i], hi[:, i]]))
        rest = np.divide(vol, width[:, i], out=np.zeros_like(vol), where=width[:, i] > 0)
        for a, b in zip(cuts[:-1], cuts[1:]):
            inside = (lo[:, i] <= a) & (hi[:, i] >= b)
            marginal = float(rest[inside] @ v[inside])
            shares[i] += (b - a) * (marginal - mean) ** 2
    return shares / total
