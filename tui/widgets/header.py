"""The top line: which backend, whether it answers, the embedded worker, this client's id."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatusHeader(Widget):
    """Set its attributes; it renders itself."""

    backend: reactive[str] = reactive("")
    reachable: reactive[bool | None] = reactive(None)
    detail: reactive[str] = reactive("connecting")
    worker: reactive[str] = reactive("")
    client_id: reactive[str] = reactive("")
    #: What new jobs get: format, tag, timeout.
    new_jobs: reactive[str] = reactive("")
    stopping: reactive[bool] = reactive(False)

    def render(self) -> Text:
        text = Text()
        text.append(" imgpipe ", style="bold reverse")
        text.append(f"  {self.backend}  ")
        if self.stopping:
            text.append("◌ stopping: intake, client, worker…", style="bold yellow")
        elif self.reachable is None:
            text.append("◌ connecting", style="dim")
        elif self.reachable:
            text.append("● reachable", style="bold green")
        else:
            text.append("✖ unreachable", style="bold red")
        if self.detail and not self.reachable and not self.stopping:
            text.append(f" ({self.detail})", style="red" if self.reachable is False else "dim")
        if self.worker:
            text.append(f"  ·  {self.worker}")
        if self.client_id:
            text.append(f"  ·  client {self.client_id[:8]}", style="dim")
        if self.new_jobs:
            text.append(f"  ·  {self.new_jobs}", style="italic")
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text
