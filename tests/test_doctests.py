"""Every example in the docstrings of tape, nn and optim (optim.search included) runs and gives
the output shown. Modules are found by walking the packages, so a new module is covered."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import nn
import optim
import tape

# Modules whose examples need an optional extra: skipped, with the reason, without it.
EXTRAS = {"nn.datasets": "sklearn", "nn.runs.plot": "matplotlib"}


def modules(package):
    return [package.__name__,
            *sorted(m.name for m in pkgutil.walk_packages(package.__path__,
                                                          package.__name__ + "."))]


MODULES = [name for package in (tape, nn, optim) for name in modules(package)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    if name in EXTRAS:
        pytest.importorskip(EXTRAS[name], reason=f"the examples of {name} need {EXTRAS[name]}")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    result = doctest.testmod(importlib.import_module(name), extraglobs={"np": np},
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_the_walk_finds_every_package():
    assert {"optim.search.storage", "nn.layers.population", "tape.utils.locks"} <= set(MODULES)
