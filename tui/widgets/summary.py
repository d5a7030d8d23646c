"""The summary line: jobs per state, throughput over the last minutes, median latency."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Final

from rich.text import Text
from textual.widgets import Static

from tui.jobs import Job, State
from tui.widgets.cells import STATE_STYLES, seconds_text

#: Throughput is measured over this many seconds (less while the dashboard is younger).
THROUGHPUT_WINDOW: Final = 300.0
#: Median latency over the most recent this many finished jobs.
LATENCY_SAMPLE: Final = 200


def summarize(jobs: Iterable[Job], now: float, started_at: float,
              filter_text: str = "", shown: int | None = None) -> Text:
    """"11 jobs · 2.0/min · median 1.25s │ waiting 1  queued 3 …" (metrics first: the counts
    may be cut on a narrow terminal)."""
    jobs = list(jobs)
    counts = Counter(job.state for job in jobs)
    span = min(THROUGHPUT_WINDOW, max(60.0, now - started_at))
    done = [job for job in jobs if job.state is State.DONE and job.finished_at is not None]
    recent = sum(1 for job in done if job.finished_at is not None
                 and job.finished_at >= now - span)
    latencies = [job.latency for job in sorted(done, key=lambda j: j.finished_at or 0.0)
                 [-LATENCY_SAMPLE:] if job.latency is not None]
    median = statistics.median(latencies) if latencies else None
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{len(jobs)} job{'' if len(jobs) == 1 else 's'}", style="bold")
    text.append(f" · {recent / (span / 60):.1f} done/min · median latency "
                f"{seconds_text(median) or '—'}")
    if filter_text:
        text.append(f" · filter “{filter_text}”: {shown} shown", style="bold yellow")
    text.append(" │", style="dim")
    for state in State:
        if counts[state]:
            text.append("  ")
            text.append(f"{state.label} {counts[state]}", style=STATE_STYLES[state])
    return text


class SummaryLine(Static):
    """A one-line Static the app rewrites on each tick (only when the text changed)."""

    def show(self, text: Text) -> None:
        if getattr(self, "_last_plain", None) != text.plain:
            self._last_plain = text.plain
            self.update(text)
