"""The dashboard end to end on the local backend: a real client, a real embedded worker
(ImageMagick), real folders. Each test drives the app with Pilot and waits on conditions."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

from textual.notifications import Notify

from shared.config import Settings
from tui.client import Client
from tui.embedded import EmbeddedWorker
from tui.jobs import State
from tui.screens.quit_confirm import QuitScreen

from .helpers import (
    dashboard,
    job_by_name,
    png_bytes,
    put_file,
    run,
    state_of,
    wait_exit,
    wait_for,
    widget_text,
)


def test_a_file_dropped_in_input_goes_through_every_state_to_done(
        dash_settings: Settings) -> None:
    async def body() -> None:
        async with dashboard(dash_settings) as (app, pilot, messages):
            put_file(dash_settings.input, "cat.png", png_bytes(80, 60, "blue"))
            await wait_for(pilot, lambda: state_of(app, "cat.png") is State.DONE,
                           "cat.png to be done")
            job = job_by_name(app, "cat.png")
            assert job is not None and job.output_path is not None
            assert job.output_path == (dash_settings.output / "cat.png").resolve()
            assert job.output_path.stat().st_size > 0
            assert messages.states(job.row) == [
                State.WAITING, State.UPLOADING, State.QUEUED, State.PROCESSING,
                State.DOWNLOADING, State.DONE]
            # The table shows it: state, output name, a latency; no countdown once done.
            await wait_for(pilot, lambda: app.table.cell_text(job.row, "state")[0] == "done",
                           "the state cell to say done")
            assert app.table.cell_text(job.row, "output")[0] == "cat.png"
            assert app.table.cell_text(job.row, "left")[0] == ""
            assert app.table.cell_text(job.row, "latency")[0].endswith("s")
            # The details pane shows the job and, off the UI thread, a preview.
            await wait_for(pilot, lambda: "png 80×60" in widget_text(
                app.query_one("#preview-text")), "the preview to load")

    run(body())


def test_non_images_are_rejected_rows_and_special_files_are_logged(
        idle_settings: Settings) -> None:
    dash_settings = idle_settings

    async def body() -> None:
        async with dashboard(idle_settings) as (app, pilot, messages):
            put_file(dash_settings.input, "notes.txt", b"just some text\n")
            os.mkfifo(dash_settings.input / "pipe")
            (dash_settings.input / ".hidden.png").write_bytes(png_bytes())
            await wait_for(pilot, lambda: state_of(app, "notes.txt") is State.REJECTED,
                           "notes.txt to be rejected")
            job = job_by_name(app, "notes.txt")
            assert job is not None and "not a supported image" in job.reason
            assert job_by_name(app, "pipe") is None and job_by_name(app, ".hidden.png") is None

            def log_text() -> str:
                return "\n".join(app.log_pane.history)

            await wait_for(pilot, lambda: "skipped pipe: not a regular file" in log_text(),
                           "the FIFO to be logged as skipped")
            assert "skipped .hidden.png: hidden file" in log_text()
            notes = [m for m in messages if isinstance(m, Notify)]
            assert any("notes.txt" in n.notification.message for n in notes)

    run(body())


def test_a_job_without_worker_counts_down_turns_red_times_out_and_retry_gets_it_done(
        idle_settings: Settings) -> None:
    settings = replace(idle_settings, timeout=4.0)

    async def body() -> None:
        async with dashboard(settings) as (app, pilot, messages):
            put_file(settings.input, "late.png", png_bytes())
            await wait_for(pilot, lambda: state_of(app, "late.png") is State.QUEUED,
                           "late.png to be queued")
            job = job_by_name(app, "late.png")
            assert job is not None

            def red_while_running() -> bool:
                text, style = app.table.cell_text(job.row, "left")
                return "red" in style and text.endswith("s") and not job.final

            await wait_for(pilot, red_while_running, "the countdown cell to turn red")
            await wait_for(pilot, lambda: app.table.cell_text(job.row, "state")[0] ==
                           "timed out", "the table to show late.png timed out", timeout=15)
            assert job.reason == "no result within 4 s"
            assert any(isinstance(m, Notify) and "late.png" in m.notification.message
                       for m in messages)
            assert State.TIMED_OUT in messages.states(job.row)

            # Start a worker, then retry: the job gets a new request and deadline, and is done.
            worker = EmbeddedWorker(replace(settings, workers=1))
            worker.start()
            try:
                assert await asyncio.to_thread(worker.wait_ready, 30) and worker.error is None
                app.table.move_cursor(row=app.table.get_row_index(str(job.row)))
                await pilot.press("r")
                await wait_for(pilot, lambda: state_of(app, "late.png") is State.DONE,
                               "the retried job to be done")
                assert job.attempts == 2
                assert (settings.output / "late.png").is_file()
            finally:
                await asyncio.to_thread(worker.stop)

    run(body())


def test_a_failed_job_is_retried_after_the_file_is_fixed(dash_settings: Settings) -> None:
    async def body() -> None:
        async with dashboard(dash_settings) as (app, pilot, messages):
            # PNG magic, garbage after it: sniffed as PNG, fails to decode on the worker.
            put_file(dash_settings.input, "broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00junk" * 50)
            await wait_for(pilot, lambda: state_of(app, "broken.png") is State.FAILED,
                           "broken.png to fail")
            job = job_by_name(app, "broken.png")
            assert job is not None and job.reason
            await wait_for(pilot, lambda: app.table.selected_row() == job.row,
                           "the failed row to be selected")
            await wait_for(pilot, lambda: job.reason[:40] in " ".join(
                widget_text(app.query_one("#details-text")).split()),
                "the details pane to show the reason")
            (dash_settings.input / "broken.png").write_bytes(png_bytes(32, 32, "green"))
            app.table.move_cursor(row=app.table.get_row_index(str(job.row)))
            await pilot.press("r")
            await wait_for(pilot, lambda: state_of(app, "broken.png") is State.DONE,
                           "the retried job to be done")
            assert State.FAILED in messages.states(job.row)

    run(body())


def test_cancel_with_x(idle_settings: Settings) -> None:
    dash_settings = idle_settings

    async def body() -> None:
        async with dashboard(idle_settings) as (app, pilot, _):
            put_file(dash_settings.input, "wait.png", png_bytes())
            await wait_for(pilot, lambda: state_of(app, "wait.png") is State.QUEUED,
                           "wait.png to be queued")
            job = job_by_name(app, "wait.png")
            assert job is not None
            await wait_for(pilot, lambda: app.table.selected_row() == job.row,
                           "the row to be selected")
            await pilot.press("x")
            await wait_for(pilot, lambda: state_of(app, "wait.png") is State.CANCELLED,
                           "wait.png to be cancelled")
            assert job.reason == "cancelled by the user"
            await wait_for(pilot, lambda: app.table.cell_text(job.row, "state")[0] ==
                           "cancelled", "the table to show it")
            assert app.table.cell_text(job.row, "left")[0] == ""

    run(body())


def test_quit_with_jobs_in_flight_asks_then_a_restart_resumes_them_to_their_deadlines(
        idle_settings: Settings) -> None:
    first = idle_settings
    dash_settings = replace(idle_settings, workers=1)

    async def body() -> None:
        async with dashboard(first) as (app, pilot, _):
            for name in ("one.png", "two.png"):
                put_file(first.input, name, png_bytes(40, 30, "red" if name == "one.png"
                                                       else "yellow"))
            await wait_for(pilot, lambda: all(state_of(app, name) is State.QUEUED
                                              for name in ("one.png", "two.png")),
                           "both files to be queued")
            deadlines = {job.name: job.deadline for job in app.jobs.values()}
            rows = {job.name: job.row for job in app.jobs.values()}
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen),
                           "the quit confirmation")
            await pilot.press("n")
            await wait_for(pilot, lambda: not isinstance(app.screen, QuitScreen),
                           "the confirmation to close")
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen),
                           "the quit confirmation again")
            await pilot.press("y")
            await wait_exit(app)
        assert not (first.output / "one.png").exists()

        async with dashboard(dash_settings) as (app, pilot, _):
            # Resumed from the journal: same rows, same deadlines, counting down meanwhile.
            await wait_for(pilot, lambda: len(app.jobs) == 2, "the resumed jobs")
            for name, row in rows.items():
                assert app.jobs[row].deadline == deadlines[name]
            await wait_for(pilot, lambda: all(state_of(app, name) is State.DONE
                                              for name in rows), "both to be done")
            assert (dash_settings.output / "one.png").is_file()
            assert (dash_settings.output / "two.png").is_file()
            # The files still in input/ at start-up were recognised, not submitted again.
            assert sorted(app.jobs) == sorted(rows.values())
            assert app.client is not None
            assert sorted(app.client.jobs) == sorted(rows.values())

    run(body())


def test_two_clients_on_one_state_dir_get_only_their_own_results(
        dash_settings: Settings, workdir: Path) -> None:
    other = replace(dash_settings, input=workdir / "in-b", output=workdir / "out-b", workers=0)
    changes: list[str] = []

    async def body() -> None:
        async with dashboard(dash_settings) as (app, pilot, _):
            client_b = await asyncio.to_thread(
                Client, other, poll_wait=0.5, on_change=lambda job: changes.append(job.name))
            try:
                client_b.start()
                assert app.client is not None
                assert client_b.client_id != app.client.client_id
                assert client_b.reply_queue_name != app.client.reply_queue_name
                source_b = put_file(workdir / "elsewhere", "mine-b.png", png_bytes(20, 20))
                client_b.add_paths([source_b])
                put_file(dash_settings.input, "mine-a.png", png_bytes(30, 30, "green"))
                await wait_for(pilot, lambda: state_of(app, "mine-a.png") is State.DONE,
                               "A's job to be done")
                await wait_for(pilot, lambda: any(job.state is State.DONE
                                                  for job in client_b.snapshot()),
                               "B's job to be done")
                assert [job.name for job in app.jobs.values()] == ["mine-a.png"]
                assert [job.name for job in client_b.snapshot()] == ["mine-b.png"]
                assert set(changes) == {"mine-b.png"}
                assert sorted(p.name for p in dash_settings.output.iterdir()) == ["mine-a.png"]
                assert sorted(p.name for p in other.output.iterdir()) == ["mine-b.png"]
            finally:
                await asyncio.to_thread(client_b.close)

    run(body())
