"""``a``: type or paste paths of files to convert; and the parsing shared with pastes.

Terminals turn a drag-and-drop of files into a paste of their paths, in one of several shapes:
one per line, space-separated with backslash-escaped spaces, quoted, or as ``file://`` URLs
with %-escapes. ``parse_paths`` accepts all of them.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlparse

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

_ESCAPE = re.compile(r"\\(.)")


def _clean(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        token = token[1:-1]
    if token.lower().startswith("file://"):
        url = urlparse(token)
        token = unquote(url.path)
    return os.path.expanduser(token)


def _exists(text: str) -> bool:
    try:
        return os.path.lexists(text)
    except (OSError, ValueError):
        return False


def _parse_line(line: str) -> list[str]:
    whole = _clean(line)
    if _exists(whole):
        return [whole]
    unescaped = _ESCAPE.sub(r"\1", whole)
    if _exists(unescaped):
        return [unescaped]
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError:  # unbalanced quotes: take the line as one name
        return [unescaped]
    return [_clean(token) for token in tokens if token.strip()]


def parse_paths(text: str) -> list[Path]:
    """The file paths in pasted or typed ``text``, in order, without duplicates.

    Touches the disk (existence checks decide between "one name with spaces" and "several
    names"): call it from a thread worker.
    """
    seen: dict[str, None] = {}
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.strip():
            for name in _parse_line(line.strip()):
                if name and "\x00" not in name:
                    seen.setdefault(name, None)
    return [Path(name) for name in seen]


def split_existing(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(paths that exist, paths that do not). Blocking: call from a thread worker."""
    found = [path for path in paths if _exists(str(path))]
    return found, [path for path in paths if path not in found]


class PathInput(Input):
    """An input that takes a multi-line paste (Input keeps only the first line)."""

    def _on_paste(self, event: events.Paste) -> None:
        lines = [line.strip() for line in event.text.splitlines() if line.strip()]
        if len(lines) > 1:
            self.insert_text_at_cursor(" ".join(shlex.quote(_clean(line)) for line in lines))
            event.stop()
            return
        super()._on_paste(event)


class PathPrompt(ModalScreen[list[Path] | None]):
    """Dismisses with the paths to submit, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    class Checked(Message):
        def __init__(self, found: list[Path], missing: list[Path]) -> None:
            super().__init__()
            self.found = found
            self.missing = missing

    def compose(self) -> ComposeResult:
        with Vertical(id="path-box", classes="dialog"):
            yield Static("Add files", classes="title")
            yield Static("Paths of images to convert, separated by spaces (quote or escape "
                         "spaces in names). Enter submits, Esc cancels.", classes="hint")
            yield PathInput(placeholder="~/Pictures/cat.jpg 'holiday 1.png'", id="path-input")
            yield Static("", id="path-error", classes="error")

    def on_mount(self) -> None:
        self.query_one(PathInput).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.dismiss(None)
            return
        self._check(event.value)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _check(self, text: str) -> None:
        found, missing = split_existing(parse_paths(text))
        self.post_message(self.Checked(found, missing))

    def on_path_prompt_checked(self, message: PathPrompt.Checked) -> None:
        if message.missing:
            names = ", ".join(str(path) for path in message.missing[:3])
            more = f" and {len(message.missing) - 3} more" if len(message.missing) > 3 else ""
            self.query_one("#path-error", Static).update(f"No such file: {names}{more}")
            return
        if not message.found:
            self.query_one("#path-error", Static).update("No path given")
            return
        self.dismiss(message.found)

    def action_cancel(self) -> None:
        self.dismiss(None)
