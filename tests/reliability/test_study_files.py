"""Study files are data: every supported value comes back with its type, and crafted or broken
files are refused (or repaired) with the file name and line number, never running their code."""

from __future__ import annotations

import base64
import enum
import errno
import json
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from optim.search import (
    Choice,
    Fixed,
    IntUniform,
    LogUniform,
    Uniform,
    coarse_to_fine,
    load_study,
    random_search,
)
from optim.search.spaces import as_space

SPACE = {"lr": LogUniform(1e-4, 1), "shape": Choice([(64, 32), (32, 16)]), "epochs": 3}


def objective(p):
    return p["lr"] + p["shape"][0] / 64


def counted(calls, fn=objective):
    def f(p):
        calls.append(p)
        return fn(p)
    return f


def search(path, fn=objective, n=4, **kw):
    return random_search(fn, SPACE, n, seed=0, storage=path, progress=False, **kw)


def lines_of(path):
    return Path(path).read_text().splitlines(keepends=True)


# ---------------------------------------------------------------- typed values

SUPPORTED = {
    "tuples": [(64, 32), (32, 16), (16,)],
    "nested tuples": [((1, 2), (3,)), ((4,), ()), (("a", (None, True)),)],
    "NumPy integers": [np.int64(16), np.int32(32), np.uint8(3), np.int8(-3)],
    "NumPy floats": [np.float64(0.1), np.float32(0.1), np.float16(0.5)],
    "NumPy bools and strings": [np.True_, np.str_("relu")],
    "bools": [True, False],
    "None and strings": [None, "relu", "", "é\n\"q\""],
    "floats": [0.1, 1e-300, -2.5],
    "ints": [0, -7, 2**70],
    "lists": [[1, 2], [], ["a", (1, None)]],
}


class Color(enum.Enum):
    RED = 1


def options_objective(options):
    def f(p):
        return p["x"] + next(k for k, o in enumerate(options) if repr(o) == repr(p["v"]))
    return f


@pytest.mark.parametrize("kind", SUPPORTED)
@pytest.mark.parametrize("how", ["random_search", "coarse_to_fine"])
def test_every_supported_value_type_round_trips_fresh_resumed_and_reloaded(
        tmp_path, records, typed, kind, how):
    options = SUPPORTED[kind]
    space = {"v": Choice(options), "w": Fixed(options[-1]), "x": Uniform(0, 1)}
    path = tmp_path / "s.jsonl"

    def run(fn, **kw):
        if how == "random_search":
            return random_search(fn, space, 8, seed=3, progress=False, **kw)
        return coarse_to_fine(fn, space, rounds=2, trials_per_round=4, seed=3, progress=False,
                              **kw)

    fn = options_objective(options)
    expected = records(run(fn))
    assert records(run(fn, storage=path)) == expected
    assert records(load_study(path)) == expected
    loaded = load_study(path).space
    assert loaded == as_space(space) and typed(loaded["v"].options) == typed(tuple(options))
    assert typed(loaded["w"].value) == typed(options[-1])
    # a run that died after 5 trials (in round 1 for coarse-to-fine) resumes with the same types
    path.write_text("".join(lines_of(path)[:6]))
    calls = []
    resumed = run(counted(calls, fn), storage=path)
    assert len(calls) == 3 and records(resumed) == expected
    assert records(run(counted(calls, fn), storage=path)) == expected and len(calls) == 3
    best = resumed.best_params
    assert type(best["v"]) is type(run(fn).best_params["v"])


def test_coarse_to_fine_over_tuples_resumes_and_keeps_tuples(tmp_path, records):
    space = {"shape": Choice([(64, 32), (32, 16), (16, 8)]), "x": Uniform(0, 1)}

    def fn(p):
        return p["x"] + p["shape"][0]

    kw = dict(rounds=3, trials_per_round=4, seed=0, progress=False)
    path = tmp_path / "c.jsonl"
    full = coarse_to_fine(fn, space, storage=path, **kw)
    path.write_text("".join(lines_of(path)[:7]))  # died in round 1
    resumed = coarse_to_fine(fn, space, storage=path, **kw)
    assert records(resumed) == records(full)
    assert resumed.best_params["shape"] == (16, 8) and type(resumed.best_params["shape"]) is tuple
    assert all(type(o) is tuple for t in resumed.trials for o in t.box["shape"])


