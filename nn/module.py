"""`Module`: the base of layers and models (variables, nesting, lazy build, checkpoints)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

import tape
from nn import checkpoint
from nn.policy import DEFAULT, TrainingPolicy
from tape import Tensor, Variable


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Module:
    """A layer or a model: a callable holding variables and sub-modules.

    Variables and modules assigned as attributes (directly, or inside lists, tuples and dicts)
    are found automatically, in attribute order, so `variables` has a stable order. A module
    builds its variables on its first call, from the input's shape (`build(input_shape)`), and
    `__call__(x, training=False)` then runs `call`. Subclasses implement `call` (and `build` if
    they own variables).

    Example:
        >>> import nn
        >>> class TwoLayer(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = nn.Dense(8, activation="relu", seed=0)
        ...         self.out = nn.Dense(2, seed=1)
        ...     def call(self, x, training=False):
        ...         return self.out(self.hidden(x, training=training))
        >>> model = TwoLayer()
        >>> model(np.ones((4, 3))).shape
        (4, 2)
        >>> [name for name in model.state_dict()]
        ['hidden/kernel', 'hidden/bias', 'out/kernel', 'out/bias']
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name or _snake(type(self).__name__)
        self.built = False

    # -- building and calling -------------------------------------------------------------
    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create the variables for inputs of `input_shape` (called once, on the first input).

        Layers without variables keep this default, which creates nothing.
        """
        return None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Checked when the class is defined (an ABC would slow every isinstance check on the
        # variable-listing path, which training runs each step).
        super().__init_subclass__(**kwargs)
        if cls.call is Module.call:
            raise TypeError(f"{cls.__name__} subclasses nn.Module, so it must define "
                            f"call(self, x, training=False)")

    def call(self, x: Any, training: bool = False) -> Any:
        """The forward computation; every layer and model defines it."""
        raise TypeError("nn.Module is a base class: subclass it and define call(x, training)")

    def __call__(self, x: Any, training: bool = False) -> Any:
        if not self.built:
            self.build(tuple(np.shape(x)))
            self.built = True
        return self.call(x, training=training)

    # -- populations and training ---------------------------------------------------------
    def stack_members(self, size: int) -> None:
        """The population hook: make this module run as `size` stacked copies of itself.

        `nn.Population` calls it on every module of its stacked model once the variables
        hold a leading member axis of length `size` (a kernel (in, out) is now
        (size, in, out)); from then on inputs carry that axis first, (size, batch, ...),
        and member k must compute exactly what the module alone would on its slice. A layer
        that owns variables supports populations by overriding this (and reading the
        member axis in `call`); modules without variables of their own (containers,
        activations) need nothing. The default refuses a module that owns variables.

        Example:
            >>> import nn
            >>> nn.Sequential([nn.relu]).stack_members(4)   # no variables of its own: fine
            >>> class Scale(nn.Module):
            ...     def build(self, input_shape): self.w = tape.Variable(np.ones(input_shape[-1]))
            ...     def call(self, x, training=False): return x * self.w
            >>> layer = Scale(); _ = layer(np.ones((2, 3)))
            >>> layer.stack_members(4)
            Traceback (most recent call last):
            TypeError: layer 'scale' (Scale) holds variables but does not support populations; ...
        """
        if any(isinstance(v, Variable) for _, v in self._members()):
            raise TypeError(f"layer {self.name!r} ({type(self).__name__}) holds variables but "
                            f"does not support populations; such a layer overrides "
                            f"nn.Module.stack_members(size) and handles a leading member axis "
                            f"of that size (see nn.Dense)")

    def training_policy(self) -> TrainingPolicy:
        """What `nn.fit`, `nn.train_step` and `nn.evaluate` ask about training this model
        (`nn.policy.TrainingPolicy`: one model; `nn.Population` answers per member).

        Example:
            >>> import nn
            >>> nn.Dense(2).training_policy().per_member
            False
        """
        return DEFAULT

    # -- variables and sub-modules --------------------------------------------------------
    def _members(self) -> Iterator[tuple[str, Any]]:
        """(name, Variable or Module) pairs in attribute order; containers are looked into."""
        for key, value in vars(self).items():
            if isinstance(value, (Variable, Module)):
                yield key, value
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    if isinstance(v, (Variable, Module)):
                        yield f"{key}/{i}", v
            elif isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, (Variable, Module)):
                        yield f"{key}/{k}", v

    def _named_variables(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, Variable]]:
        for name, value in self._members():
            if id(value) in seen:  # a shared variable or layer counts once
                continue
            seen.add(id(value))
            if isinstance(value, Variable):
                yield prefix + name, value
            else:
                yield from value._named_variables(f"{prefix}{name}/", seen)

    def named_variables(self) -> list[tuple[str, Variable]]:
        """(path, variable) pairs: the keys of `state_dict`, e.g. `('0/kernel', <Variable>)`.

        Example:
            >>> import nn
            >>> [n for n, _ in nn.Dense(2, input_dim=3).named_variables()]
            ['kernel', 'bias']
        """
        return list(self._named_variables("", {id(self)}))

    @property
    def variables(self) -> list[Variable]:
        """All variables (trainable and not), own ones first, then sub-modules' in order."""
        return [v for _, v in self.named_variables()]

    @property
    def trainable_variables(self) -> list[Variable]:
        """The variables an optimizer updates (`trainable=True`), in `variables` order."""
        return [v for v in self.variables if v.trainable]

    @property
    def non_trainable_variables(self) -> list[Variable]:
        """State updated otherwise (e.g. batch norm's running statistics)."""
        return [v for v in self.variables if not v.trainable]

    @property
    def submodules(self) -> list[Module]:
        """Direct sub-modules, in attribute order."""
        return [m for _, m in self._members() if isinstance(m, Module)]

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every variable's value, keyed by path (`'0/kernel'`, `'1/moving_mean'`).

        Example:
            >>> import nn
            >>> {k: v.shape for k, v in nn.Dense(2, input_dim=3).state_dict().items()}
            {'kernel': (3, 2), 'bias': (2,)}
        """
        return {name: v.numpy() for name, v in self.named_variables()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Set every variable from `state`; all or nothing.

        Names and shapes must match exactly; otherwise a `ValueError` lists the missing,
        unexpected and mismatched entries and no variable is changed.

        Example:
            >>> import nn
            >>> a, b = nn.Dense(2, input_dim=3, seed=0), nn.Dense(2, input_dim=3, seed=1)
            >>> b.load_state_dict(a.state_dict())
            >>> bool(np.all(a.kernel.numpy() == b.kernel.numpy()))
            True
        """
        own = dict(self.named_variables())
        problems = [f"missing {name!r} (shape {v.shape})" for name, v in own.items()
                    if name not in state]
        problems += [f"unexpected {name!r} (shape {np.shape(state[name])})" for name in state
                     if name not in own]
        problems += [f"{name!r}: shape {np.shape(state[name])} in the state, {v.shape} in the "
                     f"model" for name, v in own.items()
                     if name in state and np.shape(state[name]) != v.shape]
        if problems:
            hint = ("" if own else " (the model has no variables yet: call it on "
                    "an input, or `build(input_shape)`, before loading)")
            raise ValueError(f"{self.name}: the state does not match the model's architecture"
                             f"{hint}: " + "; ".join(problems))
        values = {name: np.asarray(state[name]) for name in own}
        for name, v in own.items():
            if not np.can_cast(values[name].dtype, v.dtype, casting="same_kind"):
                raise ValueError(f"{self.name}: {name!r} has dtype {values[name].dtype} in the "
                                 f"state, which cannot be stored in the model's {v.dtype}")
        for name, v in own.items():
            v.assign(values[name])

    def save(self, path: str) -> None:
        """Write `state_dict()` to the `.npz` file `path` atomically (temporary file + rename).

        Example:
            >>> import nn, os, tempfile
            >>> layer = nn.Dense(2, input_dim=3)
            >>> path = os.path.join(tempfile.mkdtemp(), "dense.npz")
            >>> layer.save(path); layer.load(path)
        """
        checkpoint.save_arrays(path, self.state_dict())

    def load(self, path: str) -> None:
        """Load a file written by `save`; see `load_state_dict` for the checks. The file is
        data only: a pickled object array in it is refused with a `ValueError` naming the file
        and the entry, and never unpickled (`nn.checkpoint.load_arrays`)."""
        self.load_state_dict(checkpoint.load_arrays(path))

    def __repr__(self) -> str:
        return f"<nn.{type(self).__name__} '{self.name}'{'' if self.built else ' (not built)'}>"


def as_floating(x: Any, dtype: np.dtype) -> Any:
    """`x` as an array or tensor of the layer's `dtype` (Keras' autocast of inputs).

    Arrays are converted directly; tensors of another dtype go through the recorded `tape.cast`.

    Example:
        >>> as_floating([1, 2], np.float32).dtype
        dtype('float32')
    """
    if isinstance(x, Tensor):
        return x if x.dtype == dtype else tape.cast(x, dtype)
    x = np.asarray(x)
    return x if x.dtype == dtype else x.astype(dtype)
