"""Every example in tape's docstrings runs and gives the output shown."""

import doctest
import importlib
import pkgutil

import pytest

import tape

MODULES = sorted(m.name for m in pkgutil.walk_packages(tape.__path__, "tape."))


@pytest.mark.parametrize("name", ["tape", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
