"""``?``: what the keys do and what the states mean."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("a", "add files by path (or paste / drop paths onto the dashboard)"),
    ("r", "retry the selected job (failed, expired, timed out, cancelled)"),
    ("x", "cancel the selected job"),
    ("c", "clear finished rows (they stay processed in the journal)"),
    ("/", "filter by file name or state; Esc clears"),
    ("s", "settings: output format, tag, timeout (saved to imgpipe.toml)"),
    ("l", "show or hide the log"),
    ("ctrl+p", "command palette: every action by name"),
    ("q", "quit (asks when jobs are in flight; they resume on the next start)"),
)
FLOW = "waiting → uploading → queued → processing → downloading → done"
STATES = (
    ("failed", "the worker could not convert it (the reason says why)"),
    ("expired", "a worker got it after its deadline"),
    ("timed out", "no result before the deadline; the request was withdrawn"),
    ("cancelled", "you cancelled it"),
    ("rejected", "not a supported image, empty, or unreadable: never sent"),
    ("Left", "time to the deadline: amber under 30 % (or 10 s), red under 10 % (or 3 s)"),
)


def _grid(rows: tuple[tuple[str, str], ...]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True, width=10)
    table.add_column()
    for key, what in rows:
        table.add_row(key, what)
    return table


def help_text() -> Group:
    return Group(
        Text("Keys", style="bold underline"),
        _grid(KEYS),
        Text(""),
        Text("States", style="bold underline"),
        Text(FLOW),
        _grid(STATES),
    )


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Static(Text("imgpipe dashboard — help", style="bold"), classes="title")
            yield Static(help_text(), id="help-text")
            yield Static(Text("Esc closes", style="dim"))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
