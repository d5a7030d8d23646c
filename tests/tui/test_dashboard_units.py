"""The dashboard's pure parts: path parsing, countdown colours, filter, settings file; and
the backend being unreachable at start (header says so, jobs wait, work resumes)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from shared.config import Settings, load_settings
from tui.app import matches
from tui.embedded import EmbeddedWorker
from tui.jobs import State
from tui.screens.path_prompt import parse_paths, split_existing
from tui.settings_file import config_path, save_settings, saved_values
from tui.widgets.cells import countdown_level, countdown_text, ellipsize, human_size

from .helpers import (
    dashboard,
    make_png,
    png_bytes,
    put_file,
    sample_job,
    state_of,
    wait_for,
)


def test_parse_paths_takes_every_shape_a_terminal_pastes(tmp_path: Path) -> None:
    spaced = make_png(tmp_path / "a b.png")
    plain = make_png(tmp_path / "plain.png")
    quoted = make_png(tmp_path / "it's.png")
    text = "\n".join([
        f'"{spaced}"',                                   # quoted, one per line
        f"file://{str(spaced).replace(' ', '%20')}",     # a URL, %-escaped (duplicate)
        f"{str(spaced).replace(' ', chr(92) + ' ')} {plain}",  # escaped, two on one line
        f"{quoted}",                                     # an apostrophe, unquoted
        "   ",
    ])
    assert parse_paths(text) == [spaced, plain, quoted]
    found, missing = split_existing(parse_paths(f"{plain} {tmp_path / 'nope.png'}"))
    assert found == [plain] and missing == [tmp_path / "nope.png"]
    assert parse_paths("~/x.png") == [Path.home() / "x.png"]
    assert parse_paths("'unbalanced") == [Path("'unbalanced")]


@pytest.mark.parametrize(("remaining", "timeout", "level"), [
    (50, 60, "ok"), (18.5, 60, "ok"), (18, 60, "amber"), (10, 60, "amber"), (6, 60, "red"),
    (1, 60, "red"), (3.5, 4, "amber"), (3, 4, "red"), (11, 20, "ok"), (10, 20, "amber"),
    (700, 3600, "amber"), (300, 3600, "red"),
])
def test_countdown_turns_amber_then_red(remaining: float, timeout: float, level: str) -> None:
    assert countdown_level(remaining, timeout) == level


def test_cell_texts() -> None:
    assert [countdown_text(x) for x in (-2, 0.2, 59, 61, 3725)] == ["0s", "1s", "59s",
                                                                   "1:01", "1h02"]
    assert [human_size(x) for x in (None, 999, 48_213, 5_000_000)] == ["", "999 B",
                                                                      "48.2 kB", "5.0 MB"]
    assert ellipsize("a-very-long-name.jpeg", 12) == "a-very….jpeg"
    assert ellipsize("no-extension-at-all", 10) == "no-ext…all"
    assert ellipsize("short.png", 12) == "short.png"


def test_filter_matches_names_and_states() -> None:
    job = sample_job(1, "Holiday Beach.jpg", State.TIMED_OUT)
    assert matches(job, "beach") and matches(job, "holi timed") and matches(job, "timed_out")
    assert not matches(job, "done") and not matches(job, "beach cat")


def test_saving_settings_keeps_comments_and_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "imgpipe.toml"
    path.write_text('# lab settings\nqueue = "lab-queue"  # shared with the workers\n'
                    'format = "png"\n', encoding="utf-8")
    settings = load_settings({}, cwd=tmp_path, env={}).with_values(format="webp", timeout=30,
                                                                   tag="")
    assert config_path(settings) == path
    save_settings(path, saved_values(settings))
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# lab settings\n")
    assert 'queue = "lab-queue"  # shared with the workers' in text
    again = load_settings({}, cwd=tmp_path, env={})
    assert (again.format, again.timeout, again.tag, again.queue) == ("webp", 30.0, "",
                                                                     "lab-queue")
    # A new file is created with just those keys.
    fresh = tmp_path / "new" / "imgpipe.toml"
    save_settings(fresh, saved_values(settings))
    assert load_settings({}, cwd=fresh.parent, env={}).format == "webp"
    # A file that is not TOML is refused, not overwritten.
    path.write_text("this is [not toml", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        save_settings(path, saved_values(settings))
    assert path.read_text(encoding="utf-8") == "this is [not toml"


def test_an_unreachable_backend_is_shown_jobs_wait_and_work_resumes(
        dash_settings: Settings) -> None:
    settings = replace(dash_settings, workers=0)
    # The local backend "unreachable": a folder squats where its queue database belongs.
    blocker = settings.state_dir / "queues.sqlite3"
    blocker.mkdir(parents=True)

    async def body() -> None:
        async with dashboard(settings) as (app, pilot, _):
            await wait_for(pilot, lambda: app.header.reachable is False, "unreachable")
            assert "local queue" in app.header.detail
            put_file(settings.input, "patient.png", png_bytes())
            await wait_for(pilot, lambda: state_of(app, "patient.png") is State.WAITING,
                           "the job to wait")
            blocker.rmdir()  # the backend comes back
            await wait_for(pilot, lambda: app.header.reachable is True, "reachable again")
            await wait_for(pilot, lambda: state_of(app, "patient.png") is State.QUEUED,
                           "the job to be sent")
            worker = EmbeddedWorker(replace(settings, workers=1))
            worker.start()
            try:
                await wait_for(pilot, lambda: state_of(app, "patient.png") is State.DONE,
                               "the job to be done")
            finally:
                await asyncio.to_thread(worker.stop)

    asyncio.run(body())
