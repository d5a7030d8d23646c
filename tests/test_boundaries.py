"""Package boundaries: the core imports no UI, the worker imports no UI.

Checked in a fresh interpreter so that nothing this test process imported hides a leak.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = {
    "shared": ("textual", "tui", "server"),
    "server": ("textual", "tui"),
}
MODULES = {
    "shared": ["shared.protocol", "shared.config", "shared.backends", "shared.backends.local",
               "shared.backends.aws", "shared.cli"],
    "server": ["server.cli", "server.commands"],
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden(package: str) -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {MODULES[package]!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = json.loads(done.stdout)
    for forbidden in FORBIDDEN[package]:
        leaks = [m for m in loaded if m == forbidden or m.startswith(forbidden + ".")]
        assert not leaks, f"{package} pulled in {leaks[:5]}"
