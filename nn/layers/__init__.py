"""Layers: the `Module` base and everything a model is built from.

- `nn.layers.module`: `Module`, variables, nesting, lazy build, state dicts.
- `nn.layers.policy`: `TrainingPolicy`, how a model trains (one model, or a population).
- `nn.layers.core`: `Dense`, `Sequential`, `seeded`.
- `nn.layers.batchnorm`, `nn.layers.layernorm`, `nn.layers.dropout`, `nn.layers.reshaping`.
- `nn.layers.activations`: activation functions and their layers.
- `nn.layers.initializers`, `nn.layers.regularizers`: weights' initial values and penalties.
- `nn.layers.population`: `Population`, K models trained as one.

Every public name is also `nn.<name>`.
"""
