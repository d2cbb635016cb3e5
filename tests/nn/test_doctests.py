"""Every example in nn's docstrings runs and gives the output shown."""

import doctest
import importlib
import pkgutil

import pytest

import nn

MODULES = sorted(m.name for m in pkgutil.iter_modules(nn.__path__, "nn."))


@pytest.mark.parametrize("name", ["nn", *MODULES])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
