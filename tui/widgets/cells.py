"""How a job looks in text: sizes, countdowns and their colours, states, progress bars.

Pure functions of a job and a time, shared by the table, the details pane and the summary, so
that they are trivially testable and the table can compare cells as plain values.
"""

from __future__ import annotations

import math
from typing import Final

from tui.jobs import Job, State

#: A rendered cell: its text and its Rich style (compared as a pair to skip no-op updates).
Cell = tuple[str, str]

STATE_STYLES: Final[dict[State, str]] = {
    State.WAITING: "dim",
    State.UPLOADING: "cyan",
    State.QUEUED: "blue",
    State.PROCESSING: "magenta",
    State.DOWNLOADING: "cyan",
    State.DONE: "green",
    State.FAILED: "bold red",
    State.EXPIRED: "red",
    State.TIMED_OUT: "red",
    State.CANCELLED: "yellow",
    State.REJECTED: "yellow",
}
#: Final states that are failures the user hears about.
FAILURES: Final = frozenset({State.FAILED, State.EXPIRED, State.TIMED_OUT, State.REJECTED})

COUNTDOWN_STYLES: Final = {"ok": "", "amber": "bold #ffaf00", "red": "bold red"}
BAR_WIDTH: Final = 6


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


def ellipsize(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` cells by cutting its middle (keeps the extension)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    dot = text.rfind(".")
    suffix = len(text) - dot if dot > 0 and len(text) - dot <= 6 else 0
    tail = min(max(1, suffix, (width - 1) // 3), width // 2)
    return text[: width - 1 - tail] + "…" + text[-tail:]


def countdown_level(remaining: float, timeout: float) -> str:
    """"red" under 10 % of the timeout or 3 s, "amber" under 30 % or 10 s, else "ok"."""
    if remaining <= max(0.1 * timeout, 3.0):
        return "red"
    if remaining <= max(0.3 * timeout, 10.0):
        return "amber"
    return "ok"


def countdown_text(remaining: float) -> str:
    seconds = max(0, math.ceil(remaining))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def countdown_cell(job: Job, now: float) -> Cell:
    remaining = job.remaining(now)
    if remaining is None:
        return ("", "")
    level = countdown_level(remaining, job.timeout)
    return (countdown_text(remaining), COUNTDOWN_STYLES[level])


def seconds_text(value: float | None) -> str:
    if value is None:
        return ""
    if value < 10:
        return f"{value:.2f}s"
    if value < 100:
        return f"{value:.1f}s"
    return f"{value:.0f}s"


def progress_cell(job: Job) -> Cell:
    if job.state in (State.UPLOADING, State.DOWNLOADING):
        done = max(0.0, min(1.0, job.progress))
        filled = round(done * BAR_WIDTH)
        return ("█" * filled + "░" * (BAR_WIDTH - filled) + f" {done * 100:3.0f}%", "cyan")
    if job.state is State.DONE:
        return ("█" * BAR_WIDTH + " 100%", "green")
    return ("", "")


def formats_text(job: Job) -> str:
    return f"{job.input_format or '?'} → {job.output_format}"


def state_cell(job: Job) -> Cell:
    label = job.state.label
    if job.state is State.WAITING and job.reason:
        label = "waiting…"
    return (label, STATE_STYLES.get(job.state, ""))
