"""What fit prints (verbose 0, 1 and 2, on a terminal or not, tqdm or not) and print(history)."""

import io
import sys

import numpy as np
import pytest

import nn
import optim

RNG = np.random.default_rng(0)
X = RNG.standard_normal((256, 4))
Y = (X[:, 0] - X[:, 1] > 0).astype(int)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(epochs=2, **options):
    model = nn.Sequential([nn.Dense(8, seed=0), nn.ReLU(), nn.Dense(2, seed=1)])
    return nn.fit(model, X, Y, loss=nn.softmax_cross_entropy, optimizer=optim.Adam(0.01),
                  epochs=epochs, batch_size=16, seed=0, **options)


def test_by_default_fit_prints_one_line_per_epoch_off_a_terminal(capsys):
    h = run(validation_data=(X[:64], Y[:64]))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2 - 16 steps - ")
    assert f"loss {h.loss[0]:.4g} - accuracy {h.accuracy[0]:.4g} - val_loss " in lines[0]


def test_verbose_0_is_silent_and_2_prints_lines_even_on_a_terminal(capsys, monkeypatch):
    run(verbose=0)
    assert capsys.readouterr() == ("", "")
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    run(verbose=2)
    assert "\r" not in out.getvalue() and len(out.getvalue().splitlines()) == 2


def test_a_terminal_gets_a_tqdm_bar_with_running_values(monkeypatch):
    pytest.importorskip("tqdm")
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    run(epochs=1)
    text = out.getvalue()
    assert "epoch 1/1" in text and "16/16" in text and "step" in text
    assert "loss " in text and "accuracy " in text


def test_without_tqdm_a_plain_line_is_rewritten(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    h = run(epochs=2)
    text = out.getvalue()
    assert text.startswith("\repoch 1/2 [=>..................] 1/16 - loss ")
    final = text.split("\n")
    assert len(final) == 3 and final[-1] == ""
    assert final[1].rstrip().endswith(f"loss {h.loss[1]:.4g} - accuracy {h.accuracy[1]:.4g}")


def test_population_lines_show_the_best_member_not_a_range(capsys):
    pop = nn.Population(lambda: nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(2)]), 3, seed=0)
    h = nn.fit(pop, X, Y, loss=nn.softmax_cross_entropy, optimizer=optim.Adam([1e-4, 1e-2, 1e-3]),
               epochs=2, batch_size=32, validation_data=(X[:64], Y[:64]))
    line = capsys.readouterr().out.splitlines()[-1]
    k = int(np.argmin(h.val_loss[-1]))
    assert f"best of 3: #{k} - loss {h.loss[-1][k]:.4g} - " in line
    assert f"val_loss {h.val_loss[-1][k]:.4g}" in line and ".." not in line


def test_bad_verbose():
    with pytest.raises(ValueError, match=r"verbose must be 0 \(silent\), 1 .* got 3"):
        run(verbose=3)


# -- print(history) -----------------------------------------------------------------------------
def test_print_history_is_a_compact_table():
    h = run(epochs=3, verbose=0)
    text = str(h)
    lines = text.splitlines()
    assert lines[0].split() == ["epoch", "loss", "accuracy"]
    assert lines[1].split() == ["1", f"{h.loss[0]:.4g}", f"{h.accuracy[0]:.4g}"]
    assert len(lines) == 4 and "[" not in text
    assert repr(h) == "<History: 3 epochs of loss, accuracy>"


def test_a_long_history_leaves_out_the_middle_epochs():
    h = nn.History()
    for e in range(50):
        h.record({"loss": 1.0 / (e + 1)}, epoch=e)
    lines = str(h).splitlines()
    assert len(lines) == 22 and lines[11].startswith("...")
    assert lines[1].split() == ["1", "1"] and lines[-1].split() == ["50", "0.02"]
    assert len(h.table().splitlines()) == 51


def test_a_population_history_shows_each_epochs_best_member():
    h = nn.History()
    h.record({"loss": np.array([0.5, 0.2, np.nan]), "accuracy": np.array([0.7, 0.6, 0.1])}, 0)
    h.frozen[2] = "training diverged at epoch 1/1, step 3/8: the loss is nan"
    lines = str(h).splitlines()
    assert lines[0].split() == ["epoch", "best", "loss", "accuracy"]
    assert lines[1].split() == ["1", "#1", "0.2", "0.6"]
    assert lines[2].startswith("population of 3: each row is the epoch's best member")
    assert lines[3] == "frozen (diverged): members [2]"


def test_history_attributes():
    h = nn.History()
    h.record({"loss": 0.5, "top3": 0.9}, epoch=4)
    assert h.epoch == [4] and h.top3 == [0.9] and h.val_loss == []
    with pytest.raises(AttributeError, match=r"no 'f1'; it logged \['loss', 'top3'\]"):
        _ = h.f1


def test_a_name_logged_in_some_epochs_only_keeps_the_lists_aligned():
    def late(state):
        if state.epoch >= 1:
            state.logs["late"] = float(state.epoch)

    h = run(epochs=3, verbose=0, callbacks=[late])
    assert h.late == [None, 1.0, 2.0] and len(h.loss) == 3
    rows = [line.split() for line in str(h).splitlines()]
    assert rows[0][-1] == "late" and len(rows[1]) == 3 and rows[2][-1] == "1"
