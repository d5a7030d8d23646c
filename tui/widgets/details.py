"""The details pane: everything about the selected job, and a preview of its output."""

from __future__ import annotations

from typing import Any, Final

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from tui.jobs import Job, State
from tui.widgets.cells import (
    COUNTDOWN_STYLES,
    STATE_STYLES,
    countdown_level,
    countdown_text,
    human_size,
    seconds_text,
)
from tui.widgets.preview import Preview

#: Worker-side stages, in the order they happen.
STAGES: Final = ("queue_wait", "download", "convert", "upload", "total")


def _client_line(job: Job) -> Text:
    text = Text()
    if job.submitted_at is not None:
        text.append(f"sent +{seconds_text(max(0.0, job.submitted_at - job.created_at))}")
    if job.finished_at is not None:
        text.append(("  ·  " if text else "") +
                    f"finished +{seconds_text(max(0.0, job.finished_at - job.created_at))}")
    if job.latency is not None and job.state is State.DONE:
        text.append(("  ·  " if text else "") + f"latency {seconds_text(job.latency)}",
                    style="bold")
    return text or Text("—", style="dim")


def _stage_line(job: Job) -> Text:
    text = Text()
    for stage in STAGES:
        if stage in job.timings:
            text.append(("  ·  " if text else "") + f"{stage.replace('_', ' ')} "
                        f"{seconds_text(job.timings[stage])}")
    return text or Text("—", style="dim")


def details_table(job: Job, now: float) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True, width=9)
    table.add_column(overflow="fold")
    state = Text()
    state.append(job.state.label, style=STATE_STYLES.get(job.state, ""))
    if job.reason:
        state.append(f" — {job.reason}", style="italic")
    table.add_row("state", state)
    table.add_row("file", Text(str(job.source)))
    table.add_row("job", Text(f"{job.job_id}  (attempt {job.attempts})"))
    tag = "no tag" if job.tag is None else (
        f"tag “{job.tag.text}” ({job.tag.mode}, {job.tag.size} pt, {job.tag.color})")
    table.add_row("convert", Text(f"{human_size(job.size)} {job.input_format or '?'} → "
                                  f"{job.output_format}, {tag}"))
    table.add_row("sha256", Text(job.sha256, style="dim"))
    if job.output_path is not None or job.output_sha256:
        out = Text(str(job.output_path or ""))
        if job.width and job.height:
            out.append(f"  {job.width}×{job.height}, {human_size(job.output_bytes)}")
        table.add_row("output", out)
        table.add_row("out sha", Text(job.output_sha256 or "", style="dim"))
    table.add_row("worker", Text(job.worker_id or "—", style="" if job.worker_id else "dim"))
    table.add_row("stages", _stage_line(job))
    table.add_row("client", _client_line(job))
    remaining = job.remaining(now)
    if remaining is not None:
        level = countdown_level(remaining, job.timeout)
        table.add_row("left", Text(f"{countdown_text(remaining)} of {job.timeout:g} s",
                                   style=COUNTDOWN_STYLES[level]))
    return table


class DetailsPane(Horizontal):
    """The app calls ``show`` with the selected job (or None) and ``show_preview``."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # Direct references: updates may arrive while the app tears the DOM down.
        self.body = Static(Text("No job selected.", style="dim"), id="details-text")
        self.preview = Preview(id="preview")

    def compose(self) -> ComposeResult:
        yield self.body
        yield self.preview

    def show(self, job: Job | None, now: float) -> None:
        self.body.update(details_table(job, now) if job is not None
                         else Text("No job selected.", style="dim"))

    def show_preview(self, image: Any | None, text: str) -> None:
        self.preview.show(image, text)

    @staticmethod
    def wants_preview(job: Job | None) -> bool:
        return job is not None and job.state is State.DONE and job.output_path is not None
