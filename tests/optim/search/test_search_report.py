import csv
import io
import sys

import pytest

from optim.search import (
    Choice,
    IntUniform,
    LogUniform,
    OneMinusLogUniform,
    Uniform,
    coarse_to_fine,
    plot_learning_curves,
    plot_pairs,
    random_search,
)

SPACE = {"lr": LogUniform(1e-4, 1), "beta": OneMinusLogUniform(0.9, 0.999),
         "units": IntUniform(4, 64), "act": Choice(["relu", "tanh"])}


def objective(p, report):
    if p["units"] > 40:
        raise RuntimeError("out of memory")
    for step in range(4):
        report(step, p["lr"] + 1 / (step + 1))
    return p["lr"] + (p["act"] == "relu")


@pytest.fixture(scope="module")
def study():
    return coarse_to_fine(objective, SPACE, rounds=3, trials_per_round=8, seed=0, progress=False)


def test_table_is_sorted_best_first_with_failures_last(study):
    lines = study.table().splitlines()
    assert lines[0].split() == ["trial", "status", "value", "lr", "beta", "units", "act",
                                "duration_s", "round", "error"]
    assert lines[1].split()[0] == str(study.best_trial.number)
    statuses = [line.split()[1] for line in lines[1:]]
    assert statuses == sorted(statuses, key=lambda s: s != "ok") and "failed" in statuses
    assert "RuntimeError: out of memory" in lines[-1]
    assert len(study.table(top=3).splitlines()) == 4
    col = lines[0].index("lr")  # fixed width: every lr starts in the header's column
    assert all(line[col - 1] == " " and line[col] != " " for line in lines[1:])


def test_csv_round_trips_and_is_written_atomically(study, tmp_path):
    path = tmp_path / "study.csv"
    text = study.to_csv(path)
    assert path.read_text() == text and sorted(p.name for p in tmp_path.iterdir()) == ["study.csv"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["trial"]) for r in rows] == list(range(len(study)))
    for r, t in zip(rows, study.trials, strict=True):
        assert r["value"] == ("" if t.value is None else repr(t.value))
        assert float(r["lr"]) == t.params["lr"] and int(r["round"]) == t.round


def run(progress):
    return random_search(lambda p: p["x"], {"x": Uniform(0, 1)}, 3, seed=0, progress=progress)


def test_progress_false_is_silent(capsys):
    run(progress=False)
    assert capsys.readouterr() == ("", "")


def test_progress_line_without_tqdm(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    best = run(progress=True).best_value
    err = capsys.readouterr().err
    assert err.startswith("\rsearch: 1/3 trials") and f"3/3 trials, best {best:.6g}\n" in err


def test_progress_bar_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    run(progress=True)
    assert "3/3" in capsys.readouterr().err


def test_plots_are_written_as_png(study, tmp_path):
    pytest.importorskip("matplotlib")
    for plot, name in [(plot_pairs, "pairs.png"), (plot_learning_curves, "curves.png")]:
        path = tmp_path / name
        assert plot(study, path) == str(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = random_search(lambda p: p["x"] ** 2, {"x": Uniform(-1, 1), "y": 2}, 5, seed=0,
                        progress=False)
    assert plot_pairs(one, tmp_path / "one.png").endswith("one.png")
    with pytest.raises(ValueError, match="report"):
        plot_learning_curves(one, tmp_path / "none.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "one.png", "pairs.png"]
