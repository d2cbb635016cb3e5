"""Plots of a study (matplotlib, extra ``plot``): hyperparameter pairs and learning curves.

Figures are drawn with matplotlib's object API (``matplotlib.figure.Figure``) and rendered by
its Agg canvas, so no display and no pyplot state are involved, and written atomically.

>>> plot_pairs(study, "pairs.png")  # doctest: +SKIP
'pairs.png'
"""

from __future__ import annotations

import math
import os
from itertools import combinations
from typing import Any

from tape.utils.files import atomic_write

from .spaces import Distribution, Fixed, IntUniform
from .study import Study

__all__ = ["plot_pairs", "plot_learning_curves", "plot_importance"]


def _figure(n_axes: int) -> tuple[Any, list[Any]]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'tape-autodiff[plot]'") from None
    cols = math.ceil(math.sqrt(n_axes))
    rows = math.ceil(n_axes / cols)
    fig = Figure(figsize=(4.5 * cols, 3.8 * rows), layout="constrained")
    return fig, [fig.add_subplot(rows, cols, k + 1) for k in range(n_axes)]


def _save(fig: Any, path: str | os.PathLike) -> str:
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


def _cmap(study: Study) -> str:
    return "viridis_r" if study.direction == "minimize" else "viridis"  # best is yellow


# ---------------------------------------------------------------- pairs

def _coord(d: Distribution, value: Any) -> float:
    """Where ``value`` goes on the axis of ``d``."""
    if d.scale == "categorical":
        return d.options.index(value)  # type: ignore[attr-defined]
    return 1.0 - value if d.scale == "one_minus_log" else value


def _extent(d: Distribution, side: Any) -> tuple[float, float]:
    """Axis extent of one dimension of a coarse-to-fine box (an integer owns ``k ± 0.5``)."""
    if d.scale == "categorical":
        idx = [_coord(d, o) for o in side]
        return min(idx) - 0.4, max(idx) + 0.4
    sub = d.restrict(*side)
    half = 0.5 if isinstance(d, IntUniform) else 0.0
    a, b = _coord(d, sub.low - half), _coord(d, sub.high + half)  # type: ignore[attr-defined]
    return min(a, b), max(a, b)


def _setup_axis(ax: Any, which: str, name: str, d: Distribution) -> None:
    set_scale, set_label = getattr(ax, f"set_{which}scale"), getattr(ax, f"set_{which}label")
    if d.scale == "categorical":
        options = d.options  # type: ignore[attr-defined]
        getattr(ax, f"set_{which}ticks")(range(len(options)), [str(o) for o in options])
        getattr(ax, f"set_{which}lim")(-0.5, len(options) - 0.5)
        set_label(name)
    elif d.scale == "one_minus_log":
        set_scale("log")
        set_label(f"1 - {name} (log scale)")
        getattr(ax, f"invert_{which}axis")()  # larger beta to the right / top
    else:
        set_scale("log" if d.scale == "log" else "linear")
        set_label(name + (" (log scale)" if d.scale == "log" else ""))


def _points(study: Study, trials: list[Any], xn: str, yn: str | None) -> tuple[list, list]:
    """Axis coordinates of ``trials`` for the pair ``(xn, yn)``; ``yn=None`` plots the value."""
    xs = [_coord(study.space[xn], t.params[xn]) for t in trials]
    if yn is None:
        return xs, [t.value for t in trials]
    return xs, [_coord(study.space[yn], t.params[yn]) for t in trials]


def plot_pairs(study: Study, path: str | os.PathLike) -> str:
    """Scatter every pair of hyperparameters on their own scales, colored by objective value
    (failed trials as grey crosses), with coarse-to-fine boxes as rectangles. Log dimensions
    get log axes; a ``OneMinusLogUniform`` dimension is drawn as ``1 - value`` on a log axis.
    With a single searched hyperparameter it plots the value against it.

    >>> plot_pairs(study, "pairs.png")  # doctest: +SKIP
    'pairs.png'
    """
    dims = [n for n, d in study.space.items() if not isinstance(d, Fixed)]
    if not dims or not study.trials:
        raise ValueError("plot_pairs needs a study with trials and at least one searched "
                         "(non-Fixed) hyperparameter")
    pairs: list[tuple[str, str | None]] = list(combinations(dims, 2)) or [(dims[0], None)]
    fig, axes = _figure(len(pairs))
    from matplotlib.patches import Rectangle

    ok = [t for t in study.trials if t.status == "ok"]
    bad = [t for t in study.trials if t.status != "ok"]
    boxes = {repr(t.box): t.box for t in study.trials if t.box and t.round > 0}.values()
    for ax, (xn, yn) in zip(axes, pairs, strict=True):
        sc = ax.scatter(*_points(study, ok, xn, yn), c=[t.value for t in ok],
                        cmap=_cmap(study), s=22, edgecolors="none")
        if yn is None:
            ax.set_ylabel("value")
        else:
            ax.scatter(*_points(study, bad, xn, yn), marker="x", c="0.6", s=18)
            for box in boxes:
                (x0, x1) = _extent(study.space[xn], box[xn])
                (y0, y1) = _extent(study.space[yn], box[yn])
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1,
                                       ec="tab:red", alpha=0.7))
            _setup_axis(ax, "y", yn, study.space[yn])
        _setup_axis(ax, "x", xn, study.space[xn])
    if ok:
        fig.colorbar(sc, ax=axes, label="objective value")
    return _save(fig, path)


# ---------------------------------------------------------------- learning curves

def plot_learning_curves(study: Study, path: str | os.PathLike) -> str:
    """All trials' reported intermediate values on one axis (the course's "caviar" picture),
    colored by each trial's final value; failed and pruned trials dashed.

    >>> plot_learning_curves(study, "curves.png")  # doctest: +SKIP
    'curves.png'
    """
    curves = [t for t in study.trials if t.intermediate]
    if not curves:
        raise ValueError("no trial reported intermediate values; let the objective take "
                         "(params, report) and call report(step, value)")
    fig, (ax,) = _figure(1)
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    finals = [t.intermediate[-1][1] for t in curves]
    norm = Normalize(min(finals), max(finals))
    cmap = colormaps[_cmap(study)]
    for t, final in zip(curves, finals, strict=True):
        steps, values = zip(*t.intermediate, strict=True)
        ax.plot(steps, values, color=cmap(norm(final)), lw=1, alpha=0.8,
                ls="-" if t.status == "ok" else "--")
    ax.set_xlabel("step")
    ax.set_ylabel("reported value")
    ax.set_title(f"{len(curves)} trials")
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label="last reported value")
    return _save(fig, path)


# ---------------------------------------------------------------- importance

def plot_importance(study: Study, path: str | os.PathLike) -> str:
    """A horizontal bar per searched hyperparameter: its share of the objective's variance
    (``study.importance()``), most important on top.

    >>> plot_importance(study, "importance.png")  # doctest: +SKIP
    'importance.png'
    """
    shares = study.importance()
    fig, (ax,) = _figure(1)
    names = list(shares)[::-1]
    ax.barh(names, [shares[n] for n in names], color="tab:blue")
    ax.set_xlabel("share of the objective's variance (functional ANOVA)")
    ax.set_xlim(0, 1)
    return _save(fig, path)
