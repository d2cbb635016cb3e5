"""tape.config.keep_freed_memory: the glibc malloc setting, in a process of its own."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_keep_freed_memory_takes_effect_with_glibc() -> None:
    code = "import tape; print(tape.config.keep_freed_memory())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[-1] == "True"


def test_keep_freed_memory_is_a_no_op_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import tape

    monkeypatch.setattr(sys, "platform", "darwin")
    assert tape.config.keep_freed_memory() is False
