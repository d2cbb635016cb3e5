"""Forward-mode core: the tangent of one primitive call, and a forward sweep over records.

`output_tangent` applies a primitive's JVP rules (per-input `defjvp`, or one `defjvp_all`
rule) to the tangents of its inputs; `ForwardAccumulator` (`tape.forward`) calls it as each
operation runs, `forward_sweep` along a tape's recorded records (forward-mode Jacobians).
Tangents are raw arrays on the fast path; while an outer tape records, the rules receive
tensors and their operations are recorded (reverse-over-forward).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tape.backprop import check_versions
from tape.primitive import Primitive
from tape.records import Record
from tape.tensor import Tensor


def output_tangent(prim: Primitive, live: Sequence[int], tangents: Sequence[Any], ans: Any,
                   residuals: Any, ins: Sequence[Any], params: dict[str, Any]) -> Any:
    """The tangent of `ans = prim(*ins, **params)` given `tangents[k]` for input `live[k]`,
    broadcast to `ans`'s shape and cast to its dtype; None if no rule gives one.

    Example:
        >>> import numpy as np, tape
        >>> output_tangent(tape.multiply, [0], [np.ones(2)], np.array([3.0, 6.0]), None,
        ...                (np.array([1.0, 2.0]), 3.0), {})
        array([3., 3.])
    """
    rule_all = prim.jvp_all
    if rule_all is not None:
        full: list[Any] = [None] * len(ins)
        for i, t in zip(live, tangents):
            full[i] = t
        out = rule_all(full, ans, residuals, *ins, **params)
    else:
        rules = prim.jvps
        out = None
        for i, t in zip(live, tangents):
            try:
                rule = rules[i]
            except IndexError:
                raise prim.missing_jvp(i) from None
            if rule is None:  # declared non-differentiable
                continue
            ti = rule(t, ans, *ins, **params)
            if ti is not None:
                out = ti if out is None else out + ti
    if out is None:
        return None
    shape = np.shape(ans)
    if np.shape(out) != shape:
        out = np.broadcast_to(out, shape)
    dtype = ans.dtype if hasattr(ans, "dtype") else np.result_type(ans)
    if out.dtype != dtype:
        out = out.astype(dtype)
    return out


def forward_sweep(records: Sequence[Record], tangents: dict[int, Any], differentiable: bool
                  ) -> dict[int, Any]:
    """Push `tangents` ({id(value): tangent}) through `records` in order; return the dict,
    extended with the tangent of every output a tangent reaches.

    With `differentiable=False` the rules see the recorded arrays; with True the recorded
    tensors, so that an outer recording tape records the sweep.

    Example:
        >>> import numpy as np, tape
        >>> x = tape.Variable([1.0, 2.0])
        >>> with tape.Tape(persistent=True) as t:
        ...     y = x * x
        >>> forward_sweep(t._records, {id(x): np.ones(2)}, False)[id(y)]
        array([2., 4.])
    """
    for rec in records:
        args = rec.inputs
        live = []
        ts = []
        for i in rec.live:
            t = tangents.get(id(args[i]))
            if t is not None:
                live.append(i)
                ts.append(t)
        if not live:
            continue
        if rec.versions:
            check_versions(rec)
        if differentiable:
            out = output_tangent(rec.primitive, live, ts, rec.output, None, args, rec.params)
        else:
            out = output_tangent(rec.primitive, live, [_raw(t) for t in ts], rec.output._value,
                                 rec.residuals, rec.values, rec.params)
        if out is not None:
            tangents[id(rec.output)] = out
    return tangents


def _raw(t: Any) -> Any:
    return t._value if isinstance(t, Tensor) else t
