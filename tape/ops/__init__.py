"""The primitive operations, by family. Every name here is also exported from `tape`."""

from tape.ops.arithmetic import add, cast, divide, identity, multiply, negative, power, subtract
from tape.ops.elementwise import (
    abs,
    clip,
    cos,
    erf,
    exp,
    log,
    log1p,
    maximum,
    minimum,
    relu,
    sigmoid,
    sin,
    sqrt,
    square,
    tanh,
    where,
)
from tape.ops.indexing import getitem, index, one_hot, scatter_add, take
from tape.ops.linalg import matmul, norm
from tape.ops.reductions import logsumexp, max, mean, min, std, sum, var
from tape.ops.shapes import (
    broadcast_to,
    concatenate,
    expand_dims,
    moveaxis,
    reshape,
    squeeze,
    stack,
    sum_to,
    swapaxes,
    transpose,
    unbroadcast,
)

__all__ = [
    "abs", "add", "broadcast_to", "cast", "clip", "concatenate", "cos", "divide", "erf", "exp",
    "expand_dims", "getitem", "identity", "index", "log", "log1p", "logsumexp", "matmul", "max",
    "maximum", "mean", "min", "minimum", "moveaxis", "multiply", "negative", "norm", "one_hot",
    "power",
    "relu", "reshape", "scatter_add", "sigmoid", "sin", "sqrt", "square", "squeeze", "stack",
    "std", "subtract", "sum", "sum_to", "swapaxes", "take", "tanh", "transpose", "unbroadcast",
    "var", "where",
]
