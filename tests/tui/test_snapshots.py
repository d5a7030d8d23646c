"""Snapshots of the main screen, the details pane and the settings screen.

Deterministic by construction: a fake client holds fixed jobs (fixed ids, hashes and times),
the app's clock is frozen (so countdowns, latencies and throughput never move), there is no
worker and no intake, paths are relative, and the preview uses the half-block renderer
(textual-image would otherwise pick one by the terminal the tests run in).

Update after an intended change with ``uv run pytest tests/tui/test_snapshots.py
--snapshot-update`` and look at the SVGs in tests/tui/__snapshots__/ before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from textual.pilot import Pilot
from textual_image.widget import HalfcellImage

import tui.widgets.preview
from shared.config import Settings
from tui.app import DashboardApp
from tui.screens.settings import SettingsScreen

from .helpers import NoWorker, fake_factory, fixed_clock, sample_jobs, wait_for, widget_text

SIZE = (160, 48)
SnapCompare = Callable[..., bool]


@pytest.fixture
def sample_app(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> DashboardApp:
    monkeypatch.setattr(tui.widgets.preview, "ImageWidget", HalfcellImage)
    # The output of "cat on the sofa.png" (row 2): a fixed gradient, 64x48 like its job says.
    output = workdir / "output"
    output.mkdir()
    image = Image.new("RGB", (64, 48))
    image.putdata([(x * 4, y * 5, 160) for y in range(48) for x in range(64)])
    image.save(output / "cat on the sofa.png")
    settings = Settings(state_dir=Path("state"), input=Path("input"), output=Path("output"),
                        workers=0)
    return DashboardApp(settings, client_factory=fake_factory(sample_jobs()),
                        worker_factory=NoWorker, intake=False, clock=fixed_clock,
                        cwd=Path("."))


async def _loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, DashboardApp)
    await wait_for(pilot, lambda: app.table.row_count == len(sample_jobs())
                   and app.header.worker != "", "the sample jobs and the header")
    await wait_for(pilot, lambda: "loading" not in widget_text(app.details.preview.caption),
                   "the preview to settle")


def test_main_screen(snap_compare: SnapCompare, sample_app: DashboardApp) -> None:
    assert snap_compare(sample_app, terminal_size=SIZE, run_before=_loaded)


def test_details_pane_with_preview(snap_compare: SnapCompare,
                                   sample_app: DashboardApp) -> None:
    async def select_the_cat(pilot: Pilot[Any]) -> None:
        await _loaded(pilot)
        await pilot.press("down")
        app = pilot.app
        assert isinstance(app, DashboardApp)
        await wait_for(pilot, lambda: "png 64×48" in widget_text(app.details.preview.caption),
                       "the preview of the cat")

    assert snap_compare(sample_app, terminal_size=SIZE, run_before=select_the_cat)


def test_settings_screen(snap_compare: SnapCompare, sample_app: DashboardApp) -> None:
    async def open_settings(pilot: Pilot[Any]) -> None:
        await _loaded(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen),
                       "the settings screen")

    assert snap_compare(sample_app, terminal_size=SIZE, run_before=open_settings)
