"""Where trials are drawn: the parameters of trial ``i`` of a search, and the boxes (in each
dimension's warped unit coordinates) that coarse-to-fine zooms into.

>>> from optim.search import Uniform
>>> space = {"x": Uniform(0, 10)}
>>> restrict_space(space, {"x": [0.2, 0.5]})
{'x': Uniform(low=2.0, high=5.0)}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .spaces import Choice, Distribution, Fixed, as_space
from .trials import Trial

__all__ = ["Box", "draw", "full_box", "next_box", "restrict_space"]

Box = dict[str, Any]  # name -> [lo_u, hi_u] (numeric) or list of kept options (Choice)


def draw(space: Mapping[str, Any], seed: int, number: int) -> dict[str, Any]:
    """The parameters of trial ``number`` of a search with ``seed`` over ``space``.

    >>> from optim.search import Uniform
    >>> draw({"x": Uniform(0, 1)}, seed=0, number=3) == draw({"x": Uniform(0, 1)}, 0, 3)
    True
    """
    space = as_space(space)
    u = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(number,))).random(len(space))
    order = {name: k for k, name in enumerate(sorted(space))}  # independent of dict order
    return {name: d.from_unit(u[order[name]]) for name, d in space.items()}


def full_box(space: Mapping[str, Distribution]) -> Box:
    """The box of the whole space.

    >>> from optim.search import Choice, Uniform
    >>> full_box({"x": Uniform(0, 5), "act": Choice(["relu", "tanh"]), "epochs": Fixed(3)})
    {'x': [0.0, 1.0], 'act': ['relu', 'tanh']}
    """
    return {name: list(d.options) if isinstance(d, Choice) else [0.0, 1.0]
            for name, d in space.items() if not isinstance(d, Fixed)}


def next_box(ranked: Sequence[Trial], space: Mapping[str, Distribution], box: Box,
             keep: float, padding: float) -> Box:
    """The box around the best ``keep`` fraction of ``ranked`` (``ok`` trials, best first),
    widened on each side by ``padding`` times the width of ``box`` and clipped to the space;
    ``box`` itself when ``ranked`` is empty.

    >>> from optim.search import Trial, Uniform
    >>> best = [Trial(0, {"x": 0.4}, 0.0, "ok"), Trial(1, {"x": 0.6}, 1.0, "ok")]
    >>> next_box(best, {"x": Uniform(0, 1)}, {"x": [0.0, 1.0]}, keep=1.0, padding=0.1)
    {'x': [0.30000000000000004, 0.7]}
    """
    if not ranked:  # nothing to zoom in on: search the same box again
        return box
    best = ranked[: math.ceil(keep * len(ranked))]
    new: Box = {}
    for name, old in box.items():
        d = space[name]
        if isinstance(d, Choice):
            new[name] = list(d.subset([t.params[name] for t in best]).options)
            continue
        u = [d.to_unit(t.params[name]) for t in best]
        pad = padding * (old[1] - old[0])
        new[name] = [max(0.0, min(u) - pad), min(1.0, max(u) + pad)]
    return new


def restrict_space(space: Mapping[str, Distribution], box: Box) -> dict[str, Distribution]:
    """The sub-space of ``space`` inside ``box`` (as recorded on coarse-to-fine trials).

    >>> from optim.search import Uniform
    >>> restrict_space({"x": Uniform(0, 10)}, {"x": [0.2, 0.5]})
    {'x': Uniform(low=2.0, high=5.0)}
    """
    return {name: d if name not in box else d.subset(box[name]) if isinstance(d, Choice)
            else d.restrict(*box[name]) for name, d in space.items()}
