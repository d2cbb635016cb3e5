"""The course's optimizers, each a short chain of `optim.transforms` links.

Every constructor also takes the `Optimizer` options `clipnorm`, `global_clipnorm` and
`skip_nonfinite`, and every hyperparameter may be a number or a 1-D array of K values (one per
stacked model).
"""

from __future__ import annotations

from typing import Any, cast

from optim.optimizer import Optimizer
from optim.transforms import (
    DecoupledWeightDecay,
    ScaleByAdagrad,
    ScaleByAdam,
    ScaleByNadam,
    ScaleByRms,
    Trace,
)


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum: `b = momentum*b + g; w -= lr*b`.

    This is PyTorch's form (Keras' too, for a constant learning rate; Keras keeps `lr` inside
    its velocity). The course writes momentum as an exponentially weighted average,
    `v = beta*v + (1-beta)*dW; W -= alpha*v`. Both start from zero, so `b = v / (1-beta)` at
    every step: the same direction, with the learning rate scaled by `1/(1-beta)`. The course's
    run with `alpha` is `SGD(learning_rate=alpha*(1-beta), momentum=beta)`, exactly.
    With `nesterov=True` the step is `w -= lr*(g + momentum*b)`.

    Example:
        >>> from tape import Variable
        >>> w = Variable(0.0)
        >>> opt = SGD(0.1, momentum=0.9)
        >>> for _ in range(300):
        ...     _ = opt.minimize(lambda: w**2 - 10*w + 25, [w])
        >>> round(float(w), 4)
        5.0
    """

    def __init__(self, learning_rate: Any, momentum: Any = 0.0, nesterov: bool = False,
                 **options: Any) -> None:
        super().__init__(learning_rate, [Trace(nesterov)], momentum=momentum, **options)

    @property
    def nesterov(self) -> bool:
        """Whether the step looks ahead along the momentum (fixed at construction)."""
        return cast(Trace, self._transforms[0]).nesterov


class RMSprop(Optimizer):
    """RMSprop: `v = rho*v + (1-rho)*g**2; w -= lr * g / (sqrt(v) + epsilon)`.

    The definition of PyTorch's `RMSprop` (whose `alpha` is our `rho`) and of Keras 3's, and the
    course's `S_dW` form with `beta_2 = rho`; epsilon is added outside the square root (the old
    TF1 kernel added it inside). Defaults: `rho=0.9` (Keras'), `epsilon=1e-8` (PyTorch's).
    The new term of `v` is computed as `(sqrt(1-rho) g)**2`, as in `Adam`.

    Example:
        >>> from tape import Variable
        >>> w = Variable(0.0)
        >>> opt = RMSprop(0.01)
        >>> for _ in range(1000):
        ...     _ = opt.minimize(lambda: (w - 5.0) ** 2, [w])
        >>> abs(float(w) - 5.0) < 0.01
        True
    """

    def __init__(self, learning_rate: Any, rho: Any = 0.9, epsilon: Any = 1e-8,
                 **options: Any) -> None:
        super().__init__(learning_rate, [ScaleByRms()], rho=rho, epsilon=epsilon, **options)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, epsilon placed as in PyTorch:

        m = beta_1*m + (1-beta_1)*g;  v = beta_2*v + (1-beta_2)*g**2
        w -= lr * m_hat / (sqrt(v_hat) + epsilon),  m_hat = m/(1-beta_1**t), v_hat = v/(1-beta_2**t)

    Keras instead adds epsilon to the uncorrected `sqrt(v)` (the paper's "epsilon hat"), which
    equals ours with `epsilon * sqrt(1 - beta_2**t)`: the two differ only while `sqrt(v_hat)` is
    comparable to epsilon, mostly in the first steps. `amsgrad=True` divides by the running
    maximum of `v` instead (PyTorch's variant, bias-corrected). `t` is the optimizer's step
    count (`iterations + 1`), shared by all variables as in Keras.

    The new term of `v` is computed as `(sqrt(1-beta_2) g)**2`: a float32 gradient of 1e20,
    whose square overflows, still gives a finite `v` of 1e37 (PyTorch's `v` becomes inf and the
    weight never moves again). A gradient whose term cannot be represented (1e30 in float32)
    makes the step refused, like a non-finite gradient.

    Example:
        >>> import numpy as np
        >>> from tape import Variable
        >>> w, x = Variable(0.0), np.array([1.0, -10.0, 25.0])
        >>> opt = Adam(0.1)
        >>> for _ in range(1000):
        ...     _ = opt.minimize(lambda: x[0]*w**2 + x[1]*w + x[2], [w])
        >>> round(float(w), 3)
        5.0
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: Any = 0.9, beta_2: Any = 0.999,
                 epsilon: Any = 1e-8, amsgrad: bool = False, **options: Any) -> None:
        super().__init__(learning_rate, self._chain(amsgrad), beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, **options)

    @staticmethod
    def _chain(amsgrad: bool) -> list[Any]:
        return [ScaleByAdam(amsgrad)]

    @property
    def amsgrad(self) -> bool:
        """Whether the denominator uses the running maximum of `v` (fixed at construction)."""
        return cast(ScaleByAdam, self._transforms[0]).amsgrad


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's semantics: each step
    first shrinks the weights, `w -= lr * weight_decay * w`, then takes the Adam step. Unlike an
    L2 term in the loss, the decay is not divided by `sqrt(v_hat)`.

    Example:
        >>> from tape import Variable
        >>> w = Variable(1.0)
        >>> opt = AdamW(0.1, weight_decay=0.5)
        >>> _ = opt.apply_gradients([(0.0, w)])   # zero gradient: only the decay acts
        >>> float(w)
        0.95
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: Any = 0.9, beta_2: Any = 0.999,
                 epsilon: Any = 1e-8, weight_decay: Any = 0.01, amsgrad: bool = False,
                 **options: Any) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **options)

    @staticmethod
    def _chain(amsgrad: bool) -> list[Any]:
        return [ScaleByAdam(amsgrad), DecoupledWeightDecay()]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): `s += g**2; w -= lr * g / (sqrt(s) + epsilon)`.

    PyTorch's definition (the sum starts at 0, `epsilon=1e-10` outside the root); Keras starts
    the sum at 0.1 and puts epsilon inside the root. Defaults: `learning_rate=0.01`.

    Example:
        >>> from tape import Variable
        >>> w = Variable(0.0)
        >>> opt = Adagrad(1.0)
        >>> for _ in range(500):
        ...     _ = opt.minimize(lambda: (w - 5.0) ** 2, [w])
        >>> round(float(w), 3)
        5.0
    """

    def __init__(self, learning_rate: Any = 0.01, epsilon: Any = 1e-10, **options: Any) -> None:
        super().__init__(learning_rate, [ScaleByAdagrad()], epsilon=epsilon, **options)


class Nadam(Optimizer):
    """Nadam (Dozat, 2016): Adam with Nesterov momentum, in the paper's form (as optax):

        m = beta_1*m + (1-beta_1)*g;  v = beta_2*v + (1-beta_2)*g**2
        w -= lr * (beta_1*m/(1-beta_1**(t+1)) + (1-beta_1)*g/(1-beta_1**t))
                 / (sqrt(v/(1-beta_2**t)) + epsilon)

    Keras and PyTorch multiply `beta_1` by a slowly decaying schedule (`momentum_decay`);
    without it the two differ only by that schedule. Defaults as `Adam`.

    Example:
        >>> from tape import Variable
        >>> w = Variable(0.0)
        >>> opt = Nadam(0.1)
        >>> for _ in range(1000):
        ...     _ = opt.minimize(lambda: (w - 5.0) ** 2, [w])
        >>> round(float(w), 3)
        5.0
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: Any = 0.9, beta_2: Any = 0.999,
                 epsilon: Any = 1e-8, **options: Any) -> None:
        super().__init__(learning_rate, [ScaleByNadam()], beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, **options)
