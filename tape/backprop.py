"""The reverse sweep: walk a tape's records backwards with a cotangent dict local to the call."""

from __future__ import annotations

from typing import Any


def backprop(records: list[tuple[Any, ...]], seeds: dict[int, Any], sources: set[int],
             differentiable: bool, prune: bool = True) -> dict[int, Any]:
    """Cotangents of `sources` (ids) given `seeds` ({id(target): cotangent}).

    With `differentiable=False` the rules see raw arrays and nothing is recorded (the fast
    first-order path). With `differentiable=True` they see the recorded tensors themselves,
    so an outer tape that is still recording records the backward pass (higher order).
    With `prune`, inputs that no source reaches are skipped (callers pass `prune=False` when
    every watched leaf is a source, so that every tracked value leads to one).
    """
    reach = _reachable(records, sources) if prune else None
    ct = dict(seeds)
    for prim, args, vals, params, out, live, versions in reversed(records):
        k = id(out)
        g = ct.get(k) if k in sources else ct.pop(k, None)
        if g is None:
            continue
        if versions:
            for var, version in versions:
                if var._version != version:
                    raise _stale(prim, var)
        if differentiable:
            ins, ans = args, out
        else:
            ins, ans = vals, out._value
        rules = prim.vjps
        for i in live:
            ka = id(args[i])
            if reach is not None and ka not in reach:
                continue
            try:
                rule = rules[i]
            except IndexError:
                raise prim.missing_rule(i) from None
            if rule is None:
                continue
            gi = rule(g, ans, *ins, **params)
            if gi is None:
                continue
            prev = ct.get(ka)
            ct[ka] = gi if prev is None else prev + gi
    return {k: ct.get(k) for k in sources}


def _reachable(records: list[tuple[Any, ...]], sources: set[int]) -> set[int]:
    """Ids of the values on a path from a source: only they can carry gradient to one."""
    reach = set(sources)
    for rec in records:
        args = rec[1]
        for i in rec[5]:
            if id(args[i]) in reach:
                reach.add(id(rec[4]))
                break
    return reach


def _stale(prim: Any, var: Any) -> RuntimeError:
    return RuntimeError(
        f"Variable '{var.name}' was assigned after the tape recorded {prim.name!r} on it, and "
        f"that gradient rule needs the value it had then. Compute gradients before updating "
        f"variables, or record the computation again on a fresh tape."
    )
