"""Save a model and its optimizer together, load them into fresh objects, train on.

```python
nn.save_checkpoint("run.npz", model, optimizer, epoch=10)
start = nn.load_checkpoint("run.npz", model, optimizer)     # fresh, not even built
nn.fit(model, X, y, loss=..., optimizer=optimizer, epochs=20, initial_epoch=start)
```

One `.npz` file, written atomically (temporary file and rename) and read with
`allow_pickle=False`: `model/<path>` for every variable (`model.state_dict()`),
`optimizer/<key>` for the optimizer's `state_dict()` (slots, step count, hyperparameters) and a
JSON `meta` entry (format, epoch, and the model's input signature, from which a fresh model
is built). The optimizer's slots are stored by position in
`model.trainable_variables` (the order `fit` hands them over), so they load into fresh
variables. A learning rate that is a schedule (code) is not stored: build the fresh optimizer
with the same schedule, and the stored step count carries on from where it was.

Example:
    >>> import numpy as np, nn, optim, os, tempfile
    >>> X = np.random.default_rng(0).standard_normal((32, 3)); y = (X[:, 0] > 0).astype(int)
    >>> model, opt = nn.Dense(2, seed=0), optim.Adam(0.01)
    >>> _ = nn.fit(model, X, y, loss="sparse_categorical_crossentropy", optimizer=opt,
    ...            epochs=2, verbose=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> nn.save_checkpoint(path, model, opt, epoch=2)
    >>> fresh, fresh_opt = nn.Dense(2), optim.Adam(0.01)             # not built
    >>> nn.load_checkpoint(path, fresh, fresh_opt), fresh_opt.iterations == opt.iterations
    (2, True)
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from nn.layers.module import Module
from tape.utils.npz import load_arrays, save_arrays

FORMAT = "nn.checkpoint/1"


def save_checkpoint(path: str | os.PathLike[str], model: Module, optimizer: Any = None, *,
                    epoch: int = 0) -> None:
    """Write `model`'s variables, `optimizer`'s state (if given) and `epoch` (the number of
    completed epochs, what `fit`'s `initial_epoch` continues from) to `path`, atomically.

    Example:
        >>> import nn, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "weights.npz")
        >>> save_checkpoint(path, nn.Dense(2, input_dim=3, seed=0))
        >>> sorted(load_arrays(path))
        ['meta', 'model/bias', 'model/kernel']
    """
    arrays: dict[str, Any] = {f"model/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optimizer/{k}": np.asarray(v)
                       for k, v in optimizer.state_dict().items()})
    meta = {"format": FORMAT, "epoch": int(epoch), "optimizer": optimizer is not None,
            "input": model.input_signature()}
    arrays["meta"] = np.asarray(json.dumps(meta))
    save_arrays(path, arrays)


def _value(a: np.ndarray) -> Any:
    """A stored optimizer entry as it was given: 0-d arrays back to Python numbers."""
    return a.item() if a.ndim == 0 else a


def load_checkpoint(path: str | os.PathLike[str], model: Module, optimizer: Any = None) -> int:
    """Load a `save_checkpoint` file into `model` (same architecture; a fresh one is built
    from the input signature stored in the file) and `optimizer` (a fresh one of the same kind
    is fine); returns the stored epoch. All or nothing: if the
    model or the optimizer does not match, neither is changed and a `ValueError` says why.

    Example:
        >>> import nn, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "weights.npz")
        >>> save_checkpoint(path, nn.Dense(2, input_dim=3, seed=0), epoch=4)
        >>> load_checkpoint(path, nn.Dense(2, input_dim=3))
        4
    """
    arrays = load_arrays(path)
    try:
        meta = json.loads(str(arrays.pop("meta")))
        ok = meta.get("format") == FORMAT
    except (KeyError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise ValueError(f"{os.fspath(path)!r} is not a file written by nn.save_checkpoint "
                         f"(no 'meta' entry of format {FORMAT!r})")
    if optimizer is not None and not meta["optimizer"]:
        raise ValueError(f"{os.fspath(path)!r} holds no optimizer state (it was saved "
                         f"without an optimizer); call load_checkpoint(path, model)")
    state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    model.build_for_state(state, meta.get("input"), os.fspath(path))
    before = model.state_dict()
    model.load_state_dict(state)
    if optimizer is not None:
        opt_state = {k[len("optimizer/"):]: _value(v) for k, v in arrays.items()
                     if k.startswith("optimizer/")}
        try:
            optimizer.load_state_dict(opt_state, model.trainable_variables)
        except BaseException:
            model.load_state_dict(before)
            raise
    return int(meta["epoch"])
