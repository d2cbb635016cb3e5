"""Helpers shared by `tape`, `nn` and `optim`, one home for each job (none of them knows
anything about tensors or training):

- `tape.utils.files`: `atomic_write`, files written whole or not at all.
- `tape.utils.npz`: `.npz` files of named arrays, written atomically and read as data only.
- `tape.utils.locks`: OS locks (`flock`) on open files that forked children never keep.
- `tape.utils.tables`: fixed-width text tables and short numbers for them.
- `tape.utils.checks`: argument checks (`integer`: an integer, not a bool, above a minimum).
- `tape.utils.signatures`: what a callable's signature accepts.
- `tape.utils.names`: a function or object looked up by its name in an allow-list.

Example:
    >>> from tape.utils import tables
    >>> print(tables.format_table([["a", "b"], [tables.short(0.1234567), "x"]]))
    a         b
    0.123457  x
"""