@pytest.mark.parametrize("value, type_name", [
    (print, "builtin_function_or_method"),
    ({"units": 64}, "dict"),
    (np.longdouble(1), "longdouble"),
    (np.zeros(2), "ndarray"),
    (int, "type"),
    (Color.RED, "Color"),
    (3 + 4j, "complex"),
])
@pytest.mark.parametrize("where", ["Choice option", "Fixed value"])
def test_values_a_study_file_cannot_keep_are_refused_before_the_first_trial(
        tmp_path, value, type_name, where):
    dist = Choice(["relu", value]) if where == "Choice option" else Fixed(value)
    space = {"x": Uniform(0, 1), "act": dist}
    calls, path = [], tmp_path / "s.jsonl"
    with pytest.raises(TypeError, match=rf"(?s)parameter 'act': {where}: .* of type "
                                        rf"{type_name} cannot be stored in a study file"):
        random_search(counted(calls, lambda p: p["x"]), space, 3, seed=0, storage=path,
                      progress=False)
    assert calls == [] and not path.exists()
    assert len(random_search(lambda p: p["x"], space, 3, seed=0, progress=False)) == 3


# ---------------------------------------------------------------- crafted and broken files

def edit_trial(k, change):
    """Apply ``change`` to the JSON record of line ``k`` (1-based)."""
    def edit(lines):
        record = json.loads(lines[k - 1])
        change(record)
        lines[k - 1] = json.dumps(record) + "\n"
    return edit


def set_field(k, name, value):
    return edit_trial(k, lambda r: r.__setitem__(name, value))


def set_param(k, name, value):
    return edit_trial(k, lambda r: r["params"].__setitem__(name, value))


BROKEN = [
    (lambda ls: ls.__setitem__(2, ls[2][:30] + "\n"), r"line 3 is corrupt"),
    (edit_trial(3, lambda r: r.pop("value")), r"line 3: the trial record lacks 'value'"),
    (edit_trial(3, lambda r: r.pop("params")), r"line 3: the trial record lacks 'params'"),
    (set_field(3, "evil", 1), r"line 3: the trial record has unknown fields 'evil'"),
    (set_field(3, "number", "1"), r"line 3: number must be an integer >= 0; got '1'"),
    (set_field(3, "number", -1), r"line 3: number must be an integer >= 0; got -1"),
    (set_field(3, "number", True), r"line 3: number must be an integer >= 0; got True"),
    (set_field(3, "number", 1.0), r"line 3: number must be an integer >= 0; got 1.0"),
    (set_field(3, "value", "0.5"), r"line 3: value must be a finite number"),
    (set_field(3, "value", None), r"line 3: value must be a finite number for an 'ok' trial"),
    (set_field(3, "status", "done"), r"line 3: status must be one of"),
    (set_field(3, "error", 7), r"line 3: error must be a string or null"),
    (set_field(3, "intermediate", [[0]]), r"line 3: intermediate must be a list of \[step"),
    (set_field(3, "round", "0"), r"line 3: round must be an integer"),
    (set_field(3, "params", [1]), r"line 3: params must be a dict of the space's parameters"),
    (edit_trial(3, lambda r: r["params"].pop("lr")), r"line 3: params must be a dict"),
    (set_param(3, "extra", 1), r"line 3: params must be a dict of the space's parameters"),
    (set_param(3, "shape", {"$numpy": "object", "value": 1}),
     r"line 3: params: not a stored value: \{'\$numpy': 'object'"),
    (set_param(3, "shape", {"$type": "os.system", "args": ["echo"]}),
     r"line 3: params: not a stored value"),
    (set_param(3, "shape", {"$tuple": "64,32"}), r"line 3: params: not a stored value"),
    (set_param(3, "shape", {"$numpy": "int8", "value": 300}),
     r"line 3: params: not a stored value: 300 does not fit NumPy int8"),
    (set_field(3, "box", {"nope": [0, 1]}), r"line 3: box must be a dict"),
    (set_field(3, "kind", "header"), r"line 3 is not a trial record"),
    (lambda ls: ls.__setitem__(2, "[1, 2]\n"), r"line 3 is not a trial record"),
    (set_field(1, "seed", "0"), r"line 1: seed must be an integer >= 0"),
    (set_field(1, "direction", "down"), r"line 1: direction must be 'minimize' or"),
    (set_field(1, "format", 1), r"line 1: the study file has format 1; this version reads "
                                r"format 2"),
    (edit_trial(1, lambda r: r.pop("space")), r"line 1: the header record lacks 'space'"),
    (edit_trial(1, lambda r: r["space"]["lr"].__setitem__("type", "subprocess.Popen")),
     r"line 1: space: parameter 'lr': .* is not a distribution; the known types are"),
    (edit_trial(1, lambda r: r["space"]["lr"].__setitem__("args", "ls")),
     r"line 1: space: parameter 'lr': .*unexpected keyword argument 'args'"),
    (edit_trial(1, lambda r: r["space"]["shape"].__setitem__("options", [{"$pickle": "x"}])),
     r"line 1: space: parameter 'shape': not a stored value"),
]


