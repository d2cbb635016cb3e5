"""Optimizers and learning-rate schedules for `tape` Variables (and `optim.search`).

`SGD` (with momentum / Nesterov), `RMSprop`, `Adam` (and AMSGrad), `AdamW`, `Adagrad`,
`Nadam`: each a chain of
small in-place update transforms (`optim.transforms`) under the `Optimizer` base, which gives
`apply_gradients(zip(grads, vars))`, `minimize(loss_fn, var_list)`, gradient clipping, a guard
against non-finite gradients, hyperparameters settable between steps (numbers, schedules from
`optim.schedules`, or one value per stacked model) and `state_dict()`/`load_state_dict()`.

Example:
    >>> import numpy as np
    >>> from tape import Variable
    >>> from optim import Adam
    >>> w, x = Variable(0.0), np.array([1.0, -10.0, 25.0])
    >>> opt = Adam(0.1)
    >>> for _ in range(1000):
    ...     _ = opt.minimize(lambda: x[0] * w**2 + x[1] * w + x[2], [w])
    >>> round(float(w), 3)
    5.0
"""

from optim import schedules
from optim.optimizer import Optimizer
from optim.optimizers import SGD, Adagrad, Adam, AdamW, Nadam, RMSprop

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Nadam", "Optimizer", "RMSprop", "schedules"]
