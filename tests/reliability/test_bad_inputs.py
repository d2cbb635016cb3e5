"""Bad inputs to the engine and the losses: each is refused with an error that says what was
wrong and what to do instead. One row per bad input: `(id, call, exception type, regex)`, the
regex searched in the message. Adding a case is one line."""

from __future__ import annotations

import numpy as np
import pytest

import nn
import tape
from tape import Tape, Variable

NAN, INF = float("nan"), float("inf")
LOGITS = np.zeros((2, 3))


def recorded(f):
    """A call of `f(a, b, W)` on trainable Variables, inside a recording tape."""
    def call():
        a, b, W = Variable(1.0, name="a"), Variable(2.0, name="b"), Variable(np.ones((2, 1)))
        with Tape():
            return f(a, b, W)
    return call


def gradient_with(output_gradients=None, rule=None, source=(1.0, 1.0, 1.0)):
    """`t.gradient` of a recorded computation, with given output gradients or a custom rule."""
    def call():
        v = Variable(source, name="v")
        prim = tape.Primitive("returns_text", lambda x: x * 1.0, register=False)
        prim.defvjp(rule or (lambda g, ans, x: g))
        with Tape() as t:
            y = prim(v) * 2
        return t.gradient(y, v, output_gradients=output_gradients)
    return call


def custom_gradient_returning(value):
    @tape.custom_gradient
    def f(x):
        return x * 1.0, lambda g: value

    def call():
        v = Variable(np.ones(3), name="v")
        with Tape() as t:
            y = f(v)
        return t.gradient(y, v)
    return call


def xent(labels, logits=LOGITS, **kw):
    return lambda: nn.softmax_cross_entropy(logits, np.asarray(labels), **kw)


def complex_gradient():
    z = Variable(np.array([1 + 2j]), name="z")
    with Tape() as t:
        y = tape.sum(z * z)
    return t.gradient(y, z)


def watch_complex():
    with Tape() as t:
        t.watch(tape.constant(1j))


def float16(value=60000.0):
    return Variable(np.float16(value), name="h")


TEXT = r"is text \('abc', dtype <U3\), not numbers"
NOT_PROBABILITIES = r"softmax_cross_entropy: label rows must be probabilities"
F16 = r"overflows float16 \(largest finite value 65504\.0\) and would give inf"

