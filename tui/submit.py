"""``imgtui submit FILE...``: submit, wait, download, print one line per job, exit.

Exit 0 only when every job is done. On a terminal it shows rich progress bars; otherwise it
prints plain lines as jobs finish, fit for scripts and logs.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from shared.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from shared.config import Settings
from tui.client import Client, Status
from tui.embedded import EmbeddedWorker
from tui.jobs import Job, State


def printable(path: object) -> str:
    """A path as one line: control characters (a newline in a name, say) shown escaped."""
    text = str(path)
    return "".join(c.encode("unicode_escape").decode() if not c.isprintable() and c != " "
                   else c for c in text)


def job_line(job: Job) -> str:
    if job.state is State.DONE:
        note = f" ({job.reason})" if job.reason else ""
        return f"{printable(job.source)}: done -> {printable(job.output_path)}{note}"
    return f"{printable(job.source)}: {job.state.label}: {job.reason}"


class _Tracker:
    """Collects job changes from the client's threads and wakes the main thread."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.status: Status | None = None

    def on_change(self, _job: Job) -> None:
        with self.changed:
            self.changed.notify_all()

    def on_status(self, status: Status) -> None:
        self.status = status
        with self.changed:
            self.changed.notify_all()


def run_submit(settings: Settings, files: Sequence[str], *, again: bool = False) -> int:
    tracker = _Tracker()
    worker = EmbeddedWorker(settings)
    worker.start()
    client = Client(settings, on_change=tracker.on_change, on_status=tracker.on_status)
    tty = sys.stdout.isatty()
    err = Console(stderr=True)
    try:
        client.start()
        # This run's files: new jobs, or the same files' unfinished jobs from a killed run.
        mine = {job.row for job in client.submit_paths((Path(name) for name in files),
                                                        again=again)}
        printed: set[int] = set()
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[state]}"), TimeRemainingColumn(),
                            disable=not tty)
        tasks: dict[int, TaskID] = {}
        with progress:
            while True:
                jobs = [job for row, job in client.jobs.items() if row in mine]
                for job in jobs:
                    if tty:
                        if job.row not in tasks:
                            tasks[job.row] = progress.add_task(job.name[:40], total=1.0,
                                                               state=job.state.label)
                        progress.update(tasks[job.row], completed=_fraction(job),
                                        state=job.state.label)
                    if job.final and job.row not in printed:
                        printed.add(job.row)
                        (progress.console.print if tty else print)(job_line(job))
                if all(job.final for job in jobs):
                    break
                if worker.error:
                    err.print(f"imgtui: embedded worker: {worker.error}", markup=False)
                    worker.error = None
                with tracker.changed:
                    tracker.changed.wait(0.5)
        jobs = [job for row, job in client.jobs.items() if row in mine]
        return EXIT_OK if all(job.state is State.DONE for job in jobs) else EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        client.close()
        worker.stop()


def _fraction(job: Job) -> float:
    steps = {State.WAITING: 0.0, State.UPLOADING: 0.1 + 0.2 * job.progress, State.QUEUED: 0.3,
             State.PROCESSING: 0.5, State.DOWNLOADING: 0.7 + 0.3 * job.progress}
    return 1.0 if job.final else steps.get(job.state, 0.0)

