"""`Tape.explain` names the reason a gradient is None; `Tape.stats` shows what a tape holds."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tape import Tape, Variable


def variables():
    return Variable(3.0, name="w"), Variable(1.5, name="v")


def explain(build, source_name="w"):
    """Run `build(t, w, v) -> target` inside a persistent tape; explain and check None."""
    w, v = variables()
    with Tape(persistent=True) as t:
        target = build(t, w, v)
    source = {"w": w, "v": v}.get(source_name, source_name)
    if isinstance(target, tape.Tensor) and source.dtype.kind == "f":
        assert (t.gradient(target, source) is None) == (build is not connected)
    return t.explain(target, source)


def connected(t, w, v):
    return tape.exp(w * v)


def test_a_connected_gradient_is_reported_fine():
    e = explain(connected)
    assert e.reason == "connected"
    assert "connected" in e and "multiply, exp" in e and "Variable 'w'" in e


def test_source_never_read_inside_the_tape():
    e = explain(lambda t, w, v: v * 2.0)
    assert e.reason == "never_read" and "never read" in e


def test_source_read_before_the_tape_started():
    w, v = variables()
    y0 = w * 2.0
    with Tape() as t:
        y = y0 * v
    e = t.explain(y, w)
    assert e.reason == "read_before_tape" and "before the tape started" in e
    with Tape() as t:
        y = y0 ** 2  # nothing recorded at all: y0 is not tracked
    assert t.explain(y, w).reason == "read_before_tape"


def test_watched_tensor_used_only_through_a_value_computed_earlier():
    x = tape.constant([1.0, 2.0])
    early = x * 2.0
    with Tape() as t:
        t.watch(x)
        y = tape.sum(early * x)
        z = tape.sum(early * 3.0)
    assert t.explain(y, x).reason == "connected"
    e = t.explain(z, x)
    assert e.reason == "read_before_tape" and "is watched" in e


def test_non_trainable_variable_that_was_not_watched():
    w = Variable(2.0, trainable=False, name="frozen")
    with Tape() as t:
        y = w * w
    e = t.explain(y, w)
    assert e.reason == "not_watched" and "non-trainable" in e and "tape.watch" in e
    with Tape() as t:
        t.watch(w)
        y = w * w
    assert t.explain(y, w).reason == "connected"


def test_unwatched_tensor_and_watch_accessed_variables_false():
    x = tape.constant(2.0)
    with Tape() as t:
        y = x * x
    assert t.explain(y, x).reason == "not_watched"
    w = Variable(2.0)
    with Tape(watch_accessed_variables=False) as t:
        y = w * w
    e = t.explain(y, w)
    assert e.reason == "not_watched" and "watch_accessed_variables=False" in e


def test_integer_source():
    i = Variable(3, name="count")
    with Tape() as t:
        y = Variable(1.0) * i
    e = t.explain(y, i)
    assert e.reason == "integer_dtype" and "int64" in e and "floating-point" in e


def test_stop_gradient():
    e = explain(lambda t, w, v: tape.stop_gradient(w * 2.0) * v)
    assert e.reason == "stop_gradient" and "stop_gradient" in e
    e = explain(lambda t, w, v: tape.stop_gradient(w) + v)
    assert e.reason == "stop_gradient"


def test_stop_recording():
    def build(t, w, v):
        with t.stop_recording():
            y = w * 2.0
        return y * v

    e = explain(build)
    assert e.reason == "stop_recording" and "stop_recording()" in e and "multiply" in e

    def read_earlier(t, w, v):
        z = w * v
        with t.stop_recording():
            y = tape.exp(z) + 1.0
        return y * v

    assert explain(read_earlier).reason == "stop_recording"


def test_gradient_inside_stop_recording_of_a_non_persistent_tape():
    w = Variable(2.0)
    with Tape() as t:
        y = w * w
        with t.stop_recording():
            g = t.gradient(y, w)
        z = w * 3.0  # the released tape no longer records (and does not fail)
    assert float(g) == 4.0 and float(z) == 6.0 and t.stats().records == 0


@pytest.mark.parametrize("leave, kind", [
    (lambda y: np.asarray(y), "np.asarray()"),
    (lambda y: y.numpy(), ".numpy()"),
    (lambda y: np.array(y) * 2.0, "np.asarray()"),
])
def test_value_left_the_tape_as_a_numpy_array(leave, kind):
    e = explain(lambda t, w, v: tape.constant(leave(w * v)) * v)
    assert e.reason == "left_tape" and kind in e


def test_variable_numpy_inside_the_tape():
    e = explain(lambda t, w, v: tape.sum(w.numpy() * v))
    assert e.reason == "left_tape" and ".numpy()" in e


def test_the_culprit_is_named_when_several_exits_happened():
    def build(t, w, v):
        np.asarray(w * 3.0)  # left the tape, but unused
        return tape.stop_gradient(w * 2.0) * v

    assert explain(build).reason == "stop_gradient"


def test_exits_that_cannot_reach_the_target_are_not_blamed():
    def build(t, w, v):
        np.asarray(w * 3.0)
        return v * 2.0  # depends only on tracked values: the exit cannot be the cause

    assert explain(build).reason == "unrelated"


def test_target_that_is_not_a_tensor():
    w, _ = variables()
    with Tape() as t:
        y = np.asarray(w * 2.0)
    assert t.explain(y, w).reason == "target_not_tensor"
    with Tape() as t:
        y = tape.cast(w, np.int64)
    assert t.explain(y, w).reason == "integer_target"


def test_unrelated_target():
    e = explain(lambda t, w, v: (w * 2.0, v * 3.0)[1])
    assert e.reason == "unrelated" and "does not depend" in e


def test_explain_needs_the_records():
    w, _ = variables()
    with Tape() as t:
        y = w * 2.0
    t.gradient(y, w)
    with pytest.raises(RuntimeError, match="persistent=True"):
        t.explain(y, w)


def test_explain_inside_the_block_records_nothing():
    w, v = variables()
    with Tape() as t:
        y = w * v
        assert t.explain(y, w).reason == "connected"
        assert t.stats().records == 1
    assert float(t.gradient(y, w)) == 1.5


def test_notes_are_not_kept_without_a_tape():
    w, _ = variables()
    np.asarray(w)
    w.numpy()
    tape.stop_gradient(w)  # nothing to note, and nothing fails


# ---- leak guards -----------------------------------------------------------------------------

def test_stats_count_records_and_the_bytes_they_hold():
    w = Variable(np.ones(1000))
    with Tape(persistent=True) as t:
        y = tape.sum(tape.exp(w) * 2.0)
    stats = t.stats()
    assert stats.records == 3
    # w, exp(w) and exp(w) * 2: three 1000-element float64 buffers, plus the 0-d sum
    assert stats.bytes == 3 * 8000 + 8
    assert stats.tracked == 4
    t.gradient(y, w)
    assert t.stats().records == 3


def test_views_are_counted_once():
    w = Variable(np.ones((100, 10)))
    with Tape(persistent=True) as t:
        y = tape.reshape(w, (1000,))
        z = tape.transpose(w)
    assert t.stats().bytes == 8000 and (y.shape, z.shape) == ((1000,), (10, 100))


def test_recording_in_a_loop_without_releasing_grows_the_stats():
    w = Variable(np.ones(100))
    t = Tape(persistent=True)
    seen = []
    for _ in range(5):
        with t:
            tape.sum(w * w)
        seen.append(t.stats())
    assert [s.records for s in seen] == [2, 4, 6, 8, 10]
    assert all(b.bytes > a.bytes for a, b in zip(seen, seen[1:], strict=False))
    t.reset()
    assert t.stats() == (0, 0, 0)


def test_a_released_tape_holds_nothing():
    w = Variable(np.ones(10))
    with Tape() as t:
        y = tape.sum(w * w)
    assert t.stats().records == 2
    t.gradient(y, w)
    assert t.stats() == (0, 0, 0)