BAD_INPUTS = [
    # -- softmax cross-entropy labels --------------------------------------------------------
    ("negative probability rows", xent([[1.5, -0.5, 0.0], [0, 1, 0]]), ValueError,
     NOT_PROBABILITIES + r".*1 of 2 rows have negative values, the first is row 0"),
    ("rows not summing to one", xent([[0.5, 0.2, 0.0], [0, 1, 0]]), ValueError,
     NOT_PROBABILITIES + r".*sum other than 1 \(by more than 0\.001\).*row 0.*\(sum 0\.7\)"),
    ("rows just beyond the tolerance", xent([[0.5, 0.5 + 2e-3, 0.0], [0, 1, 0]]), ValueError,
     r"sum other than 1"),
    ("empty batch of ids", xent(np.zeros(0, int), logits=np.zeros((0, 3))), ValueError,
     r"logits of shape \(0, 3\) hold no values \(an empty batch"),
    ("empty batch of rows", xent(np.zeros((0, 3)), logits=np.zeros((0, 3)), reduction="none"),
     ValueError, r"logits of shape \(0, 3\) hold no values"),
    ("+inf in labels", xent([[INF, 0, 0], [0, 1, 0]]), ValueError,
     NOT_PROBABILITIES + r".*non-finite values \(NaN or inf\).*row 0"),
    ("NaN in labels", xent([[0, 1, 0], [NAN, 0, 0]]), ValueError,
     r"non-finite values \(NaN or inf\), the first is row 1"),
    ("NaN in tensor labels", xent(tape.constant([[0, 1, 0], [NAN, 0, 0]])), ValueError,
     r"non-finite values"),
    # -- what a Variable or tensor may hold --------------------------------------------------
    ("Variable(None)", lambda: Variable(None), TypeError,
     r"^Variable: initial_value is None; pass a number or an array of numbers"),
    ("Variable(None, dtype=float)", lambda: Variable(None, dtype=float), TypeError,
     r"initial_value is None"),
    ("Variable('abc')", lambda: Variable("abc"), TypeError, "^Variable: initial_value " + TEXT),
    ("Variable of text, dtype given", lambda: Variable("1.5", dtype=np.float32), TypeError,
     r"is text \('1\.5'"),
    ("named Variable of text", lambda: Variable("abc", name="w"), TypeError,
     "^Variable 'w': initial_value " + TEXT),
    ("Variable of an object array", lambda: Variable(np.array([1.0, 2.0], dtype=object)),
     TypeError, r"has dtype object .*np\.asarray\(values, dtype=float\)"),
    ("Variable of mixed objects", lambda: Variable([1.0, None]), TypeError, r"dtype object"),
    ("Variable of dates", lambda: Variable(np.datetime64("2020-01-01")), TypeError,
     r"dtype datetime64\[D\], which is not numeric"),
    ("Variable with a text dtype", lambda: Variable(1.0, dtype=str), TypeError,
     r"dtype <U0 is not numeric"),
    ("constant(None)", lambda: tape.constant(None), TypeError,
     r"^tape\.constant: value is None"),
    ("constant('abc')", lambda: tape.constant("abc"), TypeError, "^tape.constant: value " + TEXT),
    # -- clip bounds ---------------------------------------------------------------------------
    ("clip(x, 3, 1)", lambda: tape.clip(np.arange(5.0), 3, 1), ValueError,
     r"^clip: a_min \(3\) is greater than a_max \(1\).*pass bounds with a_min <= a_max"),
    ("np.clip(tensor, 3, 1)", lambda: np.clip(tape.constant(np.arange(5.0)), 3, 1), ValueError,
     r"^clip: a_min \(3\) is greater than a_max \(1\)"),
    ("clip with array bounds crossing", lambda: tape.clip(np.ones(3), [0.0, 2.0, 0.0], 1.0),
     ValueError, r"a_min is greater than a_max at index \(1,\) \(2\.0 > 1\.0"),
    # -- complex values are not differentiable -----------------------------------------------
    ("gradient for a complex Variable", complex_gradient, TypeError,
     r"^gradient: Variable 'z' has dtype complex128: tape does not differentiate complex"),
    ("watching a complex tensor", watch_complex, TypeError,
     r"^watch: tensor has dtype complex128: tape does not differentiate complex"),
    # -- float16 overflow -----------------------------------------------------------------------
    ("float16 assign overflow", lambda: float16().assign(1e5), OverflowError,
     r"^Variable 'h'\.assign: writing 100000\.0 " + F16 + r"; the Variable is unchanged"),
    ("float16 assign_add overflow", lambda: float16().assign_add(60000.0), OverflowError,
     r"^Variable 'h'\.assign_add: adding 60000\.0 " + F16),
    ("float16 assign_sub overflow", lambda: float16(-60000.0).assign_sub(np.float16(60000)),
     OverflowError, r"^Variable 'h'\.assign_sub: subtracting np\.float16\(6e\+04\) " + F16),
    ("float16 creation overflow", lambda: Variable(1e5, dtype=np.float16, name="h"),
     OverflowError, r"^Variable 'h': initial_value 100000\.0 " + F16),
    # -- assigning what does not fit ---------------------------------------------------------
    ("assign a list of text", lambda: Variable(np.ones(3), name="v").assign(["a", "b", "c"]),
     TypeError, r"^Variable 'v'\.assign: the value is text \(\['a', 'b', 'c'\], dtype <U1\).*"
                r"writing into the Variable \(dtype float64, shape \(3,\)\)"),
    ("assign text", lambda: Variable(np.ones(3), name="v").assign("abc"), TypeError,
     r"^Variable 'v'\.assign: the value " + TEXT + r".*shape \(3,\)"),
    ("assign_add text", lambda: Variable(np.ones(3), name="v").assign_add("abc"), TypeError,
     r"^Variable 'v'\.assign_add: the value " + TEXT),
    ("assign None", lambda: Variable(1.0, name="v").assign(None), TypeError,
     r"^Variable 'v'\.assign: the value is None"),
    ("assign a ragged list", lambda: Variable(np.ones((2, 2)), name="v").assign([[1, 2], [3]]),
     ValueError, r"^Variable 'v'\.assign: the value is a ragged nested list: item \[0\] has "
                 r"length 2 but item \[1\] has length 1"),
    # -- ragged nested lists ------------------------------------------------------------------
    ("ragged Variable", lambda: Variable([[1, 2], [3]]), ValueError,
     r"^Variable: initial_value is a ragged nested list: item \[0\] has length 2 but item \[1\] "
     r"has length 1\. Every row must have the same length"),
    ("ragged deeper down", lambda: Variable([[1, 2], [3, [4]]]), ValueError,
     r"item \[1\]\[0\] is a scalar but item \[1\]\[1\] has length 1"),
    ("ragged list of arrays", lambda: tape.constant([np.ones(2), np.ones(3)]), ValueError,
     r"item \[0\] has shape \(2,\) but item \[1\] has shape \(3,\)"),
    # -- indices out of range ------------------------------------------------------------------
    ("take out of range", lambda: tape.take(np.arange(3.0), 5), IndexError,
     r"^take: index 5 is out of bounds for axis 0 with size 3, in x\[5\] with x of shape "
     r"\(3,\); along an axis of size n, an index i must satisfy -n <= i < n"),
    ("x[:, 7] out of range", lambda: tape.constant(np.zeros((2, 3)))[:, 7], IndexError,
     r"^getitem: index 7 is out of bounds for axis 1 with size 3, in x\[:, 7\]"),
    ("fancy index out of range", lambda: tape.constant(np.zeros(3))[[0, -4]], IndexError,
     r"index -4 is out of bounds for axis 0 with size 3, in x\[\[0, -4\]\]"),
    ("np.take out of range", lambda: np.take(tape.constant(np.arange(3.0)), 5), IndexError,
     r"^take: index 5 is out of bounds"),
    ("too many indices", lambda: tape.constant(np.zeros((2, 3)))[0, 0, 0], IndexError,
     r"^getitem: too many indices .* in x\[0, 0, 0\] with x of shape \(2, 3\)"),
    # -- gradients that are not numbers ------------------------------------------------------
    ("output_gradients of text", gradient_with(output_gradients="abc"), TypeError,
     r"^output_gradients: 'abc' has dtype <U3, which is not a gradient; pass real numbers of "
     r"the target's shape \(3,\)"),
    ("output_gradients of a text list", gradient_with(output_gradients=["a", "b", "c"]),
     TypeError, r"^output_gradients: \['a', 'b', 'c'\] has dtype <U1"),
    ("a rule returning text", gradient_with(rule=lambda g, ans, x: np.array(["a", "b", "c"])),
     TypeError, r"^gradient: the gradient computed for Variable 'v' \(shape \(3,\), dtype "
                r"float64\) is .* of dtype <U1: a gradient rule returned something other than"),
    ("a rule returning text for a scalar", gradient_with(rule=lambda g, ans, x: "1.5",
                                                         source=1.0),
     TypeError, r"gradient computed for Variable 'v' .* dtype <U3: a gradient rule returned"),
    ("grad_fn returning text", custom_gradient_returning("abc"), TypeError,
     r"^custom_gradient 'f': grad_fn returned 'abc' as gradient 0 .* not real numbers"),
]