@pytest.mark.parametrize("edit, words", BROKEN)
def test_broken_study_files_are_refused_naming_file_and_line(tmp_path, edit, words):
    path = tmp_path / "s.jsonl"
    search(path)
    lines = lines_of(path)
    edit(lines)
    path.write_text("".join(lines))
    before = path.read_bytes()
    pattern = rf"'{path}' {words}"
    with pytest.raises(ValueError, match=pattern):
        load_study(path)
    calls = []
    with pytest.raises(ValueError, match=pattern):
        search(path, counted(calls))
    assert calls == [] and path.read_bytes() == before


class _Payload:
    """Unpickling this creates ``marker``: proof that a file's bytes ran as code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_pickle_payloads_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    good = tmp_path / "good.jsonl"
    search(good)
    header, trial = lines_of(good)[:2]
    record = json.loads(trial)
    record["params"]["lr"] = {"$pickle": base64.b64encode(payload).decode()}
    tagged = json.dumps(record) + "\n"
    cases = {"whole file": (payload, r"is not a study file \(it does not start with a header"),
             "a line": (header.encode() + payload + b"\n", r"line 2 is corrupt"),
             "a value": ((header + tagged).encode(), r"line 2: params: not a stored value: "
                                                     r"\{'\$pickle'")}
    for name, (data, words) in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=words):
            load_study(path)
        with pytest.raises(ValueError, match=words):
            search(path)
        assert path.read_bytes() == data, name
    assert not marker.exists()


def test_a_duplicated_trial_line_is_ignored_with_a_warning_naming_it(tmp_path, records):
    path = tmp_path / "s.jsonl"
    expected = records(search(path))
    lines = lines_of(path)
    tampered = json.loads(lines[1])
    tampered["value"] = -1.0
    path.write_text("".join(lines + [lines[2], json.dumps(tampered) + "\n"]))
    calls = []
    for read in (load_study, lambda p: search(p, counted(calls))):
        with pytest.warns(RuntimeWarning) as caught:
            study = read(path)
        messages = [str(w.message) for w in caught]
        assert any(f"'{path}' line 6 stores trial 1 again (first stored on line 3); the later "
                   "record is ignored" in m for m in messages)
        assert any("line 7 stores trial 0 again (first stored on line 2)" in m
                   for m in messages)
        assert records(study) == expected and calls == []


def test_a_trial_beyond_the_search_is_named_and_left_out(tmp_path, records):
    path = tmp_path / "s.jsonl"
    expected = records(search(path))
    lines = lines_of(path)
    stray = json.loads(lines[1])
    stray["number"] = 57
    path.write_text("".join(lines + [json.dumps(stray) + "\n"]))
    calls = []
    with pytest.warns(RuntimeWarning, match=rf"'{path}' holds 1 trial\(s\) numbered beyond this "
                                            r"search's 4 \(trial 57 on line 6\)"):
        assert records(search(path, counted(calls))) == expected
    assert calls == [] and len(load_study(path)) == 5


def test_a_truncated_middle_line_is_refused_but_a_truncated_last_line_repaired(tmp_path,
                                                                                 records):
    path = tmp_path / "s.jsonl"
    expected = records(search(path))
    lines = lines_of(path)
    path.write_text("".join(lines[:2] + [lines[2][:40] + "\n"] + lines[3:]))
    with pytest.raises(ValueError, match=rf"'{path}' line 3 is corrupt"):
        search(path)
    path.write_text("".join(lines[:4]) + lines[4][:40])
    with pytest.warns(RuntimeWarning, match="truncated last line.*3 complete trials"):
        assert records(search(path)) == expected
    assert lines_of(path)[:4] == lines[:4] and records(load_study(path)) == expected


# ---------------------------------------------------------------- links, devices, FIFOs

@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_symlink_to_elsewhere_is_refused_and_nothing_is_written_there(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "study.jsonl"
    search(target)
    before = target.read_bytes()
    link = tmp_path / "study.jsonl"
    link.symlink_to(target)
    words = rf"storage '{link}' is a symbolic link \(to '{target}'\).*pass that file's own path"
    with pytest.raises(ValueError, match=words):
        search(link, n=6)
    with pytest.raises(ValueError, match=words):
        load_study(link)
    assert target.read_bytes() == before
    dangling, new = tmp_path / "new.jsonl", elsewhere / "new.jsonl"
    dangling.symlink_to(new)
    with pytest.raises(ValueError, match="is a symbolic link"):
        search(dangling)
    assert not new.exists()
    device = tmp_path / "zero.jsonl"
    device.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="is a symbolic link"):
        load_study(device)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "study.jsonl"
    os.mkfifo(fifo)
    errors = []

    def attempt():
        for read in (load_study, search):
            try:
                read(fifo)
            except ValueError as e:
                errors.append(str(e))

    worker = threading.Thread(target=attempt, daemon=True)  # a hang must not hang the suite
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "opening a FIFO as a study blocked"
    assert errors == [f"storage '{fifo}' is not a regular file; pass the path of a study file "
                      "(.jsonl) or a new path"] * 2


# ---------------------------------------------------------------- read-only studies

def read_only(directory, monkeypatch, how):
    """Make ``directory`` and its files unwritable: with chmod when permissions apply (not
    root), else by refusing, as a read-only mount would, every open for writing there."""
    if how == "chmod":
        for p in [*directory.iterdir(), directory]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        return
    code = errno.EACCES if how == "EACCES" else errno.EROFS
    real_open = os.open

    def refusing_open(path, flags, *args, **kw):
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        if writing and os.path.abspath(os.fspath(path)).startswith(str(directory)):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", refusing_open)


@pytest.fixture
def restore_permissions(tmp_path):
    yield
    for p in tmp_path.rglob("*"):
        if p.is_dir():
            p.chmod(0o755)


@pytest.mark.filterwarnings("ignore:.*truncated last line")  # asserted once below
@pytest.mark.parametrize("how", [
    pytest.param("chmod", marks=pytest.mark.skipif(
        hasattr(os, "geteuid") and os.geteuid() == 0,
        reason="root ignores permission bits; the 'EACCES' and 'EROFS' cases refuse the writes")),
    "EACCES", "EROFS"])
def test_a_completed_study_in_a_read_only_directory_reopens(tmp_path, monkeypatch, records,
                                                            restore_permissions, how):
    directory = tmp_path / "ro"
    directory.mkdir()
    path = directory / "s.jsonl"
    expected = records(search(path, n=5))
    lines = lines_of(path)
    path.write_text("".join(lines) + lines[-1][:30])  # a crash left half a line as well
    before = path.read_bytes()
    read_only(directory, monkeypatch, how)
    calls = []
    with pytest.warns(RuntimeWarning, match="truncated last line"):
        assert records(search(path, counted(calls), n=5)) == expected
    with pytest.warns(RuntimeWarning, match=r"2 trial\(s\) numbered beyond this search's 3"):
        assert records(search(path, counted(calls), n=3)) == expected[:3]
    assert calls == [] and path.read_bytes() == before
    assert sorted(p.name for p in directory.iterdir()) == ["s.jsonl"]  # no lock file either
    reason = "Permission denied" if how != "EROFS" else "Read-only file system"
    with pytest.raises(PermissionError, match=rf"storage '{path}' cannot be written "
                                              rf"\({reason}\) and this search has 3 of its 8 "
                                              "trials to run; make the file and its directory "
                                              "writable"):
        search(path, counted(calls), n=8)
    with pytest.raises(PermissionError, match=rf"cannot create storage '{directory}/new.jsonl' "
                                              rf"\({reason}\); pass a path in a writable"):
        search(directory / "new.jsonl", counted(calls))
    assert calls == [] and path.read_bytes() == before
    assert not (directory / "new.jsonl").exists()


def test_a_read_only_reopen_still_respects_a_running_search(tmp_path, monkeypatch):
    from optim.search.spaces import space_to_dict
    from optim.search.storage import TrialStore

    path = tmp_path / "s.jsonl"
    search(path)
    header = {"search": "random_search", "space": space_to_dict(as_space(SPACE)), "seed": 0,
              "direction": "minimize"}
    with TrialStore(path, header, n_trials=4):  # a search is running on it
        read_only(tmp_path, monkeypatch, "EACCES")
        with pytest.raises(RuntimeError, match="in use by another running search"):
            search(path)


def test_int_space_values_stay_plain_ints(tmp_path, records):
    space = {"units": IntUniform(8, 64), "act": Choice([np.str_("relu"), "tanh"])}
    path = tmp_path / "s.jsonl"
    study = random_search(lambda p: p["units"], space, 5, seed=0, storage=path, progress=False)
    assert records(load_study(path)) == records(study)
    assert all(type(t.params["units"]) is int for t in load_study(path).trials)
