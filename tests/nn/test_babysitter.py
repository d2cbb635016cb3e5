"""The Babysitter: checkpoints, set, rollback, retention, plots, and exact resume after SIGKILL."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import nn
import optim

RNG = np.random.default_rng(0)
_X = np.concatenate([RNG.normal(-1.5, 1, (48, 2)), RNG.normal(1.5, 1, (48, 2))])
_ORDER = RNG.permutation(96)
X, Y = _X[_ORDER], np.repeat([0, 1], 48)[_ORDER]
TRAIN, VAL = (X[:64], Y[:64]), (X[64:], Y[64:])


def make_model(seed=0):
    return nn.Sequential([nn.Dense(8, use_bias=False, seed=seed), nn.BatchNorm(), nn.ReLU(),
                          nn.Dense(2, seed=seed + 1)])


def new_run(directory, loss=nn.softmax_cross_entropy, **options):
    options = {"batch_size": 16, "metric": "accuracy", **options}
    return nn.Babysitter(make_model(), loss=loss, optimizer=optim.Adam(0.01), train=TRAIN,
                         validation=VAL, directory=directory, **options)


def resume(directory, **options):
    return nn.Babysitter.resume(directory, make_model(seed=42), loss=nn.softmax_cross_entropy,
                                optimizer=optim.Adam(), train=TRAIN, validation=VAL, **options)


def straight(tmp_path, epochs):
    with new_run(tmp_path / "straight") as run:
        run.train(epochs=epochs)
        return run.model.state_dict(), run.optimizer.state_dict(), run.history


def assert_same_state(run, model_state, optimizer_state):
    got = run.model.state_dict()
    assert got.keys() == model_state.keys()
    for k in got:
        np.testing.assert_array_equal(got[k], model_state[k], err_msg=k, strict=True)
    opt = run.optimizer.state_dict()
    assert opt.keys() == optimizer_state.keys()
    for k in opt:
        np.testing.assert_array_equal(opt[k], optimizer_state[k], err_msg=k)


# -- the issue's session ---------------------------------------------------------------------
def test_the_issue_session(tmp_path):
    with new_run(tmp_path / "panda") as run:
        run.train(epochs=2)
        run.set(learning_rate=3e-3)
        run.train(epochs=1)
        run.rollback(epoch=2)
        run.set(learning_rate=1e-3, beta_1=0.95)
        run.train(epochs=3)
        h = run.history
        assert run.epoch == 5 and h.epochs == [1, 2, 3, 4, 5] and len(h) == 5
        assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert run.checkpoints == [1, 2, 3, 4, 5]
        assert run.optimizer.learning_rate == 1e-3 and run.optimizer.beta_1 == 0.95
        kinds = [(ev["event"], ev["epoch"]) for ev in h.events]
        assert kinds == [("epoch", 1), ("epoch", 2), ("set", 2), ("epoch", 3), ("rollback", 2),
                         ("set", 2), ("epoch", 3), ("epoch", 4), ("epoch", 5)]
        assert h.events[2]["changes"] == {"learning_rate": 3e-3}
        assert h.events[2]["before"] == {"learning_rate": 0.01}
        assert h.events[4]["from"] == 3
        table = str(h)
        assert "(abandoned)" in table and "rollback from epoch 3" in table
        assert "set learning_rate=0.001, beta_1=0.95" in table
        log = json.loads((tmp_path / "panda" / "log.json").read_text())
        assert log["events"] == json.loads(json.dumps(h.events))


def test_rollback_restores_model_and_optimizer_and_replays_the_same_epoch(tmp_path):
    with new_run(tmp_path / "r") as run:
        run.train(epochs=2)
        after2 = run.model.state_dict(), run.optimizer.state_dict()
        run.train(epochs=1)
        after3 = run.model.state_dict(), run.optimizer.state_dict()
        run.set(learning_rate=0.5, beta_2=0.9)
        run.train(epochs=1)
        run.rollback(2)
        assert_same_state(run, *after2)
        assert run.optimizer.learning_rate == 0.01 and run.optimizer.beta_2 == 0.999
        assert run.checkpoints == [1, 2] and run.epoch == 2
        run.train(epochs=1)  # same data order, same optimizer state: the same epoch 3
        assert_same_state(run, *after3)


def test_rollback_to_an_unavailable_epoch_lists_the_available_ones(tmp_path):
    with new_run(tmp_path / "r", keep=1) as run:
        run.train(epochs=3)
        available = run.checkpoints
        with pytest.raises(ValueError, match=r"epoch 1 .*available epochs: \[.*3\].*keep=1"):
            run.rollback(1)
        with pytest.raises(ValueError, match="epoch 9"):
            run.rollback(9)
        assert run.checkpoints == available and run.epoch == 3


def test_set_rejects_unknown_or_invalid_values_and_changes_nothing(tmp_path):
    with new_run(tmp_path / "s") as run:
        run.train(epochs=1)
        before, n_events = run.optimizer.hyperparameters, len(run.history.events)
        for bad in ({"learning_rate": 0.1, "momentum": 0.9}, {"learning_rate": 0.1, "beta_1": 1},
                    {"learning_rate": "fast"}, {"learning_rate": lambda step: 0.1},
                    {"epsilon": -1.0}, {}):
            with pytest.raises(ValueError):
                run.set(**bad)
        with pytest.raises(ValueError, match="lambda"):
            run.set(learning_rate=lambda step: 0.1)
        assert run.optimizer.hyperparameters == before
        assert len(run.history.events) == n_events


def test_a_function_learning_rate_is_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="cannot checkpoint the schedule"):
        nn.Babysitter(make_model(), loss=nn.softmax_cross_entropy,
                      optimizer=optim.SGD(lambda step: 0.1), train=TRAIN, directory=tmp_path)
    with new_run(tmp_path / "after") as run:  # and the refused one left no lock behind
        assert run.epoch == 0


def test_a_schedule_is_saved_by_description_and_comes_back_on_resume(tmp_path):
    schedule = optim.schedules.InverseTimeDecay(0.05, decay_rate=0.5, steps_per_epoch=4)
    with new_run(tmp_path / "s") as run:
        run.set(learning_rate=schedule, clipnorm=1.0)
        run.train(epochs=2)
        expected = run.model.state_dict(), run.optimizer.state_dict()
    with resume(tmp_path / "s") as run:
        assert run.optimizer.learning_rate == schedule
        assert run.optimizer.learning_rate is not schedule and run.optimizer.clipnorm == 1.0
        assert_same_state(run, *expected)


# -- retention ---------------------------------------------------------------------------------
def test_keep_k_keeps_the_last_k_and_the_best(tmp_path):
    with new_run(tmp_path / "k", keep=2, metric="auto") as run:
        run.train(epochs=3)
        run.set(learning_rate=10.0)  # much worse from here on
        run.train(epochs=4)
        val = run.history.val_loss
        best = int(np.argmin(val)) + 1
        assert best <= 5, "the scenario should make an early epoch the best"
        assert run.best_epoch == best
        assert run.checkpoints == sorted({6, 7, best})
        run.rollback(best)
        assert run.checkpoints == [best]


def test_keep_all_keeps_every_checkpoint_and_files_are_complete(tmp_path):
    with new_run(tmp_path / "a") as run:
        run.train(epochs=3)
        assert run.checkpoints == [1, 2, 3]
        with np.load(tmp_path / "a" / "epoch-0003.npz", allow_pickle=False) as f:
            names = set(f.files)
        assert {f"model/{k}" for k in run.model.state_dict()} < names
        assert {f"optimizer/{k}" for k in run.optimizer.state_dict()} < names
        assert any(k.endswith("moving_mean") for k in names)  # non-trainable state too
        assert not [n for n in os.listdir(tmp_path / "a") if n.endswith(".tmp")]


def test_bad_arguments(tmp_path):
    for bad in ({"keep": 0}, {"keep": "last"}, {"monitor": "val_auc"}):
        with pytest.raises(ValueError):
            new_run(tmp_path / "bad", **bad)
    with pytest.raises(ValueError, match="needs validation"):
        nn.Babysitter(make_model(), loss=nn.softmax_cross_entropy, optimizer=optim.Adam(),
                      train=TRAIN, directory=tmp_path / "bad", monitor="val_loss")
    with pytest.raises(ValueError, match="examples"):
        nn.Babysitter(make_model(), loss=nn.softmax_cross_entropy, optimizer=optim.Adam(),
                      train=(X, Y[:5]), directory=tmp_path / "bad")
    with new_run(tmp_path / "ok") as run:
        with pytest.raises(ValueError, match="epochs"):
            run.train(epochs=0)
    with pytest.raises(RuntimeError, match="closed"):
        run.train(epochs=1)


# -- crashes, corruption, the lock ------------------------------------------------------------
def test_a_failed_write_leaves_the_previous_checkpoint_and_the_model_on_it(tmp_path, monkeypatch):
    expected = straight(tmp_path, 3)
    with new_run(tmp_path / "w") as run:
        run.train(epochs=2)
        after2 = run.model.state_dict()

        def disk_full(f, **arrays):
            f.write(b"PK\x03\x04 half a zip")
            raise OSError("No space left on device")

        with monkeypatch.context() as m:
            m.setattr(np, "savez", disk_full)
            with pytest.raises(OSError, match="No space"):
                run.train(epochs=1)
        assert run.checkpoints == [1, 2] and run.epoch == 2
        assert not [n for n in os.listdir(tmp_path / "w") if n.endswith(".tmp")]
        for k, v in run.model.state_dict().items():  # back on the last checkpoint
            np.testing.assert_array_equal(v, after2[k])
        run.train(epochs=1)
        assert_same_state(run, *expected[:2])


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    expected = straight(tmp_path, 4)
    d = tmp_path / "c"
    with new_run(d) as run:
        run.train(epochs=4)
    newest = d / "epoch-0004.npz"
    newest.write_bytes(newest.read_bytes()[:300])
    with pytest.warns(RuntimeWarning, match="epoch-0004.npz.*corrupt.*falling back"):
        run = resume(d)
    with run:
        assert run.epoch == 3 and run.checkpoints == [1, 2, 3]
        assert (d / "epoch-0004.npz.corrupt").exists()
        last = run.history.events[-2]
        assert last["event"] == "rollback" and (last["epoch"], last["from"]) == (3, 4)
        assert "(abandoned)" in str(run.history)  # the lost epoch 4 stays in the log
        run.train(epochs=1)
        assert_same_state(run, *expected[:2])
        assert run.history.loss == expected[2].loss


def test_resume_errors_name_the_directory_or_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint .* in .*empty"):
        resume(tmp_path / "empty")
    d = tmp_path / "bad"
    with new_run(d) as run:
        run.train(epochs=2)
    for name in ("epoch-0001.npz", "epoch-0002.npz"):
        (d / name).write_bytes(b"not a zip file")
    with warnings.catch_warnings(), pytest.raises(ValueError,
                                                  match=r"no usable checkpoint.*epoch-0001"):
        warnings.simplefilter("ignore")
        resume(d)


def test_resume_checks_the_model_optimizer_and_data(tmp_path):
    d = tmp_path / "m"
    with new_run(d) as run:
        run.train(epochs=1)
    common = {"loss": nn.softmax_cross_entropy, "train": TRAIN, "validation": VAL}
    with pytest.raises(ValueError, match="epoch-0001.npz.*architecture"):
        nn.Babysitter.resume(d, nn.Sequential([nn.Dense(3), nn.Dense(2)]),
                             optimizer=optim.Adam(), **common)
    with pytest.raises(ValueError, match="optimizer 'Adam'.*'SGD'"):
        nn.Babysitter.resume(d, make_model(), optimizer=optim.SGD(0.1), **common)
    with pytest.raises(ValueError, match="train"):
        nn.Babysitter.resume(d, make_model(), optimizer=optim.Adam(), **{
            **common, "train": (TRAIN[0] + 1, TRAIN[1])})
    with resume(d) as run:  # none of the refusals left the directory locked
        assert run.epoch == 1


def test_a_new_run_refuses_a_directory_holding_one(tmp_path):
    with new_run(tmp_path / "x") as run:
        run.train(epochs=1)
    with pytest.raises(FileExistsError, match="resume"):
        new_run(tmp_path / "x")


def test_the_directory_lock(tmp_path):
    d = tmp_path / "l"
    run = new_run(d)
    run.train(epochs=1)
    with pytest.raises(RuntimeError, match="in use by another Babysitter"):
        resume(d)
    with pytest.raises(RuntimeError, match="in use"):
        new_run(d)
    run.close()
    with resume(d) as again:
        assert again.epoch == 1


def test_changes_and_rollbacks_after_the_last_checkpoint_survive_a_restart(tmp_path):
    d = tmp_path / "p"
    with new_run(d) as run:
        run.train(epochs=3)
        run.rollback(1)
        run.set(learning_rate=0.02)
    with resume(d) as run:
        assert run.epoch == 1 and run.checkpoints == [1]
        assert run.optimizer.learning_rate == 0.02
        assert [ev["event"] for ev in run.history.events][-3:] == ["rollback", "set", "resume"]
        assert len(_replayed_branches(run)) == 1


def _replayed_branches(run):
    from nn.runs.runlog import replay
    return replay(run.history.events).branches


def test_fit_initial_epoch_continues_the_data_order():
    def train(epochs, splits):
        model, opt = make_model(), optim.Adam(0.01)
        for start, stop in splits:
            nn.fit(model, *TRAIN, loss=nn.softmax_cross_entropy, optimizer=opt, epochs=stop,
                   initial_epoch=start, batch_size=16)
        return model.state_dict()

    whole, pieces = train(4, [(0, 4)]), train(4, [(0, 1), (1, 3), (3, 4)])
    for k in whole:
        np.testing.assert_array_equal(whole[k], pieces[k])
    with pytest.raises(ValueError, match="initial_epoch"):
        nn.fit(make_model(), *TRAIN, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.1),
               initial_epoch=-1)
    h = nn.fit(make_model(), *TRAIN, loss=nn.softmax_cross_entropy, optimizer=optim.SGD(0.1),
               epochs=5, initial_epoch=3)
    assert len(h) == 2


# -- exact resume in a new process after SIGKILL ---------------------------------------------
SCRIPT = """
import importlib.util, sys, time
import nn

