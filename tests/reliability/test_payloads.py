"""Planted payloads in a run directory: nothing in a file ever runs code, and each gives a clear
message.

- pickled object arrays in `.npz` checkpoints: refused (`allow_pickle=False`), never unpickled;
- schedule names pointing to arbitrary modules, in a checkpoint or in `log.json`: refused by
  the allow-list, nothing imported;
- symbolic links: a checkpoint, `log.json` or `.lock` that is a symbolic link is refused and
  never followed, wherever it points (inside the directory too): the run directory holds its
  own files. The directory itself may be a symbolic link. A FIFO is refused without blocking;
- bit flips in a checkpoint: the resume falls back to the previous checkpoint with a warning
  naming the file, or reads exactly the original state; never a silently different one.
"""

import json
import os
import pickle
import re
import shutil
import signal
import sys
import textwrap
import uuid
import warnings

import numpy as np
import pytest

import nn
import optim
from tape.utils.npz import load_arrays, save_arrays

RNG = np.random.default_rng(1)
X = RNG.standard_normal((96, 3))
Y = (X[:, 0] - X[:, 2] > 0).astype(np.int64)
TRAIN, VAL = (X[:64], Y[:64]), (X[64:], Y[64:])


def model(seed=0):
    return nn.Sequential([nn.Dense(6, use_bias=False, seed=seed), nn.BatchNorm(), nn.ReLU(),
                          nn.Dense(2, seed=seed + 1)])


def new_run(directory, learning_rate=0.01):
    return nn.Babysitter(model(), loss=nn.softmax_cross_entropy,
                         optimizer=optim.Adam(learning_rate), train=TRAIN, validation=VAL,
                         batch_size=16, directory=directory)


def resume(directory, **options):
    return nn.Babysitter.resume(directory, model(seed=7), loss=nn.softmax_cross_entropy,
                                optimizer=optim.Adam(), train=TRAIN, validation=VAL, **options)


def state(run):
    return {**{f"model/{k}": v for k, v in run.model.state_dict().items()},
            **{f"optimizer/{k}": np.asarray(v) for k, v in run.optimizer.state_dict().items()}}


def same_state(a, b):
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def trained(tmp_path):
    """A run directory with checkpoints of epochs 1-3 (closed), and the states after 2 and 3."""
    d = tmp_path / "run"
    with new_run(d) as run:
        run.train(epochs=2)
        after2 = state(run)
        run.train(epochs=1)
        after3 = state(run)
    return d, after2, after3


def rewrite(path, change):
    """Let `change(arrays, meta)` edit a checkpoint's arrays and meta, then write it back."""
    arrays = load_arrays(path)
    meta = json.loads(str(arrays.pop("meta")))
    change(arrays, meta)
    arrays["meta"] = np.asarray(json.dumps(meta))
    save_arrays(path, arrays)


def resumed_from(directory, newest, **options):
    """Resume expecting the newest checkpoint to be skipped; returns the run and the warning."""
    with pytest.warns(RuntimeWarning, match="falling back to the previous checkpoint") as w:
        run = resume(directory, **options)
    (message,) = [str(x.message) for x in w if newest in str(x.message)]
    return run, message


# -- pickles -------------------------------------------------------------------------------------
class Payload:
    """Unpickling this runs `open(marker, "w")`: the file appears if anything unpickles it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("entry", ["model/3/bias", "optimizer/slots/0/m", "meta"])
def test_a_pickled_object_array_in_a_checkpoint_is_refused_never_unpickled(trained, tmp_path,
                                                                           entry):
    d, after2, _ = trained
    marker = tmp_path / "PWNED"
    path = d / "epoch-0003.npz"
    arrays = load_arrays(path)
    arrays[entry] = np.array([Payload(marker)], dtype=object)
    np.savez(path, **arrays)  # np.savez pickles object arrays
    run, message = resumed_from(d, "epoch-0003.npz")
    with run:
        assert f"the entry {entry!r} is a pickled object array; refusing to load it" in message
        assert "allow_pickle=False" in message
        assert run.epoch == 2 and same_state(state(run), after2)
    assert not marker.exists()


def test_a_bare_pickle_named_like_a_checkpoint_is_refused(trained, tmp_path):
    d, after2, _ = trained
    marker = tmp_path / "PWNED"
    (d / "epoch-0003.npz").write_bytes(pickle.dumps({"model/3/bias": Payload(marker)}))
    run, message = resumed_from(d, "epoch-0003.npz")
    with run:
        assert "the file is a pickle, not an .npz archive; refusing to load it" in message
        assert run.epoch == 2 and same_state(state(run), after2)
    assert not marker.exists()


def test_module_load_refuses_pickles_naming_the_file_and_entry(tmp_path):
    marker = tmp_path / "PWNED"
    layer = nn.Dense(2, input_dim=3, seed=0)
    before = layer.state_dict()
    path = tmp_path / "dense.npz"
    np.savez(path, kernel=np.array([Payload(marker)], dtype=object), bias=np.zeros(2))
    with pytest.raises(ValueError, match=r"dense\.npz': the entry 'kernel' is a pickled object "
                                         r"array; refusing to load it .*allow_pickle=False"):
        layer.load(str(path))
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ValueError, match=r"dense\.npz': the file is a pickle, not an \.npz"):
        layer.load(str(path))
    assert not marker.exists()
    assert same_state(layer.state_dict(), before)


# -- schedule names -----------------------------------------------------------------------------
@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A module on sys.path whose import writes a marker file and defines a dataclass schedule
    (which the old import-by-name code accepted); yields (module name, marker)."""
    name = f"planted_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "PWNED"
    code = tmp_path / "code"
    code.mkdir()
    (code / f"{name}.py").write_text(textwrap.dedent(f"""
        import dataclasses
        open({str(marker)!r}, "w").write("planted code ran")

        @dataclasses.dataclass
        class Evil:
            initial_learning_rate: float = 0.01
            def __call__(self, step):
                return self.initial_learning_rate
    """))
    monkeypatch.syspath_prepend(str(code))
    yield name, marker
    sys.modules.pop(name, None)


