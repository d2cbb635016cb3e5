"""`Module`: the base of layers and models (variables, nesting, lazy build, checkpoints)."""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

import tape
from nn import checkpoint
from nn.policy import DEFAULT, TrainingPolicy
from tape import Tensor, Variable

# The output shape of each module's last call, for `summary` (kept outside the modules, whose
# attributes describe their structure).
_OUTPUT_SHAPES: weakref.WeakKeyDictionary[Module, tuple[int, ...]] = weakref.WeakKeyDictionary()


def _snake(name: str) -> str:
    """A class name in snake case, as Keras names layers: acronyms stay one word.

    Example:
        >>> [_snake(n) for n in ("Dense", "BatchNorm", "MLP", "MLPBlock", "TwoLayer")]
        ['dense', 'batch_norm', 'mlp', 'mlp_block', 'two_layer']
    """
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


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
        out = self.call(x, training=training)
        _OUTPUT_SHAPES[self] = np.shape(out)
        return out

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

    def regularization_losses(self) -> list[Tensor]:
        """The weight penalties of this module and its sub-modules (Keras' `model.losses`),
        each a scalar computed now from the current weights, so recorded on the active tape;
        a shared layer counts once. `nn.fit` adds their sum to the loss.

        Example:
            >>> import nn
            >>> model = nn.Sequential([nn.Dense(2, input_dim=3, kernel_regularizer="l2"),
            ...                        nn.Dense(1, input_dim=2)])
            >>> len(model.regularization_losses())
            1
        """
        seen: set[int] = set()
        penalties: list[Tensor] = []
        for _, m in self._walk(""):
            if id(m) not in seen:
                seen.add(id(m))
                penalties += m.own_regularization_losses()
        return penalties

    def own_regularization_losses(self) -> list[Tensor]:
        """The penalties on this module's own variables; none by default. The hook a layer
        with regularizers overrides (`regularization_losses` collects them)."""
        return []

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

    # -- description ----------------------------------------------------------------------
    def count_params(self) -> int:
        """The number of scalars in all variables (trainable and not), shared ones once.

        Raises `ValueError` if a layer has not built its variables yet (call the model on an
        input, or `build(input_shape)`, first), as Keras does.

        Example:
            >>> import nn
            >>> nn.Dense(2, input_dim=3).count_params()
            8
        """
        unbuilt = [path or self.name for path, m in self._walk("") if not m.built
                   and not m.submodules]
        if unbuilt:
            raise ValueError(f"{self.name}: count_params() needs built layers, and "
                             f"{', '.join(unbuilt)} {'is' if len(unbuilt) == 1 else 'are'} not "
                             f"built yet (variables are made on the first input): call the "
                             f"model on a batch, or model.build(input_shape), first")
        return sum(int(v.size) for v in self.variables)

    def _walk(self, prefix: str) -> Iterator[tuple[str, Module]]:
        """(path, module) for this module and every sub-module, depth first."""
        yield prefix, self
        for key, m in self._members():
            if isinstance(m, Module):
                yield from m._walk(f"{prefix}{key}" if not prefix else f"{prefix}/{key}")

    def _layer_rows(self) -> list[tuple[str, Module]]:
        """(label, module) per direct sub-module: its attribute name, or its own name when the
        attribute is a position (Sequential's '0', '1', ...)."""
        return [(m.name if key.split("/")[-1].isdigit() else key, m)
                for key, m in self._members() if isinstance(m, Module)]

    def summary(self, input_shape: tuple[int | None, ...] | None = None,
                print_fn: Any = print) -> None:
        """Print a table of the layers (direct sub-modules; labelled by attribute name, or by
        layer name in a Sequential): name and type, output shape and
        parameter count, then the totals (trainable and not), like Keras' `Model.summary`.

        Output shapes are those of the last call, with the batch axis shown as None. With
        `input_shape` (None for the batch axis), the model first runs on a batch of zeros
        (one example per None, `training=False`: running statistics are left as they are).

        Example:
            >>> import nn
            >>> model = nn.Sequential([nn.Dense(4, seed=0), nn.ReLU(), nn.Dense(2, seed=1)])
            >>> model.summary(input_shape=(None, 3))
            Model: "sequential"
            Layer (type)     Output shape    Param #
            ----------------------------------------
            dense (Dense)    (None, 4)            16
            re_lu (ReLU)     (None, 4)             0
            dense (Dense)    (None, 2)            10
            ----------------------------------------
            Total params: 26
            Trainable params: 26
            Non-trainable params: 0
        """
        if input_shape is not None:
            self(np.zeros(tuple(1 if n is None else n for n in input_shape), np.float32))
        layers = self._layer_rows() or [(self.name, self)]
        rows = [(f"{label} ({type(m).__name__})", _shown_shape(m),
                 str(sum(int(v.size) for v in m.variables)) if m.built else "(not built)")
                for label, m in layers]
        head = ("Layer (type)", "Output shape", "Param #")
        widths = [max(len(r[i]) for r in [head, *rows]) + 4 for i in range(2)]
        width = widths[0] + widths[1] + max(len(r[2]) for r in [head, *rows])
        lines = [f'Model: "{self.name}"', head[0].ljust(widths[0]) + head[1].ljust(widths[1])
                 + head[2].rjust(width - widths[0] - widths[1]), "-" * width]
        lines += [name.ljust(widths[0]) + shape.ljust(widths[1])
                  + count.rjust(width - widths[0] - widths[1]) for name, shape, count in rows]
        variables = self.variables
        trainable = sum(int(v.size) for v in variables if v.trainable)
        total = sum(int(v.size) for v in variables)
        lines += ["-" * width, f"Total params: {total}", f"Trainable params: {trainable}",
                  f"Non-trainable params: {total - trainable}"]
        print_fn("\n".join(lines))

    def __repr__(self) -> str:
        inner = self.submodules
        if not inner:
            state = "" if self.built else " (not built)"
            return f"<nn.{type(self).__name__} '{self.name}'{state}>"
        names = ", ".join(f"{type(m).__name__} '{m.name}'" for m in inner[:8])
        more = f", ... ({len(inner) - 8} more)" if len(inner) > 8 else ""
        return f"<nn.{type(self).__name__} '{self.name}': {names}{more}>"


def _shown_shape(m: Module) -> str:
    """The output shape of `m`'s last call, batch axis as None ('?' if never called)."""
    shape = _OUTPUT_SHAPES.get(m)
    if shape is None:  # a container that runs its layers itself (Sequential): its last layer's
        inner = m.submodules
        return _shown_shape(inner[-1]) if inner else "?"
    return str((None, *shape[1:])) if shape else "()"


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
