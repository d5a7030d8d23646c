"""``q`` with jobs in flight: ask before quitting (they resume on the next start)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class QuitScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Quit"),
        Binding("n,escape", "answer(False)", "Stay"),
    ]

    def __init__(self, in_flight: int) -> None:
        super().__init__()
        self.in_flight = in_flight

    def compose(self) -> ComposeResult:
        jobs = "1 job is" if self.in_flight == 1 else f"{self.in_flight} jobs are"
        with Vertical(id="quit-box", classes="dialog"):
            yield Static(f"{jobs} still in flight.", classes="title")
            yield Static("They stay in the journal and resume, with their deadlines, the next "
                         "time imgtui starts on this state dir. Quit now?")
            with Horizontal(classes="buttons"):
                yield Button("Quit (y)", variant="error", id="quit-yes")
                yield Button("Stay (n)", variant="primary", id="quit-no")

    def on_mount(self) -> None:
        self.query_one("#quit-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "quit-yes")

    def action_answer(self, quit_now: bool) -> None:
        self.dismiss(quit_now)