def _schedule(name, **config):
    return {"__schedule__": name, "config": config}


@pytest.mark.parametrize("make, refused", [
    (lambda p: _schedule(f"{p}:Evil"), "{p}:Evil"),
    (lambda p: _schedule(f"{p}:Evil.__init__"), "{p}:Evil.__init__"),
    (lambda p: _schedule("os:system", command="touch PWNED"), "os:system"),
    (lambda p: _schedule("subprocess:Popen", args=["touch", "PWNED"]), "subprocess:Popen"),
    (lambda p: _schedule("builtins:eval", source="1"), "builtins:eval"),
    (lambda p: _schedule("optim.schedules:_RateDecay", initial_learning_rate=0.1,
                         decay_rate=0.5), "optim.schedules:_RateDecay"),  # real, not allowed
    (lambda p: _schedule("optim.schedules:ExponentialDecay", decay_rate=0.5,
                         initial_learning_rate=_schedule(f"{p}:Evil")), "{p}:Evil"),  # nested
], ids=["planted", "planted-attribute", "os.system", "Popen", "eval", "private-class", "nested"])
def test_a_schedule_name_in_a_checkpoint_is_refused_never_imported(trained, planted, make,
                                                                   refused, monkeypatch):
    d = trained[0]
    name, marker = planted
    monkeypatch.chdir(marker.parent)  # where "touch PWNED" would write the marker

    def plant(arrays, meta):
        meta["hyperparameters"]["learning_rate"] = make(name)
    rewrite(d / "epoch-0003.npz", plant)
    with pytest.raises(ValueError, match=r"epoch-0003\.npz.*" + re.escape(
            repr(refused.format(p=name))) + r" is not an allowed schedule class.*never "
            r"imported.*optim\.schedules\.register\(.*custom_objects="):
        resume(d)
    assert not marker.exists() and name not in sys.modules
    assert (d / "epoch-0003.npz").exists()  # a refusal, not a fallback: nothing is set aside


def test_a_schedule_name_in_log_json_is_refused_never_imported(trained, planted):
    d = trained[0]
    name, marker = planted
    log = json.loads((d / "log.json").read_text())
    log["events"].append({"event": "set", "epoch": 3, "before": {},
                          "changes": {"learning_rate": _schedule(f"{name}:Evil")}})
    (d / "log.json").write_text(json.dumps(log))
    with pytest.raises(ValueError, match=rf"log\.json.*'{name}:Evil' is not an allowed schedule "
                                         r"class.*optim\.schedules\.register\(Evil\)"):
        resume(d)
    assert not marker.exists() and name not in sys.modules


# -- symbolic links and other non-regular files ---------------------------------------------------
def test_a_symlinked_checkpoint_is_refused_wherever_it_points(trained, tmp_path):
    d, after2, _ = trained
    with new_run(tmp_path / "other", learning_rate=0.05) as other:  # the same run settings
        other.train(epochs=3)
    outside = tmp_path / "other" / "epoch-0003.npz"
    original = outside.read_bytes()
    (d / "epoch-0003.npz").unlink()
    os.symlink(outside, d / "epoch-0003.npz")
    run, message = resumed_from(d, "epoch-0003.npz")
    with run:
        assert "is a symbolic link; refusing to follow it" in message
        assert run.epoch == 2 and same_state(state(run), after2)  # its own, not the other's
        assert os.path.islink(d / "epoch-0003.npz.corrupt")  # the link set aside, not its target
        run.train(epochs=1)
    assert outside.read_bytes() == original and not os.path.islink(d / "epoch-0003.npz")


