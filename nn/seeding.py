"""One global seed for a whole script: `nn.set_seed(s)`, Keras' `set_random_seed`.

After `set_seed(s)`, everything random that was not given its own seed draws from streams
spawned from `s` in the order it asks (`np.random.SeedSequence(s, spawn_key=(i,))` for the
i-th request): the initial weights of layers created without `seed`/`rng`, and the data order
of `nn.fit(..., seed=None)` and `nn.MiniBatches(..., seed=None)`. Running the same script
twice therefore gives the same numbers. It also seeds NumPy's legacy global generator
(`np.random.seed`) and Python's `random`, as Keras does, so data made with `np.random.rand`
after it is reproducible too.

An explicit seed always wins, and so does `nn.seeded(k)`: inside that block layers draw from
`k` (it is scoped, per thread, and is how `nn.Population` seeds its members), outside it the
global seed applies. `set_seed(None)` switches the global seed off again (fresh OS entropy).

Example:
    >>> import nn
    >>> nn.set_seed(3); a = nn.Dense(2, input_dim=4).kernel.numpy()
    >>> nn.set_seed(3); b = nn.Dense(2, input_dim=4).kernel.numpy()
    >>> bool((a == b).all())
    True
    >>> nn.set_seed(None)
"""

from __future__ import annotations

import random
import threading

import numpy as np

from tape.utils import checks

_LOCK = threading.Lock()
_STATE: dict[str, int | None] = {"seed": None, "drawn": 0}


def set_seed(seed: int | None) -> None:
    """Seed every unseeded random choice that follows (see the module docstring); None
    switches the global seed off.

    Example:
        >>> set_seed(0); global_seed()
        0
        >>> set_seed(None); global_seed() is None
        True
    """
    if seed is not None and not (checks.is_integer(seed) and seed >= 0):
        raise ValueError(f"set_seed takes a non-negative integer or None, got {seed!r}")
    with _LOCK:
        _STATE["seed"] = None if seed is None else int(seed)
        _STATE["drawn"] = 0
    if seed is not None:
        np.random.seed(int(seed) % 2**32)
        random.seed(int(seed))


def global_seed() -> int | None:
    """The seed `set_seed` set, or None.

    Example:
        >>> set_seed(4); global_seed(); set_seed(None)
        4
    """
    return _STATE["seed"]


def next_seed_sequence() -> np.random.SeedSequence | None:
    """The next stream of the global seed (None when no global seed is set).

    Example:
        >>> set_seed(5); a = next_seed_sequence().generate_state(1)
        >>> set_seed(5); bool((a == next_seed_sequence().generate_state(1)).all())
        True
        >>> set_seed(None); next_seed_sequence() is None
        True
    """
    with _LOCK:
        seed, drawn = _STATE["seed"], _STATE["drawn"]
        if seed is None:
            return None
        _STATE["drawn"] = (drawn or 0) + 1
    return np.random.SeedSequence(seed, spawn_key=(drawn or 0,))


def next_seed() -> int | None:
    """An integer seed from the next stream of the global seed (None without one).

    Example:
        >>> set_seed(1); s = next_seed(); set_seed(1); s == next_seed()
        True
        >>> set_seed(None)
    """
    ss = next_seed_sequence()
    return None if ss is None else int(ss.generate_state(1)[0])
