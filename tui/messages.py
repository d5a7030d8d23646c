"""Messages the dashboard's threads and screens post to the app ("messages up").

Thread workers and the client's threads never touch widgets: they post one of these, which is
thread-safe, and the app's handlers set attributes on its children.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from shared.config import Settings
from tui.jobs import Job

if TYPE_CHECKING:
    from tui.client import Status


@dataclass
class StatusChanged(Message):
    """The backend became reachable or unreachable."""

    status: Status


@dataclass
class ServicesStarted(Message):
    """The client, worker and intake are running; ``jobs`` are those resumed from the journal."""

    client: Any  # a tui.client.Client, or a test double with the same methods
    jobs: list[Job]


@dataclass
class ServicesFailed(Message):
    """The client could not start (bad state dir, too many clients, ...)."""

    reason: str


@dataclass
class WorkerReport(Message):
    """What became of the embedded worker: running, or why not."""

    text: str
    ok: bool


@dataclass
class LogLine(Message):
    """A line for the log pane (skipped files, worker and client warnings)."""

    text: str
    level: str = "info"


@dataclass
class FileSkipped(Message):
    """The intake ignored a file in the input folder (hidden, temporary, FIFO, ...)."""

    path: Path
    reason: str


@dataclass
class RowsCleared(Message):
    """The client forgot these finished rows."""

    rows: list[int]


@dataclass
class Notice(Message):
    """Something to tell the user from a thread: a toast and a log line."""

    text: str
    severity: str = "information"  # information | warning | error


@dataclass
class PreviewReady(Message):
    """A thumbnail of a finished job's output, or the reason there is none."""

    row: int
    image: Any | None  # a PIL.Image.Image
    text: str


@dataclass
class SettingsSaved(Message):
    """Settings were applied; ``error`` says why they could not be written, if so."""

    settings: Settings
    path: Path
    error: str | None = None


@dataclass
class ServicesStopped(Message):
    """Intake, client and worker are closed: the app may exit."""

    notes: list[str] = field(default_factory=list)