def test_a_symlinked_log_is_refused_and_its_target_never_written(trained, tmp_path):
    d, _, after3 = trained
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"events": []}))
    (d / "log.json").unlink()
    os.symlink(outside, d / "log.json")
    with pytest.warns(RuntimeWarning, match=r"log\.json' is unusable .*symbolic link.*using the "
                                            r"log saved in .*epoch-0003\.npz"):
        run = resume(d)
    with run:
        assert run.epoch == 3 and same_state(state(run), after3) and len(run.history) == 3
        run.train(epochs=1)
    assert json.loads(outside.read_text()) == {"events": []}
    assert not os.path.islink(d / "log.json")  # replaced by the run's own file


def test_a_symlinked_lock_is_refused_and_its_target_never_created(trained, tmp_path):
    d = trained[0]
    target = tmp_path / "created-elsewhere"
    (d / ".lock").unlink()
    os.symlink(target, d / ".lock")
    with pytest.raises(RuntimeError, match=r"lock file .*\.lock.*symbolic link is refused"):
        resume(d)
    assert not target.exists()


def test_a_fifo_named_like_a_checkpoint_is_refused_without_blocking(trained):
    d, after2, _ = trained
    (d / "epoch-0003.npz").unlink()
    os.mkfifo(d / "epoch-0003.npz")

    def hung(*_):
        raise TimeoutError("resume blocked on the FIFO")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        run, message = resumed_from(d, "epoch-0003.npz")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    with run:
        assert "is not a regular file (it is a FIFO, socket or device)" in message
        assert run.epoch == 2 and same_state(state(run), after2)


def test_a_symlinked_run_directory_is_fine(trained, tmp_path):
    d, _, after3 = trained
    os.symlink(d, tmp_path / "link")
    with resume(tmp_path / "link") as run:
        assert run.epoch == 3 and same_state(state(run), after3)


# -- bit flips -----------------------------------------------------------------------------------
def flip_bits(trained, tmp_path, flips, seed):
    """Flip one random bit of the newest checkpoint `flips` times (each time in a fresh copy of
    the run) and resume. Returns the counts of `fell back` (skipped with a warning naming the
    file, state exactly that of epoch 2) and `intact` (read, state exactly that of epoch 3: the
    bit was in zip metadata that does not change the data)."""
    d, after2, after3 = trained
    pristine = (d / "epoch-0003.npz").read_bytes()
    rng = np.random.default_rng(seed)
    counts = {"fell back": 0, "intact": 0}
    for n in range(flips):
        bit = int(rng.integers(len(pristine) * 8))
        copy = tmp_path / f"flip{n}"
        shutil.copytree(d, copy)
        data = bytearray(pristine)
        data[bit // 8] ^= 1 << (bit % 8)
        (copy / "epoch-0003.npz").write_bytes(bytes(data))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = resume(copy)
        with run:
            got = state(run)
            named = [w for w in caught if "epoch-0003.npz" in str(w.message)]
            if run.epoch == 2 and named and same_state(got, after2):
                counts["fell back"] += 1
            elif run.epoch == 3 and not named and same_state(got, after3):
                counts["intact"] += 1
            else:
                pytest.fail(f"bit {bit} (byte {bit // 8}) gave epoch {run.epoch} with warnings "
                            f"{[str(w.message) for w in caught]} and a different state")
        shutil.rmtree(copy)
    return counts


def test_bit_flips_in_a_checkpoint_fall_back_or_change_nothing(trained, tmp_path):
    counts = flip_bits(trained, tmp_path, flips=48, seed=0)
    assert sum(counts.values()) == 48 and counts["fell back"] > 24, counts


def test_a_flip_that_renames_an_entry_to_another_entry_s_name_is_caught(trained):
    d, after2, _ = trained
    data = bytearray((d / "epoch-0003.npz").read_bytes())
    at = data.rindex(b"optimizer/slots/0/v.npy") + len("optimizer/slots/")  # zip directory
    data[at] ^= 1  # '0' -> '1': two entries named slots/1/v, and no slots/0/v
    (d / "epoch-0003.npz").write_bytes(bytes(data))
    run, message = resumed_from(d, "epoch-0003.npz")
    with run:
        assert "lists the entries ['optimizer/slots/1/v'] more than once" in message
        assert run.epoch == 2 and same_state(state(run), after2)


def test_an_entry_missing_from_the_archive_is_corruption(trained):
    d, after2, _ = trained
    arrays = load_arrays(d / "epoch-0003.npz")
    del arrays["model/3/kernel"]  # as a flip in the zip directory can hide an entry
    save_arrays(d / "epoch-0003.npz", arrays)
    run, message = resumed_from(d, "epoch-0003.npz")
    with run:
        assert "corrupt" in message and "lacks the entries ['model/3/kernel']" in message
        assert run.epoch == 2 and same_state(state(run), after2)


@pytest.mark.slow
def test_many_bit_flips_in_a_checkpoint_fall_back_or_change_nothing(trained, tmp_path):
    counts = flip_bits(trained, tmp_path, flips=2000, seed=1)
    print("bit flips:", counts)
    assert sum(counts.values()) == 2000, counts
