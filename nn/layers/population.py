"""`Population`: K same-shaped models trained as one, every variable with a leading member axis.

Sixteen small networks that differ only in their hyperparameters train much faster as one
network whose kernels are (16, in, out): one batched matmul instead of sixteen small ones, one
optimizer step with a learning rate per member (`optim.Adam(lrs)`). Member k trains exactly as
the same model would alone: the population's training loss is the sum of the member means, so
member k's gradient is its standalone gradient.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import tape
from nn.layers.core import seeded
from nn.layers.module import Module
from nn.layers.policy import TrainingPolicy
from tape import Tape, Tensor, Variable
from tape.utils import checks, signatures


def member_seeds(seed: int | Sequence[int] | None, size: int) -> list[int]:
    """The seeds of a population's members: `seed` itself if it is a sequence of `size`
    integers, else `np.random.SeedSequence(seed).generate_state(size)` (fresh OS entropy for
    None).

    Example:
        >>> member_seeds([5, 5], 2), len(member_seeds(0, 3))
        ([5, 5], 3)
    """
    if seed is None or isinstance(seed, (int, np.integer)):
        return [int(s) for s in np.random.SeedSequence(seed).generate_state(size)]
    seeds = [int(s) for s in seed]
    if len(seeds) != size:
        raise ValueError(f"got {len(seeds)} member seeds for a population of {size}")
    return seeds


def _signature(model: Module) -> list[tuple[str, tuple[Any, ...]]]:
    """(path, what) for every module (type, plain settings, functions) and variable (shape,
    dtype, trainable): what the members of a population must share."""
    out: list[tuple[str, tuple[Any, ...]]] = []

    def walk(m: Module, path: str) -> None:
        settings = tuple((k, v) for k, v in vars(m).items()
                         if isinstance(v, (bool, int, float, str, tuple, type(None))))
        fns = tuple((k, getattr(v, "__qualname__", type(v).__name__))
                    for k, v in vars(m).items()
                    if callable(v) and not isinstance(v, (Module, Variable)))
        out.append((path.rstrip("/") or "the model", (type(m).__name__, settings, fns)))
        for name, v in m._members():
            if isinstance(v, Variable):
                out.append((path + name, (v.shape, v.dtype, v.trainable)))
            else:
                walk(v, f"{path}{name}/")
    walk(model, "")
    return out


def _mismatch(path: str, a: tuple[Any, ...], b: tuple[Any, ...], k: int) -> str:
    shown: list[dict[Any, Any]] | list[str]
    if isinstance(a[0], str) and a[0] == b[0]:  # two modules of the same type: the settings
        da, db = dict(a[1] + a[2]), dict(b[1] + b[2])
        shown = [{n: d.get(n) for n in {**da, **db} if da.get(n) != db.get(n)} for d in (da, db)]
    else:
        shown = [f"a {w[0]}" if isinstance(w[0], str) else
                 f"shape {w[0]}, {w[1]}{'' if w[2] else ', not trainable'}" for w in (a, b)]
    return f"at {path!r}, member 0 has {shown[0]} but member {k} has {shown[1]}"


def _check_same_structure(models: list[Module]) -> None:
    first = _signature(models[0])
    for k, model in enumerate(models[1:], start=1):
        other = _signature(model)
        if other == first:
            continue
        for (path, a), (path_k, b) in zip(first, other):
            if path != path_k:
                detail = f"member 0 has {path!r} where member {k} has {path_k!r}"
                break
            if a != b:
                detail = _mismatch(path, a, b, k)
                break
        else:
            longer, owner = (first, 0) if len(first) > len(other) else (other, k)
            detail = f"{longer[min(len(first), len(other))][0]!r} is in member {owner} only"
        raise ValueError(f"build() returned models of different structure: {detail}")


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)


def _modules(model: Module) -> Iterator[Module]:
    yield model
    for m in model.submodules:
        yield from _modules(m)


class Population(Module):
    """`size` independently initialized copies of `build()`'s model, stacked and trained as one.

    Member k is built as `build()` (or `build(seed=s)` when `build` takes a `seed`) inside
    `nn.seeded(s)`, with `s = pop.seeds[k]`: layers given no seed or rng draw from `s`, so
    member k starts exactly like that same call made alone. `seed` is an int (member seeds
    from `SeedSequence(seed)`, see `member_seeds`), `size` ints, or None (OS entropy).
    Every variable gets a leading axis of length `size` (`Dense` kernels are (K, in, out),
    `BatchNorm` statistics (K, features), per member). An input with `input_ndim` axes, e.g.
    (batch, features), is fed to every member; one with a leading axis K gives each member its
    own. The output is (K, batch, ...). Variables are created on the first call (or `build`).

    `nn.fit(pop, ...)` trains it with `History` values of shape (K,); a member whose loss or
    gradient turns NaN/inf is frozen (`pop.frozen`; its weights and statistics stay as they
    were before that step) and the others go on. `member(k)` is an ordinary model,
    `select(indices)` keeps a subset.

    Example:
        >>> import nn
        >>> pop = Population(lambda: nn.Sequential([nn.Dense(4), nn.BatchNorm(), nn.ReLU(),
        ...                                          nn.Dense(2)]), size=3, seed=0)
        >>> pop(np.ones((5, 6))).shape
        (3, 5, 2)
        >>> pop.state_dict()["0/kernel"].shape
        (3, 6, 4)
        >>> with nn.seeded(pop.seeds[1]):
        ...     alone = nn.Sequential([nn.Dense(4), nn.BatchNorm(), nn.ReLU(), nn.Dense(2)])
        >>> _ = alone(np.ones((5, 6)))
        >>> bool((alone.layers[0].kernel.numpy() == pop.member(1).layers[0].kernel.numpy()).all())
        True
    """

    def __init__(self, build: Callable[..., Module], size: int,
                 seed: int | Sequence[int] | None = None, *, input_ndim: int = 2,
                 name: str | None = None) -> None:
        super().__init__(name)
        if not checks.is_integer(size) or size < 1:
            raise ValueError(f"a population needs an integer size >= 1, got {size!r}")
        self.seeds = member_seeds(seed, int(size))
        self.input_ndim = int(input_ndim)
        takes_seed = signatures.accepts(build, "seed")
        self._pending: list[Module] = []
        for s in self.seeds:
            with seeded(s):
                model = build(seed=s) if takes_seed else build()
            if not isinstance(model, Module):
                raise TypeError(f"build() must return an nn.Module, got {type(model).__name__}")
            self._pending.append(model)
        self.frozen = np.zeros(len(self.seeds), bool)
        self.last_frozen = np.zeros(0, int)  # members frozen by the last train_step
        if all(m.built for m in self._pending):
            self._stack()

    # -- stacking ---------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """K, the number of members (it changes with `select`)."""
        return len(self.seeds)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Build the members for inputs of one member's `input_shape` (None: batch 1), then
        stack them.

        Example:
            >>> import nn
            >>> pop = Population(lambda: nn.Dense(2), size=4, seed=0)
            >>> pop.build((None, 3)); pop.trainable_variables[0].shape
            (4, 3, 2)
        """
        zeros = np.zeros(tuple(1 if n is None else n for n in input_shape), np.float32)
        for model in self._pending:
            model(zeros, training=False)  # inference mode: no running statistics change
        self._stack()
        self.built = True

    def _stack(self) -> None:
        members = self._pending
        _check_same_structure(members)
        template = members[0]
        named = [m.named_variables() for m in members]
        memo: dict[int, Any] = {}
        for i, (_, v) in enumerate(named[0]):
            value = np.stack([np.asarray(n[i][1]) for n in named])
            memo[id(v)] = Variable(value, trainable=v.trainable, name=v.name)
        self._set_model(copy.deepcopy(template, memo))
        self._template = template
        self._dtype = named[0][0][1].dtype if named[0] else None
        self._pending = []
        self.built = True

    def _set_model(self, model: Module) -> None:
        for m in _modules(model):
            m.stack_members(self.size)
        self._model = model
        self._named = model.named_variables()  # the structure is fixed: walk it once

    def named_variables(self) -> list[tuple[str, Variable]]:
        """(path, stacked variable) pairs, as in the model `build()` returns; empty until built.

        Example:
            >>> import nn
            >>> [n for n, _ in Population(lambda: nn.Dense(2, input_dim=3), 2, 0).named_variables()]
            ['kernel', 'bias']
        """
        return list(self.__dict__.get("_named", ()))

    def _members(self) -> Iterator[tuple[str, Any]]:
        model = self.__dict__.get("_model")
        return iter(()) if model is None else model._members()

    # -- calling ----------------------------------------------------------------------------
    def is_shared(self, x: Any) -> bool:
        """Whether input `x` goes to every member (`input_ndim` axes) rather than one slice
        per member (a leading axis of length K); anything else is a `ValueError`.

        Example:
            >>> import nn
            >>> pop = Population(lambda: nn.Dense(2), size=4, seed=0)
            >>> pop.is_shared(np.ones((8, 3))), pop.is_shared(np.ones((4, 8, 3)))
            (True, False)
        """
        shape = _shape(x)
        if len(shape) == self.input_ndim:
            return True
        if len(shape) == self.input_ndim + 1 and shape[0] == self.size:
            return False
        raise ValueError(f"a population of {self.size} takes inputs of {self.input_ndim} axes "
                         f"(shared by every member) or {self.input_ndim + 1} axes with "
                         f"{self.size} first (one slice per member); got shape {shape}")

    def stack(self, a: Any) -> Any:
        """`a` with a leading member axis: broadcast (a view, no copy) for a shared array.

        Example:
            >>> import nn
            >>> Population(lambda: nn.Dense(2), size=4, seed=0).stack(np.ones(3)).shape
            (4, 3)
        """
        if isinstance(a, Tensor):
            return tape.broadcast_to(a, (self.size, *a.shape))
        a = np.asarray(a)
        return np.broadcast_to(a, (self.size, *a.shape))

    def _built_for(self, x: Any) -> bool:
        """`is_shared(x)`, after building the members for `x` if they are not built yet."""
        shared = self.is_shared(x)
        if not self.built:
            self.build(_shape(x)[0 if shared else 1:])
        return shared

    def __call__(self, x: Any, training: bool = False) -> Any:
        return self.call(x, training=training)  # builds from the member shape, not x's

    def call(self, x: Any, training: bool = False) -> Any:
        shared = self._built_for(x)
        if shared:
            if not isinstance(x, Tensor):
                x = np.asarray(x)
                if self._dtype is not None and x.dtype != self._dtype:
                    x = x.astype(self._dtype)  # once, before the K-fold broadcast
            x = self.stack(x)
        return self._model(x, training=training)

    # -- losses and metrics per member ------------------------------------------------------
    def member_losses(self, loss: Callable[..., Any], outputs: Any, labels: Any, *,
                      shared: bool) -> Tensor:
        """One loss value per member, shape (K,): each member's mean of `loss` over its batch.

        `loss(outputs, labels, reduction="none")` is used when `loss` takes a `reduction`
        (all of nn's losses), else `loss` is called member by member. `shared` labels are
        broadcast to every member.

        Example:
            >>> import nn
            >>> pop = Population(lambda: nn.Dense(3), size=2, seed=0)
            >>> out = pop(np.ones((4, 5)))
            >>> pop.member_losses(nn.softmax_cross_entropy, out, np.zeros(4, int),
            ...                   shared=True).shape
            (2,)
        """
        labels = self.stack(labels) if shared else labels
        if not signatures.accepts(loss, "reduction"):
            return tape.stack([loss(outputs[k], labels[k]) for k in range(self.size)])
        values = loss(outputs, labels, reduction="none")
        return values if values.ndim == 1 else tape.mean(values, axis=tuple(range(1, values.ndim)))

    def member_metric(self, metric: Callable[..., Any], outputs: Any, labels: Any, *,
                      shared: bool) -> np.ndarray:
        """`metric(outputs, labels)` per member, shape (K,) (nn.accuracy in one pass).

        Example:
            >>> import nn
            >>> pop = Population(lambda: nn.Dense(3), size=2, seed=0)
            >>> pop.member_metric(nn.accuracy, pop(np.ones((4, 5))), np.zeros(4, int),
            ...                   shared=True).shape
            (2,)
        """
        from nn.data import accuracy

        outputs = np.asarray(outputs)
        labels = self.stack(labels) if shared else np.asarray(labels)
        if metric is accuracy:
            return accuracy(outputs, labels, per_member=True)
        return np.array([metric(outputs[k], labels[k]) for k in range(self.size)], float)

    # -- training ---------------------------------------------------------------------------
    def train_step(self, x: Any, y: Any, loss: Callable[..., Any], optimizer: Any
                   ) -> tuple[np.ndarray, Any]:
        """One step for every member: forward on a tape, the sum of the member losses,
        gradients, then `optimizer.apply_gradients(..., active=...)` with its per-member
        guard switched on. Returns `(loss per member, outputs)`.

        Members that are frozen, or whose loss or gradients are not finite, are not updated
        (weights, optimizer slots and batch-norm statistics); the latter are frozen from now
        on and listed in `last_frozen`. `nn.train_step(pop, ...)` and `nn.fit` call this.

        Example:
            >>> import nn, optim
            >>> pop = Population(lambda: nn.Dense(1), size=2, seed=0)
            >>> values, _ = pop.train_step(np.ones((4, 3)), np.zeros((4, 1)),
            ...                            nn.mean_squared_error, optim.SGD([0.1, 0.2]))
            >>> values.shape
            (2,)
        """
        shared = self._built_for(x)  # before the tape: building records nothing there
        stats = self.non_trainable_variables
        before = self._begin_step(optimizer, stats)
        # Overflow in a diverging member is reported by freezing it, not by warnings.
        with np.errstate(over="ignore", invalid="ignore"), Tape() as t:
            outputs = self(x, training=True)
            losses = self.member_losses(loss, outputs, y, shared=shared)
            total = tape.sum(losses)
        values, active = self._finite_members(losses)
        variables = self.trainable_variables
        with np.errstate(over="ignore", invalid="ignore"):
            grads = t.gradient(total, variables)
        optimizer.per_member_nonfinite = True
        updated = optimizer.apply_gradients(zip(grads, variables), active=active)
        self._end_step(stats, before, updated)
        return values, outputs

    # The Python around the step reads and writes per-call state (`frozen`, the statistics
    # before the step): under `tape.function` each part is one kernel, re-run on each replay.
    @tape.kernel
    def _begin_step(self, optimizer: Any, stats: list[Variable]) -> list[np.ndarray]:
        """Check the optimizer's hyperparameters; copies of the statistics before the step."""
        self.check_hyperparameters(optimizer)
        return [v.numpy() for v in stats]

    @tape.kernel
    def _finite_members(self, losses: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(loss per member, the mask of members to update: not frozen, finite loss)."""
        values = losses.numpy()
        return values, ~self.frozen & np.isfinite(values)

    @tape.kernel
    def _end_step(self, stats: list[Variable], before: list[np.ndarray], updated: Any) -> None:
        """Members that did not step keep their statistics and are frozen from now on."""
        idle = ~updated
        if idle.any():
            for v, old in zip(stats, before):
                value = v.numpy()
                value[idle] = old[idle]
                v.assign(value)
        self.last_frozen = np.flatnonzero(idle & ~self.frozen)
        self.frozen |= idle

    def check_hyperparameters(self, optimizer: Any) -> None:
        """A `ValueError` unless every array hyperparameter of `optimizer` has K values.

        Example:
            >>> import nn, optim
            >>> Population(lambda: nn.Dense(1), size=2, seed=0).check_hyperparameters(
            ...     optim.Adam([0.1, 0.2, 0.3]))
            Traceback (most recent call last):
            ValueError: optimizer hyperparameter 'learning_rate' has 3 values, but the ...
        """
        for name, v in getattr(optimizer, "hyperparameters", {}).items():
            if isinstance(v, np.ndarray) and len(v) != self.size:
                raise ValueError(f"optimizer hyperparameter {name!r} has {len(v)} values, but "
                                 f"the population has {self.size} members")

    def training_policy(self) -> MemberPolicy:
        """The per-member policy `nn.fit` follows (see `MemberPolicy`).

        Example:
            >>> import nn
            >>> Population(lambda: nn.Dense(2), size=2, seed=0).training_policy().per_member
            True
        """
        return MemberPolicy(self)

    # -- members ----------------------------------------------------------------------------
    def _index(self, k: Any) -> int:
        if not checks.is_integer(k):
            raise TypeError(f"member indices are integers, got {k!r}")
        if not -self.size <= k < self.size:
            raise IndexError(f"member {k} is out of range for a population of {self.size}")
        return int(k) % self.size

    def _require_built(self) -> None:
        if not self.built:
            raise ValueError("the population has no variables yet: call it on an input, or "
                             "`build(input_shape)`, first")

    def member(self, k: int) -> Module:
        """Member k as an ordinary model (the architecture `build()` gives), with its current
        weights and batch-norm statistics (copies).

        Example:
            >>> import nn
            >>> pop = Population(lambda: nn.Dense(2, input_dim=3), size=4, seed=0)
            >>> pop.member(-1).kernel.shape
            (3, 2)
        """
        self._require_built()
        k = self._index(k)
        model = copy.deepcopy(self._template)
        model.load_state_dict({name: v.numpy()[k] for name, v in self.named_variables()})
        return model

    def select(self, indices: Sequence[int], optimizer: Any = None) -> None:
        """Keep only the members `indices` (in that order), e.g. to cull bad ones.

        Pass the `optimizer` that trains the population to select its per-member state
        (slots, array hyperparameters) the same way; seeds and `frozen` follow too. A `fit`
        callback may cull this way between epochs (with data shared by all members).

        Example:
            >>> import nn, optim
            >>> pop = Population(lambda: nn.Dense(2, input_dim=3), size=4, seed=0)
            >>> opt = optim.Adam([0.1, 0.2, 0.3, 0.4])
            >>> pop.select([3, 1], optimizer=opt)
            >>> pop.size, opt.learning_rate
            (2, array([0.4, 0.2]))
        """
        self._require_built()
        idx = np.array([self._index(k) for k in indices], dtype=int)
        if idx.size == 0 or len(set(idx.tolist())) != idx.size:
            raise ValueError(f"select needs distinct member indices, at least one; got "
                             f"{list(indices)}")
        memo: dict[int, Any] = {}
        pairs = []
        for v in self.variables:
            new = Variable(v.numpy()[idx], trainable=v.trainable, name=v.name)
            memo[id(v)] = new
            pairs.append((v, new))
        if optimizer is not None:
            optimizer.select_members(idx, pairs)
        self.seeds = [self.seeds[i] for i in idx]
        self.frozen = self.frozen[idx]
        self.last_frozen = np.zeros(0, int)
        self._set_model(copy.deepcopy(self._model, memo))

    def __repr__(self) -> str:
        return (f"<nn.Population '{self.name}' of {self.size} x {type(self._template).__name__}>"
                if self.built else f"<nn.Population '{self.name}' of {self.size} (not built)>")


class MemberPolicy(TrainingPolicy):
    """How a `Population` trains (`Population.training_policy()`): the loss is the sum of the
    member means (so member k's gradient is its standalone one), logged values are one per
    member, and a member whose loss or gradients turn non-finite is frozen
    (`Population.train_step`) while the others go on.

    Example:
        >>> import nn
        >>> pop = Population(lambda: nn.Dense(1), size=2, seed=0)
        >>> policy = pop.training_policy()
        >>> policy.examples_axis(np.zeros((2, 5, 3))), policy.frozen_count()
        (1, 0)
    """

    per_member = True

    def __init__(self, population: Population) -> None:
        self.population = population

    def examples_axis(self, x: Any) -> int:
        return 0 if self.population.is_shared(x) else 1

    def check_optimizer(self, optimizer: Any) -> None:
        self.population.check_hyperparameters(optimizer)

    def train_step(self, model: Any, x: Any, y: Any, loss: Callable[..., Any],
                   optimizer: Any, variables: Sequence[Variable] | None = None
                   ) -> tuple[Any, Any]:
        return self.population.train_step(x, y, loss, optimizer)

    def loss_value(self, loss: Callable[..., Any], outputs: Any, labels: Any, *,
                   shared: bool) -> Any:
        return np.asarray(self.population.member_losses(loss, outputs, labels, shared=shared))

    def metric_values(self, metrics: Sequence[tuple[str, Callable[..., Any]]], outputs: Any,
                      labels: Any, *, shared: bool) -> dict[str, Any]:
        out = np.asarray(outputs)
        return {n: self.population.member_metric(fn, out, labels, shared=shared)
                for n, fn in metrics}

    def frozen_count(self) -> int:
        return int(self.population.frozen.sum())

    def newly_frozen(self) -> np.ndarray:
        return self.population.last_frozen

    def all_frozen(self) -> bool:
        return bool(self.population.frozen.all())
