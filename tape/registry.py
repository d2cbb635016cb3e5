"""The allow-list of classes that files may name: files are data, never code.

A checkpoint or a log stores an object such as a learning-rate schedule by its class name and
settings. Reading it back looks that name up here, and only here: a name nobody registered is
refused, and no module is ever imported because a file names it. Libraries register their
savable classes when they define them (`optim.schedules` does); a user registers their own with
`register(cls)` (or `optim.schedules.register`), or passes them for one call (the
`custom_objects=` argument of `nn.Babysitter`). It lives in `tape` so that `nn` (which reads
the files) and `optim` (which defines the schedules) both use it without importing each other.

Example:
    >>> import dataclasses
    >>> @register
    ... @dataclasses.dataclass
    ... class Halving:
    ...     lr: float
    ...     def __call__(self, step): return self.lr / 2 ** step
    >>> name = qualified_name(Halving); name
    '...:Halving'
    >>> lookup(name) is Halving, lookup("os:system")
    (True, None)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

__all__ = ["by_name", "lookup", "qualified_name", "register"]

T = TypeVar("T", bound=type)

_CLASSES: dict[str, type] = {}


def qualified_name(cls: type) -> str:
    """The name a file stores for `cls`: `"module:QualName"`.

    Example:
        >>> qualified_name(dict)
        'builtins:dict'
    """
    return f"{cls.__module__}:{cls.__qualname__}"


def register(cls: T) -> T:
    """Allow files to name `cls` (under `qualified_name(cls)`); returns `cls`, so it is also
    a class decorator. Registering a class again under the same name replaces the old one
    (a class redefined in a notebook, say).

    Example:
        >>> class Constant:
        ...     def __init__(self, value): self.value = value
        ...     def get_config(self): return {"value": self.value}
        ...     def __call__(self, step): return self.value
        >>> register(Constant) is Constant
        True
    """
    if not isinstance(cls, type):
        raise TypeError(f"register() takes a class, got {cls!r}; files can name classes only "
                        f"(a function or lambda cannot be saved)")
    if "<locals>" in cls.__qualname__:
        raise ValueError(f"cannot register {cls.__qualname__}: a class defined inside a "
                         f"function has no stable name; define it at module level")
    _CLASSES[qualified_name(cls)] = cls
    return cls


def by_name(classes: Iterable[type] | Mapping[str, type] | None) -> dict[str, type]:
    """Classes to allow for one call (a `custom_objects=` argument) as a mapping from the name
    a file stores to the class: classes go under their `qualified_name`; a mapping gives the
    names itself (for a class that moved or was renamed since the file was written).

    Example:
        >>> class Moved: pass
        >>> by_name({"old_module:Moved": Moved}) == {"old_module:Moved": Moved}
        True
        >>> by_name([len])
        Traceback (most recent call last):
        TypeError: custom_objects must hold classes, got <built-in function len>
    """
    if classes is None:
        return {}
    items = classes.items() if isinstance(classes, Mapping) else ((None, c) for c in classes)
    found = {}
    for name, cls in items:
        if not isinstance(cls, type):
            raise TypeError(f"custom_objects must hold classes, got {cls!r}")
        found[qualified_name(cls) if name is None else str(name)] = cls
    return found


def lookup(name: str, extra: Mapping[str, type] | None = None) -> type | None:
    """The class allowed under `name` (in `extra`, from `by_name`, first; then registered),
    or None; never an import.

    Example:
        >>> lookup("os:system") is None
        True
        >>> class Moved: pass
        >>> lookup("old_module:Moved", by_name({"old_module:Moved": Moved})) is Moved
        True
    """
    if extra and name in extra:
        return extra[name]
    return _CLASSES.get(name)
