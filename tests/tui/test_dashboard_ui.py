"""The dashboard's interactions: paste, the path prompt, settings, filter, clear, help, quit,
and the command palette. Real client on the local backend; a worker only where a job must
finish."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.notifications import Notify
from textual.widgets import Input, Select

from shared.config import Settings, load_settings
from tui.jobs import State
from tui.screens.help import HelpScreen
from tui.screens.path_prompt import PathPrompt
from tui.screens.settings import SettingsScreen

from .helpers import (
    dashboard,
    job_by_name,
    make_png,
    png_bytes,
    put_file,
    run,
    state_of,
    wait_exit,
    wait_for,
    widget_text,
)


def test_pasting_paths_submits_them_quoted_escaped_and_as_urls(
        idle_settings: Settings, workdir: Path) -> None:
    pictures = workdir / "my pictures"
    a = make_png(pictures / "a b.png")
    c = make_png(pictures / "c d.png", color="blue")
    e = make_png(pictures / "e f.png", color="green")
    plain = make_png(pictures / "plain.png", color="white")
    escaped = str(e).replace(" ", "\\ ")
    text = (f"'{a}'\r\n"
            f"file://{str(c).replace(' ', '%20')}\n"
            f"{escaped} {str(plain).replace(' ', chr(92) + ' ')}\n"
            f"{workdir / 'missing.png'}\n")

    async def body() -> None:
        async with dashboard(idle_settings) as (app, pilot, messages):
            app.post_message(events.Paste(text))
            names = ("a b.png", "c d.png", "e f.png", "plain.png")
            await wait_for(pilot, lambda: all(state_of(app, name) is State.QUEUED
                                              for name in names), "the pasted files to queue")
            assert {job.source for job in app.jobs.values()} == {a, c, e, plain}
            await wait_for(pilot, lambda: any(
                isinstance(m, Notify) and "missing.png" in m.notification.message
                for m in messages), "a warning about the missing path")

    run(body())


def test_the_path_prompt_checks_paths_then_submits(idle_settings: Settings,
                                                  workdir: Path) -> None:
    image = make_png(workdir / "photos" / "dog.png")

    async def body() -> None:
        async with dashboard(idle_settings) as (app, pilot, _):
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, PathPrompt), "the prompt")
            prompt = app.screen
            box = prompt.query_one(Input)
            box.value = str(workdir / "photos" / "nope.png")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "No such file" in widget_text(
                prompt.query_one("#path-error")), "the prompt to say the file is missing")
            assert isinstance(app.screen, PathPrompt)
            box.value = f"'{image}'"
            await pilot.press("enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, PathPrompt),
                           "the prompt to close")
            await wait_for(pilot, lambda: state_of(app, "dog.png") is State.QUEUED,
                           "dog.png to be queued")
            # Esc cancels without submitting anything.
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, PathPrompt), "the prompt")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, PathPrompt),
                           "the prompt to close")
            assert len(app.jobs) == 1

    run(body())


def test_settings_are_validated_saved_with_comments_and_used_for_new_jobs(
        workdir: Path, dash_settings: Settings) -> None:
    toml = workdir / "imgpipe.toml"
    toml.write_text("# my lab's settings\nformat = \"png\"  # keep PNG for now\n"
                    "\n# the tag\ntag = \"lab 4\"\n", encoding="utf-8")
    loaded = load_settings({}, cwd=workdir, env={})
    assert loaded.config_file == toml
    settings = loaded.with_values(state_dir=str(dash_settings.state_dir),
                                  input=str(dash_settings.input),
                                  output=str(dash_settings.output), workers=1)

    async def body() -> None:
        async with dashboard(settings) as (app, pilot, messages):
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen),
                           "the settings screen")
            screen = app.screen
            screen.query_one("#set-format", Select).value = "webp"
            screen.query_one("#set-timeout", Input).value = "soon"
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: "invalid timeout" in widget_text(
                screen.query_one("#settings-error")), "the error to show inline")
            assert isinstance(app.screen, SettingsScreen)
            screen.query_one("#set-timeout", Input).value = "45"
            screen.query_one("#set-tag", Input).value = "lab 5"
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen),
                           "the settings screen to close")
            await wait_for(pilot, lambda: any(
                isinstance(m, Notify) and "settings saved" in m.notification.message
                for m in messages), "the settings to be saved")
            text = toml.read_text(encoding="utf-8")
            assert "# my lab's settings" in text and "# keep PNG for now" in text
            assert "# the tag" in text
            saved = load_settings({}, cwd=workdir, env={})
            assert (saved.format, saved.tag, saved.timeout) == ("webp", "lab 5", 45.0)
            assert app.client is not None and app.client.settings.format == "webp"
            # New jobs use them.
            put_file(settings.input, "new.png", png_bytes())
            await wait_for(pilot, lambda: state_of(app, "new.png") is State.DONE,
                           "new.png to be done")
            job = job_by_name(app, "new.png")
            assert job is not None and job.output_format == "webp" and job.timeout == 45.0
            assert job.output_path is not None and job.output_path.suffix == ".webp"

    run(body())


def test_filter_by_name_or_state_then_clear_finished_rows(idle_settings: Settings) -> None:
    async def body() -> None:
        async with dashboard(idle_settings) as (app, pilot, _):
            put_file(idle_settings.input, "alpha.png", png_bytes(10, 10))
            put_file(idle_settings.input, "beta.png", png_bytes(11, 11))
            put_file(idle_settings.input, "readme.txt", b"hello\n")
            await wait_for(pilot, lambda: state_of(app, "alpha.png") is State.QUEUED
                           and state_of(app, "beta.png") is State.QUEUED
                           and state_of(app, "readme.txt") is State.REJECTED,
                           "two queued jobs and a rejected one")
            assert app.table.row_count == 3
            await pilot.press("slash")
            await wait_for(pilot, lambda: app.query_one("#filter", Input).has_focus,
                           "the filter box")
            await pilot.press("b", "e", "t")
            await wait_for(pilot, lambda: app.table.row_count == 1, "one row for 'bet'")
            assert app.table.shows(job_by_name(app, "beta.png").row)  # type: ignore[union-attr]
            readme = job_by_name(app, "readme.txt")
            assert readme is not None
            app.query_one("#filter", Input).value = "rejected"
            await wait_for(pilot, lambda: app.table.shows(readme.row), "the rejected row")
            assert app.table.row_count == 1
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.table.row_count == 3, "all rows again")
            assert app.table.has_focus
            # c clears finished rows only: the rejected one goes, the queued ones stay.
            await pilot.press("c")
            await wait_for(pilot, lambda: app.table.row_count == 2, "the finished row cleared")
            assert job_by_name(app, "readme.txt") is None
            assert {job.name for job in app.jobs.values()} == {"alpha.png", "beta.png"}

    run(body())


def test_help_palette_and_quit_without_jobs_in_flight(idle_settings: Settings) -> None:
    async def body() -> None:
        async with dashboard(idle_settings) as (app, pilot, _):
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
            assert "retry the selected job" in widget_text(app.screen.query_one("#help-text"))
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen),
                           "the help to close")
            titles = {command.title for command in app.get_system_commands(app.screen)}
            assert {"Retry job", "Cancel job", "Add files by path", "Settings", "Filter",
                    "Clear finished", "Toggle log", "Help", "Quit imgtui"} <= titles
            footer = " ".join(widget_text(key) for key in app.query("FooterKey"))
            for key in ("Retry", "Cancel", "Add", "Settings", "Filter", "Clear", "Log",
                        "Help", "Quit"):
                assert key in footer
            await pilot.press("l")
            await wait_for(pilot, lambda: app.log_pane.display, "the log pane")
            await pilot.press("l")
            await wait_for(pilot, lambda: not app.log_pane.display, "the log pane hidden")
            await pilot.press("q")  # nothing in flight: no question
            await wait_exit(app)
        assert app.return_code == 0

    run(body())
