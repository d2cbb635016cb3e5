"""The examples in optim's docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["optim", "optim.optimizer", "optim.optimizers", "optim.transforms",
           "optim.schedules", "optim.gradients", "optim.hyperparams"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
