import math

import numpy as np
import pytest

from optim.search import (
    Choice,
    Fixed,
    IntUniform,
    LogIntUniform,
    LogUniform,
    OneMinusLogUniform,
    Uniform,
)
from optim.search.spaces import as_space, space_from_dict, space_to_dict

N = 20_000
TOL = 0.02  # about 6 standard deviations of a share near 0.25 with N samples


def samples(dist, n=N, seed=0):
    rng = np.random.default_rng(seed)
    return np.array([dist.sample(rng) for _ in range(n)])


def test_log_uniform_puts_equal_shares_in_each_decade():
    x = samples(LogUniform(1e-4, 1))
    shares = np.histogram(np.log10(x), bins=[-4, -3, -2, -1, 0])[0] / N
    assert np.all(np.abs(shares - 0.25) < TOL), shares


def test_uniform_puts_90_percent_in_the_top_decade():
    x = samples(Uniform(1e-4, 1))
    assert abs(np.mean(x >= 0.1) - 0.9) < TOL


def test_one_minus_log_uniform_is_balanced_across_decades_of_one_minus_beta():
    beta = samples(OneMinusLogUniform(0.9, 0.999))
    assert beta.min() >= 0.9 and beta.max() <= 0.999
    assert abs(np.mean(beta < 0.99) - 0.5) < TOL


def test_int_uniform_is_inclusive_and_even():
    x = samples(IntUniform(1, 3), n=3000)
    assert set(x.tolist()) == {1, 2, 3}
    assert np.all(np.abs(np.bincount(x)[1:] / 3000 - 1 / 3) < 0.04)


def test_log_int_uniform_covers_its_bounds_on_a_log_scale():
    d = LogIntUniform(1, 1000)
    assert (d.from_unit(0.0), d.from_unit(1.0)) == (1, 1000)
    x = samples(d, n=4000)
    assert abs(np.mean(x < 10) - 1 / 3) < 0.04


@pytest.mark.parametrize("dist, values", [
    (Uniform(-2, 3), [-2.0, 0.5, 3.0]),
    (LogUniform(1e-4, 1), [1e-4, 3e-3, 1.0]),
    (OneMinusLogUniform(0.9, 0.999), [0.9, 0.95, 0.999]),
    (IntUniform(0, 9), [0, 4, 9]),
    (LogIntUniform(1, 512), [1, 7, 512]),
    (Choice(["a", 2, None]), ["a", 2, None]),
])
def test_unit_round_trip(dist, values):
    for v in values:
        u = dist.to_unit(v)
        assert 0 <= u <= 1
        back = dist.from_unit(u)
        if isinstance(v, (int, float)):
            assert back == pytest.approx(v, rel=1e-9)
        else:
            assert back == v


def test_warped_coordinates_are_on_the_right_scale():
    assert LogUniform(1e-4, 1).to_unit(1e-2) == pytest.approx(0.5)
    assert OneMinusLogUniform(0.9, 0.999).to_unit(0.99) == pytest.approx(0.5)
    assert Uniform(0, 10).to_unit(2.5) == 0.25


def test_restrict_returns_same_kind_on_the_sub_box():
    d = LogUniform(1e-4, 1).restrict(0.25, 0.5)
    assert type(d) is LogUniform
    assert (d.low, d.high) == (pytest.approx(1e-3), pytest.approx(1e-2))
    b = OneMinusLogUniform(0.9, 0.999).restrict(0.5, 1.0)
    assert type(b) is OneMinusLogUniform and b.low == pytest.approx(0.99)
    assert IntUniform(0, 9).restrict(0.2, 0.5) == IntUniform(2, 5)
    assert Choice(["a", "b", "c", "d"]).restrict(0.3, 0.7) == Choice(["b", "c"])
    assert Choice(["a", "b", "c"]).subset(["c", "a", "z"]) == Choice(["a", "c"])
    assert Fixed(3).restrict(0.1, 0.2) == Fixed(3)


def test_plain_values_are_fixed_and_spaces_serialize():
    space = as_space({"lr": LogUniform(1e-3, 1), "act": Choice(["relu", "tanh"]), "epochs": 5,
                      "beta": OneMinusLogUniform(0.9, 0.999), "units": LogIntUniform(8, 256)})
    assert space["epochs"] == Fixed(5)
    assert space_from_dict(space_to_dict(space)) == space


@pytest.mark.parametrize("make, words", [
    (lambda: LogUniform(0, 1), ["LogUniform", "low=0", "> 0"]),
    (lambda: LogUniform(-1, 1), ["LogUniform", "low=-1"]),
    (lambda: LogUniform(1, 1), ["LogUniform", "low < high"]),
    (lambda: LogUniform(2, 1), ["LogUniform", "high=1"]),
    (lambda: Uniform(float("nan"), 1), ["Uniform", "finite"]),
    (lambda: OneMinusLogUniform(0, 0.9), ["OneMinusLogUniform", "0 < low < high < 1"]),
    (lambda: OneMinusLogUniform(0.9, 1), ["OneMinusLogUniform", "high=1"]),
    (lambda: OneMinusLogUniform(0.99, 0.9), ["OneMinusLogUniform", "low=0.99"]),
    (lambda: Choice([]), ["Choice", "non-empty"]),
    (lambda: Choice("abc"), ["Choice", "list"]),
    (lambda: IntUniform(1.5, 3), ["IntUniform", "integers", "low=1.5"]),
    (lambda: IntUniform(1, 2.0), ["IntUniform", "high=2.0"]),
    (lambda: IntUniform(3, 1), ["IntUniform", "low <= high"]),
    (lambda: LogIntUniform(0, 10), ["LogIntUniform", ">= 1", "low=0"]),
    (lambda: as_space({}), ["space", "non-empty"]),
])
def test_bad_distributions_raise_value_error_naming_the_problem(make, words):
    with pytest.raises(ValueError) as e:
        make()
    for w in words:
        assert w in str(e.value)


def test_samples_are_plain_python_numbers():
    rng = np.random.default_rng(0)
    assert type(LogUniform(1e-3, 1).sample(rng)) is float
    assert type(IntUniform(np.int64(1), 5).sample(rng)) is int
    assert math.isfinite(OneMinusLogUniform(0.9, 0.9999).sample(rng))