spec = importlib.util.spec_from_file_location("babysitter_tests", {test_file!r})
tests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tests)

class Pause(nn.Callback):  # a batch hook: the loss's Python runs only when a step is traced
    def on_batch_end(self, state):
        if {mode!r} == "mid-epoch" and state.epoch == 3 and state.step == 1:
            print("in epoch 4", flush=True)  # two steps of epoch 4 applied in memory, none on disk
            time.sleep(120)

run = tests.new_run({directory!r})
for epoch in range(1, 7):
    run.train(epochs=1, callbacks=[Pause()])
    print("epoch", run.epoch, flush=True)
    if {mode!r} == "after" and run.epoch == 3:
        time.sleep(120)
"""


@pytest.mark.parametrize("mode", ["after", "mid-epoch"])
def test_resume_after_sigkill_is_exact(tmp_path, mode):
    d = str(tmp_path / "killed")
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(test_file=__file__, directory=d, mode=mode)))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        trigger = "epoch 3" if mode == "after" else "in epoch 4"
        lines = []
        while trigger not in lines:
            line = proc.stdout.readline()
            assert line, f"the script ended early: {lines} {proc.stderr.read()}"
            lines.append(line.strip())
        with pytest.raises(RuntimeError, match="in use"):  # the live process holds the lock
            resume(d)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    expected = straight(tmp_path, 6)
    with resume(d) as run:  # right after the kill: the OS released the lock
        assert run.epoch == 3 and run.checkpoints == [1, 2, 3]
        run.train(epochs=6 - run.epoch)
        assert_same_state(run, *expected[:2])
        assert run.history.loss == expected[2].loss
        assert run.history.val_loss == expected[2].val_loss
        assert [ev["event"] for ev in run.history.events].count("resume") == 1


# -- the plot ------------------------------------------------------------------------------
def test_plot_renders_curves_with_changes_and_rollbacks(tmp_path):
    pytest.importorskip("matplotlib")
    with new_run(tmp_path / "plot") as run:
        run.train(epochs=2)
        run.set(learning_rate=3e-3)
        run.train(epochs=1)
        run.rollback(epoch=2)
        run.set(learning_rate=optim.schedules.ExponentialDecay(1e-3, 0.9))
        run.train(epochs=2)
        fig = run.figure()
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert texts == ["learning_rate=0.003 (undone)", "rollback from 3",
                         "learning_rate=ExponentialDecay(...)"]
        assert len(fig.axes) == 2  # loss, accuracy
        labels = [line.get_label() for line in fig.axes[0].lines]
        assert {"loss", "val_loss", "abandoned"} <= set(labels)
        assert sum(line.get_linestyle() == "-." for line in fig.axes[0].lines) == 1  # rollback
        path = run.plot()
        assert path == os.path.join(run.directory, "curves.png")
        other = run.plot(tmp_path / "curves.png")
    for p in (path, other):
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# -- checkpoints that parse but do not fit -----------------------------------------------------
def rewrite_checkpoint(path, change):
    """Load a checkpoint's arrays, let `change(arrays, meta)` edit them, write them back as a
    well-formed checkpoint (its list of entries updated)."""
    from tape.utils.npz import load_arrays, save_arrays
    arrays = load_arrays(path)
    meta = json.loads(str(arrays.pop("meta")))
    change(arrays, meta)
    meta["entries"] = sorted(arrays)  # a consistent file that parses
    arrays["meta"] = np.asarray(json.dumps(meta))
    save_arrays(path, arrays)


def _wrong_shape(arrays, meta):
    arrays["model/0/kernel"] = np.zeros((3, 8), np.float32)


def _missing_slot(arrays, meta):
    del arrays["optimizer/slots/2/v"]


def _nan_weight(arrays, meta):
    arrays["model/3/kernel"][1, 0] = np.nan


def _inf_slot(arrays, meta):
    arrays["optimizer/slots/0/m"][0, 0] = np.inf


@pytest.mark.parametrize("change, reason", [
    (_wrong_shape, r"'0/kernel': shape \(3, 8\) in the state, \(2, 8\) in the model"),
    (_missing_slot, r"missing slot 'slots/2/v'"),
    (_nan_weight, r"'model/3/kernel' holds 1 non-finite value"),
    (_inf_slot, r"'optimizer/slots/0/m' holds 1 non-finite value"),
])
def test_a_newest_checkpoint_that_does_not_fit_falls_back_like_a_corrupt_one(tmp_path, change,
                                                                              reason):
    expected = straight(tmp_path, 4)
    d = tmp_path / "f"
    with new_run(d) as run:
        run.train(epochs=3)
    rewrite_checkpoint(d / "epoch-0003.npz", change)
    with pytest.warns(RuntimeWarning, match=r"epoch-0003\.npz.*" + reason
                      + r".*falling back to the previous checkpoint") as caught:
        run = resume(d)
    assert len(caught) == 1
    with run:
        assert run.epoch == 2 and run.checkpoints == [1, 2]
        assert (d / "epoch-0003.npz.corrupt").exists()
        run.train(epochs=2)
        assert_same_state(run, *expected[:2])
        assert run.history.loss == expected[2].loss


def test_when_no_checkpoint_fits_the_error_gives_each_file_and_reason(tmp_path):
    d = tmp_path / "n"
    with new_run(d) as run:
        run.train(epochs=2)
    rewrite_checkpoint(d / "epoch-0001.npz", _nan_weight)
    rewrite_checkpoint(d / "epoch-0002.npz", _missing_slot)
    with pytest.warns(RuntimeWarning, match="epoch-0002"), pytest.raises(
            ValueError, match=r"no usable checkpoint.*epoch-0002\.npz.*missing slot.*"
                              r"epoch-0001\.npz.*non-finite"):
        resume(d)
    assert sorted(os.listdir(d)) == [".lock", "epoch-0001.npz", "epoch-0002.npz", "log.json"]
    with pytest.raises(ValueError, match=r"epoch-0001\.npz.*non-finite"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resume(d)


def test_a_rollback_to_a_checkpoint_that_does_not_fit_changes_nothing(tmp_path):
    d = tmp_path / "r"
    with new_run(d) as run:
        run.train(epochs=3)
        before = run.model.state_dict(), run.optimizer.state_dict()
        rewrite_checkpoint(d / "epoch-0001.npz", _missing_slot)
        with pytest.raises(ValueError, match=r"epoch-0001\.npz.*missing slot"):
            run.rollback(1)
        assert_same_state(run, *before)
        assert run.epoch == 3 and run.checkpoints == [1, 2, 3]


# -- schedule names resolve through an allow-list, never an import -----------------------------
@dataclasses.dataclass
class HalvingSchedule:
    """A user's own schedule (module level, a dataclass): savable once registered."""

    initial_learning_rate: float

    def __call__(self, step):
        return self.initial_learning_rate / 2 ** step


