"""Helpers for the dashboard tests: bounded waits, the app under test, a fake client.

No test sleeps to synchronise: ``wait_for`` pumps the app (``pilot.pause``) until a condition
holds, and fails with a description of what it waited for when the bound passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image
from textual.geometry import Region
from textual.message import Message
from textual.pilot import Pilot
from textual.widget import Widget

from shared.config import Settings
from tui.app import DashboardApp
from tui.client import Client, Status
from tui.jobs import FINAL, Job, State, TagSpec

#: Every wait in these tests is bounded by this (seconds) unless a test says otherwise.
WAIT: float = 30.0


def run(coro: object) -> None:
    """Run one Pilot test body to its end."""
    asyncio.run(coro)  # type: ignore[arg-type]


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], object], what: str,
                   timeout: float = WAIT) -> None:
    """Pump the app until ``predicate()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.05)


async def wait_exit(app: DashboardApp, timeout: float = WAIT) -> None:
    """Wait for the app to finish exiting (no pumping: its loop is stopping)."""
    deadline = time.monotonic() + timeout
    while app.return_code is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"the app did not exit within {timeout:g} s")
        await asyncio.sleep(0.05)


def widget_text(widget: Widget) -> str:
    """The text a widget shows on screen now, line by line."""
    region = Region(0, 0, widget.size.width, widget.size.height)
    return "\n".join(strip.text for strip in widget.render_lines(region))


def make_png(path: Path, width: int = 64, height: int = 48, color: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), color).save(path, format="PNG")
    return path


def put_file(folder: Path, name: str, data: bytes) -> Path:
    """Write a file into ``folder`` the way a user's copy would: a temp name, then a rename."""
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{name}.part"
    temp.write_bytes(data)
    target = folder / name
    temp.replace(target)
    return target


def png_bytes(width: int = 64, height: int = 48, color: str = "red") -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def init_backend(settings: Settings) -> None:
    """``imgserver init`` for the local backend: the request queue and buckets."""
    from server.provision import provision
    from shared.backends import open_backend

    with open_backend(settings) as backend:
        list(provision(backend, settings))


def fast_client(settings: Settings, **callbacks: Any) -> Client:
    """The real client with short long-polls, so that closing it is quick in tests."""
    return Client(settings, poll_wait=0.5, **callbacks)


def job_by_name(app: DashboardApp, name: str) -> Job | None:
    for job in app.jobs.values():
        if job.name == name:
            return job
    return None


def state_of(app: DashboardApp, name: str) -> State | None:
    """The state the dashboard shows for ``name`` (not the client's, which runs ahead)."""
    job = job_by_name(app, name)
    return None if job is None else app.shown_state(job.row)


