"""The learning curves of a run's event log, drawn with matplotlib's object API (no pyplot
state); matplotlib is imported only here, when a figure is asked for.

Example:
    >>> events = [{"event": "epoch", "epoch": 1, "logs": {"loss": 0.9}},
    ...           {"event": "set", "epoch": 1, "changes": {"learning_rate": 0.1},
    ...            "before": {"learning_rate": 0.01}},
    ...           {"event": "epoch", "epoch": 2, "logs": {"loss": 0.7}}]
    >>> fig = figure(events, "run: epoch 2")
    >>> [ax.get_ylabel() for ax in fig.axes], fig.axes[0].get_title()
    (['loss'], 'run: epoch 2')
"""

from __future__ import annotations

from typing import Any

from nn.runs.runlog import Event, change_summary, replay

__all__ = ["figure"]


def _curve(ax: Any, events: list[Event], key: str, fmt: str, **style: Any) -> None:
    points = [(ev["epoch"], ev["logs"][key]) for ev in events if key in ev["logs"]]
    if points:
        ax.plot(*zip(*points), fmt, **style)


def figure(events: list[Event], title: str) -> Any:
    """The learning curves of `events` as a matplotlib `Figure` titled `title`: loss (and
    accuracy) per epoch, abandoned branches dashed grey, `set` changes as green dotted lines
    labelled with the new values (grey and "undone" once a rollback undid them), rollbacks as
    red dash-dotted lines. Labels at one epoch are stacked in log order. An empty log is a
    `ValueError`; no matplotlib is an `ImportError` naming the extra to install.

    Example:
        >>> figure([], "run")
        Traceback (most recent call last):
        ValueError: nothing to plot yet: train at least one epoch
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'tape-autodiff[plot]'"
                          ) from None
    tl = replay(events)
    if not tl.live and not tl.branches:
        raise ValueError("nothing to plot yet: train at least one epoch")
    dead = {id(ev) for ev in tl.dead_sets}
    marks = []  # (epoch, label, color, line style), in log order
    for ev in events:
        if ev["event"] == "set":
            label = change_summary(ev)
            marks.append((ev["epoch"], label + " (undone)", "0.5", ":") if id(ev) in dead
                         else (ev["epoch"], label, "tab:green", ":"))
        elif ev["event"] == "rollback":
            marks.append((ev["epoch"], f"rollback from {ev['from']}", "tab:red", "-."))
    panels = [p for p in (("loss", "val_loss"), ("accuracy", "val_accuracy"))
              if any(p[0] in ev["logs"] for ev in tl.live + sum(tl.branches, []))]
    fig = Figure(figsize=(7, 3.2 * len(panels) + 0.4), layout="constrained")
    axes = [fig.add_subplot(len(panels), 1, k + 1) for k in range(len(panels))]
    for ax, keys in zip(axes, panels):
        for key, color in zip(keys, ("tab:blue", "tab:orange")):
            for n, branch in enumerate(tl.branches):
                name = "abandoned" if n == 0 and key == keys[0] else None
                _curve(ax, branch, key, "--", color="0.6", marker=".", label=name)
            _curve(ax, tl.live, key, "-o", color=color, markersize=3, label=key)
        for epoch, _, color, style in marks:
            ax.axvline(epoch, color=color, linestyle=style, linewidth=1)
        ax.set_ylabel(keys[0])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    ax0, row = axes[0], dict.fromkeys(m[0] for m in marks)
    for epoch, label, color, _ in marks:
        row[epoch] = k = (row[epoch] or 0) + 1
        ax0.annotate(label, (epoch, 1.0 - 0.07 * k), xycoords=ax0.get_xaxis_transform(),
                     xytext=(3, 0), textcoords="offset points", fontsize=7, color=color,
                     bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 1})
    axes[-1].set_xlabel("epoch")
    ax0.legend(fontsize=8, loc="lower left")
    ax0.set_title(title)
    return fig
