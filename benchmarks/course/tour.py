"""Run sections of the tour, print each one's claim, measurement and verdict, then a summary."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# importing the section modules registers their sections
from . import (  # noqa: F401
    batchnorm,
    batchnorm_training,
    caviar_panda,
    importance,
    regularization,
    softmax,
    tensorflow_example,
    tuning,
)
from .common import SECTIONS, Config, Outcome, Section

WIDTH = 96


@dataclass
class Result:
    """A section and what it measured, with its running time."""

    section: Section
    outcome: Outcome
    seconds: float


def verdict(held: bool) -> str:
    """How a section's result is announced."""
    return "HELD" if held else "DID NOT HOLD"


def wrap(label: str, text: str) -> str:
    """`text` after `label`, wrapped to the page width under a hanging indent.

    Example:
        >>> print(wrap("claim:", "a b"))
        claim:     a b
    """
    return textwrap.fill(text, WIDTH, initial_indent=f"{label:<11}", subsequent_indent=" " * 11)


def format_result(result: Result) -> str:
    """A section's report: claim, criterion, measured numbers, plots and the verdict."""
    s, o = result.section, result.outcome
    lines = [f"== {s.number}. {s.title} ".ljust(WIDTH, "="), wrap("claim:", s.claim),
             wrap("criterion:", s.criterion)]
    lines += [f"  {line}" for line in o.details]
    lines.append("measured:  " + ", ".join(f"{k} = {v:.4g}" for k, v in o.numbers.items()))
    lines += [f"plot:      {path}" for path in o.plots]
    lines.append(f"result:    {verdict(o.held)}: {o.headline} ({result.seconds:.1f} s)")
    return "\n".join(lines)


def format_summary(results: list[Result]) -> str:
    """One row per section, then how many claims held and the total time."""
    rows = [f"{'#':>2}  {'section':<40} {'verdict':<13} {'s':>5}  measured"]
    rows += [f"{r.section.number:>2}  {r.section.title:<40} {verdict(r.outcome.held):<13} "
             f"{r.seconds:>5.1f}  {r.outcome.headline}" for r in results]
    held = sum(r.outcome.held for r in results)
    total = sum(r.seconds for r in results)
    rows.append(f"{held} of {len(results)} claims held, in {total:.1f} s")
    return "\n".join(rows)


def run(config: Config, only: Iterable[int] | None = None,
        echo: Callable[[str], None] = print) -> list[Result]:
    """Run the sections numbered `only` (all by default) in order, echoing each report and
    then the summary table; returns the results.

    Example:
        >>> [r.outcome.held for r in run(Config(quick=True, out=None), [11], echo=lambda s: None)]
        [True]
    """
    numbers = sorted(SECTIONS) if only is None else sorted(set(only))
    unknown = [n for n in numbers if n not in SECTIONS]
    if unknown:
        raise ValueError(f"no section numbered {unknown}; sections are {sorted(SECTIONS)}")
    results = []
    for n in numbers:
        start = time.perf_counter()
        outcome = SECTIONS[n].measure(config)
        results.append(Result(SECTIONS[n], outcome, time.perf_counter() - start))
        echo(format_result(results[-1]) + "\n")
    echo(format_summary(results))
    return results