class Recorder:
    """What a test saw: every message the app handled, and each row's states in order, as
    the client reported them (``on_change``, on its threads; repeats collapsed)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._states: dict[int, list[State]] = {}
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Message]:
        return iter(list(self.messages))

    def states(self, row: int) -> list[State]:
        with self._lock:
            return list(self._states.get(row, []))

    def wrap(self, factory: Callable[..., Any]) -> Callable[..., Any]:
        def make(settings: Settings, *, on_change: Callable[[Job], None],
                 **callbacks: Any) -> Any:
            def record(job: Job) -> None:
                state = job.state
                with self._lock:
                    seen = self._states.setdefault(job.row, [])
                    if not seen or seen[-1] is not state:
                        seen.append(state)
                on_change(job)

            return factory(settings, on_change=record, **callbacks)

        return make


@contextlib.asynccontextmanager
async def dashboard(settings: Settings, *, size: tuple[int, int] = (160, 48),
                    started: bool = True, **options: Any,
                    ) -> AsyncIterator[tuple[DashboardApp, Pilot[Any], Recorder]]:
    """Run the dashboard headless; always close its services afterwards."""
    recorder = Recorder()
    options["client_factory"] = recorder.wrap(options.get("client_factory", fast_client))
    app = DashboardApp(settings, **options)
    try:
        async with app.run_test(size=size, message_hook=recorder.messages.append) as pilot:
            if started:
                await wait_for(pilot, lambda: app.client is not None, "the client to start")
            yield app, pilot, recorder
    finally:
        await asyncio.to_thread(app.close_services)


# --- a fake client for snapshot and load tests: fixed jobs, no threads, no clock ------------

FIXED_NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def fixed_clock() -> float:
    return FIXED_NOW


@dataclass
class FakeClient:
    """Just enough of ``tui.client.Client`` for the dashboard; records what it is asked."""

    settings: Settings
    jobs: list[Job] = field(default_factory=list)
    on_change: Callable[[Job], None] = lambda job: None
    on_status: Callable[[Status], None] = lambda status: None
    client_id: str = "c0ffee00" * 4
    status: Status = field(default_factory=lambda: Status(True, "local state"))
    calls: list[tuple[str, object]] = field(default_factory=list)

    def start(self) -> None:
        self.calls.append(("start", None))

    def close(self) -> None:
        self.calls.append(("close", None))

    def snapshot(self) -> list[Job]:
        return list(self.jobs)

    def in_flight(self) -> list[Job]:
        return [job for job in self.jobs if not job.final]

    def add_paths(self, paths: Iterable[Path], *, origin: str = "added") -> None:
        self.calls.append(("add_paths", (list(paths), origin)))

    def cancel(self, row: int) -> bool:
        self.calls.append(("cancel", row))
        return True

    def retry(self, row: int) -> bool:
        self.calls.append(("retry", row))
        return True

    def clear_finished(self) -> list[int]:
        rows = [job.row for job in self.jobs if job.final]
        self.jobs = [job for job in self.jobs if not job.final]
        return rows


class NoWorker:
    enabled = False
    error: str | None = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def start(self) -> None:
        pass

    def wait_ready(self, timeout: float) -> bool:
        return True

    def stop(self, timeout: float = 10.0) -> None:
        pass


def fake_factory(jobs: list[Job]) -> Callable[..., FakeClient]:
    def make(settings: Settings, **callbacks: Any) -> FakeClient:
        return FakeClient(settings, list(jobs), **callbacks)

    return make


def sample_job(row: int, name: str, state: State, *, age: float = 10.0, timeout: float = 60.0,
               reason: str = "", progress: float = 0.0, size: int = 48_213,
               input_format: str | None = "jpeg", output_format: str = "png",
               done_in: float | None = None, output: Path | None = None) -> Job:
    """A job created ``age`` seconds before FIXED_NOW, with fixed ids and hashes."""
    created = FIXED_NOW - age
    job = Job(row=row, job_id=f"{row:032x}", source=Path("input") / name, name=name, size=size,
              sha256=f"{row:064x}", input_format=input_format, output_format=output_format,
              tag=TagSpec("processed by imgpipe"), timeout=timeout, state=state,
              reason=reason, created_at=created, deadline=created + timeout,
              progress=progress)
    if state not in (State.WAITING, State.UPLOADING, State.REJECTED):
        job.submitted_at = created + 0.25
    if state in (State.PROCESSING, State.DOWNLOADING, State.DONE, State.FAILED):
        job.worker_id = "worker-1:4242"
    if state in FINAL:
        job.finished_at = created + (done_in if done_in is not None else 1.5)
    if state is State.DONE:
        job.output_path = output or Path("output") / (Path(name).stem + ".png")
        job.output_sha256 = "ab" * 32
        job.output_bytes = 51_200
        job.width, job.height = 64, 48
        job.timings = {"queue_wait": 0.12, "download": 0.01, "convert": 0.85, "upload": 0.02,
                       "total": 1.0}
    return job


def sample_jobs() -> list[Job]:
    """One job in every state, as the snapshots show them."""
    return [
        sample_job(1, "holiday-beach.jpg", State.DONE, age=40, done_in=1.5),
        sample_job(2, "cat on the sofa.png", State.DONE, age=30, done_in=2.25,
                   input_format="png"),
        sample_job(3, "scan-0003.tiff", State.DOWNLOADING, age=8, progress=0.5,
                   input_format="tiff"),
        sample_job(4, "portrait.webp", State.PROCESSING, age=5, input_format="webp"),
        sample_job(5, "a-very-long-file-name-from-a-camera-2025-12-31-235959.jpg",
                   State.QUEUED, age=52),
        sample_job(6, "bird.gif", State.UPLOADING, age=1, progress=0.33, input_format="gif"),
        sample_job(7, "sunset.bmp", State.WAITING, age=57.5, input_format="bmp",
                   reason="waiting for the backend"),
        sample_job(8, "broken.png", State.FAILED, age=20, input_format="png",
                   reason="cannot decode the image (corrupt_input)"),
        sample_job(9, "slow.jpg", State.TIMED_OUT, age=70, reason="no result within 60 s"),
        sample_job(10, "notes.txt", State.REJECTED, age=15, input_format=None, size=13,
                   reason="not a supported image (jpeg, png, gif, webp, tiff, bmp)"),
        sample_job(11, "old.jpg", State.CANCELLED, age=25, reason="cancelled by the user"),
    ]


def with_rows(jobs: list[Job], start: int) -> list[Job]:
    return [replace(job, row=start + index) for index, job in enumerate(jobs)]
