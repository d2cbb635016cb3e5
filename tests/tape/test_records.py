"""Records, recorders and the all-inputs rule form of primitives; the engine's import layering."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import tape
from tape import Tape, Variable
from tape._observe import Observer, observing
from tape.records import Record, Recorder

# ---- records and recorders ------------------------------------------------------------------


def test_a_record_names_its_fields():
    x, c = Variable([1.0, 2.0]), np.array([3.0, 4.0])
    with Tape(persistent=True) as t:
        y = x * c
    (rec,) = t._records
    assert isinstance(rec, Record)
    assert rec.primitive is tape.multiply and rec.params == {}
    assert rec.inputs[0] is x and rec.inputs[1] is c
    assert rec.values[0] is x._value and rec.values[1] is c
    assert rec.output is y and rec.live == [0]
    assert rec.versions == [(x, 0)] and rec.residuals is None
    assert not hasattr(rec, "__dict__")  # slotted
    assert "multiply" in repr(rec)


def test_records_of_shape_only_rules_keep_no_versions():
    x = Variable([1.0, 2.0])
    with Tape(persistent=True) as t:
        tape.reshape(x, (2, 1))
    assert t._records[0].versions is None


def test_tapes_and_observers_are_recorders():
    assert isinstance(Tape(), Recorder)
    assert isinstance(Observer(), Recorder)


def test_an_observer_sees_records_and_tracks_nothing_new():
    x = Variable(2.0)
    seen = []
    with observing(Observer(tracked={id(x): x}, on_op=seen.append)):
        y = x * 3
        tape.exp(y)  # y is not tracked by the observer: not seen
    assert [r.primitive.name for r in seen] == ["multiply"]
    assert seen[0].output is y and seen[0].live == [0]


# ---- the all-inputs form ----------------------------------------------------------------------


def counting_primitive(calls, residuals=True):
    """x * exp(y), in the all-inputs form; `calls` collects (needed, residuals) per rule call."""

    def forward(x, y):
        e = np.exp(y)
        return (x * e, e) if residuals else x * e

    def rule(needed, g, ans, res, x, y):
        calls.append((list(needed), res))
        e = tape.exp(y) if res is None else res
        return g * e, g * x * e

    return tape.Primitive("counting", forward, residuals=residuals,
                          register=False).defvjp_all(rule)


def test_the_all_inputs_rule_runs_once_for_every_input_with_the_forward_residuals():
    calls = []
    p = counting_primitive(calls)
    x, y = Variable(2.0), Variable(0.5)
    with Tape() as t:
        out = p(x, y)
    gx, gy = t.gradient(out, [x, y])
    assert (float(gx), float(gy)) == (np.exp(0.5), 2.0 * np.exp(0.5))
    assert len(calls) == 1
    needed, residuals = calls[0]
    assert needed == [0, 1] and residuals == np.exp(0.5)


def test_the_all_inputs_rule_is_asked_only_for_live_and_reachable_inputs():
    calls = []
    p = counting_primitive(calls)
    x, y = Variable(2.0), Variable(0.5)
    with Tape(persistent=True) as t:
        out = p(x, 0.5)  # y is a constant here: never live
        out2 = p(x, y)
    t.gradient(out, x)
    t.gradient(out2, y)  # x is watched too, but the gradient is asked for y only
    assert [needed for needed, _ in calls] == [[0], [1]]


def test_the_all_inputs_rule_gets_no_residuals_under_an_outer_tape():
    calls = []
    p = counting_primitive(calls)
    x, y = Variable(2.0), Variable(0.5)
    with Tape() as outer:
        with Tape() as inner:
            out = p(x, y)
        gx = inner.gradient(out, x)
    assert calls[0][1] is None
    assert float(outer.gradient(gx, y)) == pytest.approx(np.exp(0.5))  # d/dy exp(y)


def test_the_all_inputs_rule_without_residuals():
    calls = []
    p = counting_primitive(calls, residuals=False)
    x = Variable(2.0)
    with Tape() as t:
        out = p(x, 0.0)
    assert float(t.gradient(out, x)) == 1.0
    assert calls == [([0], None)]


def test_an_all_inputs_rule_must_return_one_entry_per_input():
    p = tape.Primitive("short_rule", lambda x, y: (x * y, None), residuals=True,
                       register=False).defvjp_all(lambda needed, g, ans, res, x, y: (g * y,))
    x = Variable(2.0)
    with Tape() as t:
        out = p(x, 3.0)
    with pytest.raises(TypeError, match=r"'short_rule' returned 1 gradient\(s\) for 2 input"):
        t.gradient(out, x)


def test_a_primitive_with_residuals_takes_no_per_input_rules():
    p = tape.Primitive("with_residuals", lambda x: (x, None), residuals=True, register=False)
    with pytest.raises(TypeError, match=r"with_residuals.defvjp_all\(rule\) instead of defvjp"):
        p.defvjp(lambda g, ans, x: g)
    with pytest.raises(TypeError, match="instead of defvjp_argnum"):
        p.defvjp_argnum(lambda i, g, ans, *xs: g)


def test_call_with_residuals_returns_what_the_forward_kept():
    p = tape.Primitive("halves", lambda x: (x / 2, {"size": np.size(x)}), residuals=True,
                       register=False)
    y, residuals = p.call_with_residuals(np.ones(3))
    np.testing.assert_array_equal(y.numpy(), np.full(3, 0.5))
    assert residuals == {"size": 3}
    z, none = tape.exp.call_with_residuals(np.zeros(2))
    np.testing.assert_array_equal(z.numpy(), np.ones(2))
    assert none is None


def test_records_keep_the_residuals_and_stats_count_them():
    big = np.ones(1000)
    keep = tape.Primitive("keeps_a_copy", lambda x: (x * 2, big.copy()), residuals=True,
                          register=False).defvjp_all(lambda needed, g, ans, res, x: (2 * g,))
    drop = tape.Primitive("keeps_nothing", lambda x: (x * 2, None), residuals=True,
                          register=False).defvjp_all(lambda needed, g, ans, res, x: (2 * g,))
    x = Variable(np.ones(10))
    sizes = []
    for p in (keep, drop):
        with Tape(persistent=True) as t:
            p(x)
        sizes.append(t.stats().bytes)
        np.testing.assert_array_equal(t._records[0].residuals, None if p is drop else big)
    assert sizes[0] - sizes[1] == big.nbytes


def test_a_failing_forward_with_residuals_names_the_primitive():
    p = tape.Primitive("bad_forward", lambda x: (np.reshape(x, (7,)), None), residuals=True,
                       register=False)
    with pytest.raises(ValueError, match=r"bad_forward: .* \(inputs: \(3,\) float64\)"):
        p(np.ones(3))


# ---- custom_gradient through the all-inputs rule ------------------------------------------------


def test_custom_gradient_runs_grad_fn_once_per_backward_for_all_inputs_and_variables():
    runs = []
    w = Variable(3.0, name="w")

    @tape.custom_gradient
    def f(a, b, c):
        def grad_fn(g, variables):
            runs.append(1)
            return (g * b * c * w, g * a * c * w, g * a * b * w), [g * a * b * c]
        return a * b * c * w, grad_fn

    xs = [Variable(v) for v in (1.0, 2.0, 4.0)]
    with Tape() as t:
        y = f(*xs)
    grads = t.gradient(y, [*xs, w])
    assert [float(g) for g in grads] == [24.0, 12.0, 6.0, 8.0]
    assert runs == [1]


# ---- the engine's modules import one way ---------------------------------------------------------


def tape_imports() -> dict[str, set[str]]:
    """For each module of the tape package, the tape modules it imports (anywhere in it)."""
    root = pathlib.Path(tape.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        edges[name] = {m for m in found if m in modules and m != name}
    return edges


def test_tape_modules_import_each_other_without_cycles():
    edges = tape_imports()
    below: dict[str, set[str]] = {}

    def closure(name, path=()):
        if name in path:
            raise AssertionError(f"import cycle: {' -> '.join((*path, name))}")
        if name not in below:
            below[name] = set().union(*(closure(m, (*path, name)) | {m} for m in edges[name]))
        return below[name]

    for name in edges:
        closure(name)
    assert not below["tape.tensor"] & {"tape.ops", "tape.primitive", "tape.gradient_tape"}
    assert "tape.gradient_tape" not in below["tape.ops"]


def test_a_forward_with_residuals_must_return_a_pair():
    p = tape.Primitive("no_pair", lambda x: x * 2, residuals=True, register=False)
    with pytest.raises(TypeError, match=r"'no_pair' .* must return a tuple \(output, residuals\); "
                                        r"it returned a ndarray"):
        p(np.ones(2))
    with pytest.raises(TypeError, match="'no_pair'"):
        p.call_with_residuals(np.ones(2))