def test_an_unregistered_schedule_is_refused_at_set_with_how_to_register_it(tmp_path):
    with new_run(tmp_path / "u") as run:
        with pytest.raises(ValueError, match=r"HalvingSchedule.*not an allowed schedule.*"
                                             r"optim\.schedules\.register\(HalvingSchedule\)"):
            run.set(learning_rate=HalvingSchedule(0.01))
        assert run.optimizer.learning_rate == 0.01


def test_a_custom_schedule_comes_back_through_custom_objects_or_register(tmp_path, monkeypatch):
    d = tmp_path / "c"
    with new_run(d, custom_objects=[HalvingSchedule]) as run:
        run.set(learning_rate=HalvingSchedule(0.01))
        run.train(epochs=1)
        expected = run.model.state_dict(), run.optimizer.state_dict()
    with pytest.raises(ValueError, match="HalvingSchedule.*not an allowed schedule"):
        resume(d)
    stored = f"{__name__}:HalvingSchedule"
    for allow in ([HalvingSchedule], {stored: HalvingSchedule}):
        with resume(d, custom_objects=allow) as run:
            assert run.optimizer.learning_rate == HalvingSchedule(0.01)
            assert_same_state(run, *expected)
    import tape.registry
    monkeypatch.setattr(tape.registry, "_CLASSES", dict(tape.registry._CLASSES))
    assert optim.schedules.register(HalvingSchedule) is HalvingSchedule
    with resume(d) as run:
        assert run.optimizer.learning_rate == HalvingSchedule(0.01)
    with pytest.raises(TypeError, match="takes a class"):
        optim.schedules.register(lambda step: 0.1)

    @dataclasses.dataclass
    class Local:
        lr: float
    with pytest.raises(ValueError, match="inside a function has no stable name"):
        optim.schedules.register(Local)
    with pytest.raises(TypeError, match="custom_objects must hold classes"):
        resume(d, custom_objects=[HalvingSchedule(0.1)])
