"""The course tour (`python -m benchmarks.course`): the quick tour runs end to end and reports
every section; the command line and the shared helpers behave."""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import math
import pkgutil
import sys

import pytest

pytest.importorskip("sklearn")

import benchmarks.course as course  # noqa: E402
from benchmarks.course import SECTIONS, Config  # noqa: E402
from benchmarks.course.__main__ import main  # noqa: E402
from benchmarks.course.common import plot  # noqa: E402


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
    assert [r.section.number for r in results] == sorted(SECTIONS) == list(range(1, 13))
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


def test_plots_are_written_when_matplotlib_is_installed(quick_tour):
    pytest.importorskip("matplotlib")
    results, _, out = quick_tour
    plots = [p for r in results for p in r.outcome.plots]
    assert len(plots) >= 6
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