@pytest.mark.parametrize("call, error, pattern",
                         [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_refused_with_a_clear_message(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# -- lists of tensors given to ops: packed with tape.stack, as TensorFlow does -------------------
@pytest.mark.parametrize("f, expected", [
    (lambda a, b, W: tape.exp([a, b]), np.exp([1.0, 2.0])),
    (lambda a, b, W: tape.matmul([[a, b]], W), [3.0, 4.0]),
    (lambda a, b, W: np.matmul([[a, b]], W), [3.0, 4.0]),
    (lambda a, b, W: tape.concatenate([[a], [b]]), [1.0, 1.0]),
    (lambda a, b, W: tape.maximum((a, b), 0.0), [1.0, 1.0]),
    (lambda a, b, W: tape.multiply([a, 3.0], [[b], [1.0]]), [3.0, 4.0]),
], ids=["exp of a list", "matmul of nested lists", "np.matmul of nested lists",
        "concatenate of nested lists", "maximum with a tuple", "lists mixing numbers"])
def test_lists_of_tracked_tensors_given_to_ops_pass_the_gradient(f, expected):
    a, b, W = Variable(1.0, name="a"), Variable(2.0, name="b"), Variable([[3.0], [4.0]])
    with Tape() as t:
        y = tape.sum(f(a, b, W))
    np.testing.assert_allclose([float(g) for g in t.gradient(y, [a, b])], expected)
