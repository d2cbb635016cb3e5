"""The examples in optim.search's docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

MODULES = ["optim.search", "optim.search.spaces", "optim.search.codec", "optim.search.journal",
           "optim.search.storage", "optim.search.study", "optim.search.runner",
           "optim.search.workers", "optim.search.report", "optim.search.retest",
           "optim.search.trials", "optim.search.checks", "optim.search.execution",
           "optim.search.population_objective", "optim.search.session",
           "optim.search.boxes", "optim.search.pruners", "optim.search.halving",
           "optim.search.importance"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), extraglobs={"np": np},
                             optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
