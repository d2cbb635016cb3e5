"""The study file format: a header line, then one JSON line per finished trial.

Line 1 is the header: ``{"kind": "header", "format": 2, "search": ..., "space": ...,
"seed": ..., "direction": ...}`` plus the arguments that shape the search (coarse-to-fine's
rounds, ...). Every further line is one finished trial with all the fields of ``Trial``:
``{"kind": "trial", "number": 3, "params": {...}, "value": 0.25, "status": "ok", ...}``.
Parameter values, ``Choice`` options, ``Fixed`` values and coarse-to-fine boxes are written in
the typed JSON of ``optim.search.codec``, so tuples and NumPy scalars come back as they went in.

Reading checks every line and names the file and line number of what it refuses:

- a line that is not JSON, a record missing a field or carrying an unknown one, a field of the
  wrong type, parameters that are not the header's, a value that is not a stored value
  (a pickle payload, a name to import): ``ValueError``. Only a truncated last line (no final
  newline: a crash while writing) is left out rather than refused; the writer cuts it off.
- a trial number stored twice: the first record counts, and later ones are ignored with a
  warning. Optuna's journal storage does the same: it replays its log in order and ignores an
  update to a trial that has already finished.

>>> data = (b'{"kind": "header", "format": 2, "search": "demo", "seed": 0, '
...         b'"direction": "minimize", "space": {"x": {"type": "Uniform", "low": 0, "high": 1}}}\\n'
...         b'{"kind": "trial", "number": 0, "params": {"x": 0.5}, "value": 0.25, '
...         b'"status": "ok", "error": null, "duration": 0.0, "intermediate": [], '
...         b'"round": 0, "box": null}\\n')
>>> parse(data, "demo.jsonl").trials
[Trial(number=0, params={'x': 0.5}, value=0.25, status='ok', error=None, duration=0.0, \
intermediate=[], round=0, box=None)]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from .codec import decode_value, encode_value
from .spaces import Distribution, Fixed, space_from_dict
from .trials import Trial

__all__ = ["FORMAT", "Journal", "header_line", "trial_line", "parse"]

FORMAT = 2
_HEADER_START = b'{"kind": "header"'
_HEADER_FIELDS = ("search", "space", "seed", "direction")
_TRIAL_FIELDS = tuple(f.name for f in fields(Trial))
_STATUSES = ("ok", "failed", "pruned")


def header_line(header: dict[str, Any]) -> dict[str, Any]:
    """The header record of a search (its space already in typed JSON, as
    ``space_to_dict`` gives it), normalized through JSON so that it compares equal to the one
    read back from a file.

    >>> header_line({"search": "demo", "seed": 0})
    {'kind': 'header', 'format': 2, 'search': 'demo', 'seed': 0}
    """
    return json.loads(json.dumps({"kind": "header", "format": FORMAT, **header}))


def trial_line(trial: Trial) -> str:
    """One trial as a line of the file (without the newline).

    >>> trial_line(Trial(0, {"shape": (64, 32)}, 0.5, "ok"))  # doctest: +ELLIPSIS
    '{"kind": "trial", "number": 0, "params": {"shape": {"$tuple": [64, 32]}}, "value": 0.5, ...'
    """
    return json.dumps({
        "kind": "trial", "number": trial.number,
        "params": {k: encode_value(v, f"parameter {k!r}") for k, v in trial.params.items()},
        "value": trial.value, "status": trial.status, "error": trial.error,
        "duration": trial.duration, "intermediate": [list(p) for p in trial.intermediate],
        "round": trial.round,
        "box": None if trial.box is None else {k: encode_value(v, f"box of {k!r}")
                                               for k, v in trial.box.items()}})


@dataclass
class Journal:
    """What a study file holds: the raw ``header`` record (``None`` if the file is empty) and
    the ``space`` it describes, the ``trials`` in file order (first record of each number),
    the ``line`` each trial number was read from, ``complete``: the length in bytes of the
    complete lines (shorter than the data when the last line was cut off), and ``notes``:
    warnings for the caller to issue.

    >>> Journal(None, None).trials
    []
    """

    header: dict[str, Any] | None
    space: dict[str, Distribution] | None
    trials: list[Trial] = field(default_factory=list)
    line: dict[int, int] = field(default_factory=dict)
    complete: int = 0
    notes: list[str] = field(default_factory=list)


def parse(data: bytes, path: str) -> Journal:
    """Read a study file's bytes; ``ValueError`` naming ``path`` and the line for anything it
    refuses (see the module doc).

    >>> parse(b"", "empty.jsonl").header is None
    True
    >>> parse(b"\\x80\\x04\\x95...", "evil.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: 'evil.jsonl' is not a study file (it does not start with a header line); ...
    """
    *lines, tail = data.split(b"\n")
    if not (lines or _HEADER_START.startswith(tail[: len(_HEADER_START)])) or (
            lines and not lines[0].startswith(_HEADER_START)):
        raise ValueError(f"{path!r} is not a study file (it does not start with a header "
                         "line); pass a new path or an existing study's .jsonl file")
    if not lines:
        return Journal(None, None)
    header, space = _header(_json(lines[0], path, 1), f"{path!r} line 1")
    journal = Journal(header, space, complete=len(data) - len(tail))
    for k, raw in enumerate(lines[1:], 2):
        trial = _trial(_json(raw, path, k), space, f"{path!r} line {k}")
        if trial.number in journal.line:
            journal.notes.append(
                f"{path!r} line {k} stores trial {trial.number} again (first stored on line "
                f"{journal.line[trial.number]}); the later record is ignored, the first "
                "completion of a trial counts")
            continue
        journal.line[trial.number] = k
        journal.trials.append(trial)
    return journal


# ---------------------------------------------------------------- checking records

def _json(raw: bytes, path: str, k: int) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{path!r} line {k} is corrupt ({e}); only a truncated last line is "
                         "repaired automatically") from None


def _fields(record: Any, kind: str, expected: tuple[str, ...], where: str) -> None:
    if not isinstance(record, dict) or record.get("kind") != kind:
        raise ValueError(f"{where} is not a {kind} record: {record!r:.80}")
    missing = [f for f in expected if f not in record]
    if missing:
        raise ValueError(f"{where}: the {kind} record lacks {', '.join(map(repr, missing))}")
    unknown = [f for f in record if f not in expected and f != "kind"]
    if unknown and kind == "trial":
        raise ValueError(f"{where}: the trial record has unknown fields "
                         f"{', '.join(map(repr, unknown))}")


def _bad(where: str, name: str, expected: str, got: Any) -> ValueError:
    return ValueError(f"{where}: {name} must be {expected}; got {got!r:.80}")


def _is_int(x: Any, minimum: int = 0) -> bool:
    return type(x) is int and x >= minimum


def _is_number(x: Any) -> bool:
    return type(x) in (int, float)


def _header(record: Any, where: str) -> tuple[dict[str, Any], dict[str, Distribution]]:
    if isinstance(record, dict) and record.get("kind") == "header" and \
            record.get("format") != FORMAT:
        raise ValueError(f"{where}: the study file has format {record.get('format')!r}; this "
                         f"version reads format {FORMAT} (typed parameter values). Run the "
                         "search again into a new file")
    _fields(record, "header", ("format", *_HEADER_FIELDS), where)
    if not _is_int(record["seed"]):
        raise _bad(where, "seed", "an integer >= 0", record["seed"])
    if record["direction"] not in ("minimize", "maximize"):
        raise _bad(where, "direction", "'minimize' or 'maximize'", record["direction"])
    try:
        space = space_from_dict(record["space"])
    except ValueError as e:
        raise ValueError(f"{where}: space: {e}") from None
    return record, space


def _decoded(mapping: Any, names: list[str], what: str, where: str) -> dict[str, Any]:
    if not isinstance(mapping, dict) or sorted(mapping) != sorted(names):
        raise _bad(where, what, f"a dict of the space's parameters {sorted(names)}", mapping)
    try:
        return {k: decode_value(mapping[k]) for k in names}
    except ValueError as e:
        raise ValueError(f"{where}: {what}: {e}") from None


def _trial(record: Any, space: dict[str, Distribution], where: str) -> Trial:
    _fields(record, "trial", _TRIAL_FIELDS, where)
    r = record
    if not _is_int(r["number"]):
        raise _bad(where, "number", "an integer >= 0", r["number"])
    if r["status"] not in _STATUSES:
        raise _bad(where, "status", f"one of {_STATUSES}", r["status"])
    value = r["value"]
    if not (_is_number(value) and math.isfinite(value) if r["status"] == "ok" else
            value is None or _is_number(value)):
        raise _bad(where, "value", "a finite number for an 'ok' trial (else a number or null)",
                   value)
    if not (r["error"] is None or isinstance(r["error"], str)):
        raise _bad(where, "error", "a string or null", r["error"])
    if not _is_number(r["duration"]):
        raise _bad(where, "duration", "a number of seconds", r["duration"])
    curve = r["intermediate"]
    if not (isinstance(curve, list) and all(
            isinstance(p, list) and len(p) == 2 and _is_int(p[0], -2**63) and _is_number(p[1])
            for p in curve)):
        raise _bad(where, "intermediate", "a list of [step, value] pairs", curve)
    if not _is_int(r["round"]):
        raise _bad(where, "round", "an integer >= 0", r["round"])
    params = _decoded(r["params"], list(space), "params", where)
    searched = [n for n, d in space.items() if not isinstance(d, Fixed)]  # as boxes hold
    box = None if r["box"] is None else _decoded(r["box"], searched, "box", where)
    return Trial(r["number"], params, r["value"], r["status"], r["error"], r["duration"],
                 [(s, v) for s, v in curve], r["round"], box)
