"""``s``: output format, tag text and options, timeout — for new jobs, saved to imgpipe.toml.

Values are validated by ``Settings.with_values`` (the same rules as the file, the environment
and the flags); a ``ConfigError`` is shown inline and the screen stays open. The screen only
returns the new settings; the app applies them and saves them on a thread.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from shared.config import Settings
from shared.errors import ConfigError
from shared.formats import OUTPUT_FORMATS


class SettingsScreen(ModalScreen[Settings | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, settings: Settings, path_text: str) -> None:
        super().__init__()
        self.settings = settings
        self.path_text = path_text

    def compose(self) -> ComposeResult:
        s = self.settings
        with Vertical(id="settings-box", classes="dialog"):
            yield Static("Settings for new jobs", classes="title")
            with Horizontal(classes="field"):
                yield Label("Output format", classes="label")
                yield Select([(name, name) for name in OUTPUT_FORMATS], value=s.format,
                             allow_blank=False, id="set-format")
            with Horizontal(classes="field"):
                yield Label("Tag text", classes="label")
                yield Input(s.tag, placeholder="empty: no tag", id="set-tag")
            with Horizontal(classes="field"):
                yield Label("Tag placement", classes="label")
                yield Select([("tiled over the image", "tile"), ("in a corner", "corner")],
                             value=s.tag_mode, allow_blank=False, id="set-tag-mode")
            with Horizontal(classes="field"):
                yield Label("Tag size (pt)", classes="label")
                yield Input(str(s.tag_size), id="set-tag-size")
            with Horizontal(classes="field"):
                yield Label("Tag colour", classes="label")
                yield Input(s.tag_color, placeholder="black, #ff0000", id="set-tag-color")
            with Horizontal(classes="field"):
                yield Label("Timeout (s)", classes="label")
                yield Input(f"{s.timeout:g}", id="set-timeout")
            yield Static("", id="settings-error", classes="error")
            yield Static(f"Saved to {self.path_text}", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="settings-save")
                yield Button("Cancel (esc)", id="settings-cancel")

    def on_mount(self) -> None:
        self.query_one("#set-format", Select).focus()

    def values(self) -> dict[str, str]:
        def text(widget_id: str) -> str:
            return self.query_one(widget_id, Input).value

        return {
            "format": str(self.query_one("#set-format", Select).value),
            "tag": text("#set-tag"),
            "tag_mode": str(self.query_one("#set-tag-mode", Select).value),
            "tag_size": text("#set-tag-size").strip(),
            "tag_color": text("#set-tag-color").strip(),
            "timeout": text("#set-timeout").strip(),
        }

    def action_save(self) -> None:
        try:
            settings = self.settings.with_values(**self.values())
        except ConfigError as error:
            self.query_one("#settings-error", Static).update(str(error))
            return
        self.dismiss(settings)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "settings-save":
            self.action_save()
        else:
            self.action_cancel()
