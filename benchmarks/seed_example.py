"""The seed example: minimize `w**2 - 10*w + 25` with a tape, as in the course's TensorFlow notes.

Run with `python -m benchmarks.seed_example`.
"""

from __future__ import annotations

import numpy as np

from tape import Tape, Variable


def main() -> float:
    w = Variable(0.0, name="w")
    x = np.array([1.0, -10.0, 25.0])  # the cost's coefficients, as in the notes
    for step in range(200):
        with Tape() as t:
            cost = x[0] * w**2 + x[1] * w + x[2]
        (dw,) = t.gradient(cost, [w])
        w.assign_sub(0.1 * dw)
        if step % 50 == 0:
            print(f"step {step:3d}  w = {float(w):.6f}  cost = {float(cost):.6f}")
    print(f"final     w = {float(w):.6f}  (the minimum is at 5)")
    return float(w)


if __name__ == "__main__":
    main()
