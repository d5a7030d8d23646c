"""Fixtures for the dashboard tests: a private working dir with input/, output/ and a state dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.config import Settings


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's working directory (./imgpipe.toml lands here), with no IMGPIPE_* leaks."""
    for name in list(os.environ):
        if name.startswith("IMGPIPE_"):
            monkeypatch.delenv(name)
    # The embedded worker long-polls this long: short polls make stopping it quick.
    monkeypatch.setenv("IMGPIPE_POLL_WAIT", "0.5")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def dash_settings(workdir: Path) -> Settings:
    """Local backend, one embedded worker, the test's own folders."""
    return Settings(state_dir=workdir / "state", input=workdir / "input",
                    output=workdir / "output", workers=1, concurrency=1, timeout=60.0)


@pytest.fixture
def idle_settings(dash_settings: Settings) -> Settings:
    """No embedded worker, on a state dir that ``imgserver init`` has set up."""
    from dataclasses import replace

    from .helpers import init_backend

    settings = replace(dash_settings, workers=0)
    init_backend(settings)
    return settings
