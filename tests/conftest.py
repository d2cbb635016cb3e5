"""Fixtures shared by every test folder."""

import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator of this test's own, seeded from its id: the values a test draws never
    depend on which tests ran before it, or in which order."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
