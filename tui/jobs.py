"""A job as the client sees it: its file, its settings, and where it is in its life.

waiting → uploading → queued → processing → downloading → done,
or failed | expired | timed_out | cancelled | rejected, each final state with a reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final


class State(StrEnum):
    WAITING = "waiting"
    UPLOADING = "uploading"
    QUEUED = "queued"
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"
    TIMED_OUT = "timed out"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self in FINAL

    @property
    def label(self) -> str:
        return self.value


FINAL: Final = frozenset({State.DONE, State.FAILED, State.EXPIRED, State.TIMED_OUT,
                          State.CANCELLED, State.REJECTED})
#: States in which the request is with a worker (or on its way) and a reply is awaited.
AWAITING_REPLY: Final = frozenset({State.QUEUED, State.PROCESSING})
#: Final states from which ``retry`` makes sense.
RETRYABLE: Final = frozenset({State.FAILED, State.EXPIRED, State.TIMED_OUT, State.CANCELLED})


@dataclass
class TagSpec:
    text: str
    mode: str = "tile"
    size: int = 20
    color: str = "black"


@dataclass
class Job:
    """One image's trip through the pipeline. ``row`` is stable; ``job_id`` changes on retry."""

    row: int
    job_id: str
    source: Path
    name: str
    size: int
    sha256: str
    input_format: str | None
    output_format: str
    tag: TagSpec | None
    timeout: float
    state: State = State.WAITING
    reason: str = ""
    created_at: float = field(default_factory=time.time)
    submitted_at: float | None = None
    deadline: float | None = None
    finished_at: float | None = None
    output_path: Path | None = None
    output_sha256: str | None = None
    output_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    worker_id: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    progress: float = 0.0  # 0..1 within the current transfer (upload or download)
    attempts: int = 1

    @property
    def final(self) -> bool:
        return self.state.final

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds until the deadline (None before submission or once final)."""
        if self.deadline is None or self.final:
            return None
        return self.deadline - (time.time() if now is None else now)

    @property
    def latency(self) -> float | None:
        """Seconds from submission to the finished file, once done."""
        if self.submitted_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.submitted_at)

    def settings_key(self) -> str:
        return settings_key(self.output_format, self.tag)


def settings_key(output_format: str, tag: TagSpec | None) -> str:
    """What, with the content hash, decides whether a file was already processed."""
    tag_part = "none" if tag is None else f"{tag.text}|{tag.mode}|{tag.size}|{tag.color}"
    return f"{output_format}|{tag_part}"
