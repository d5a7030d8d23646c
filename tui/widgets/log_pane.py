"""The log pane (toggled with ``l``): skipped files, failures, worker and client messages."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from rich.text import Text
from textual.widgets import RichLog

LEVEL_STYLES: Final = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


class LogPane(RichLog):
    def __init__(self, *, id: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(id=id, max_lines=2000, wrap=True, markup=False, highlight=False)
        self.clock = clock
        #: The plain text of recent lines (RichLog renders lazily while hidden).
        self.history: deque[str] = deque(maxlen=2000)

    def add(self, text: str, level: str = "info") -> None:
        self.history.append(text)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
        line = Text()
        line.append(f"{stamp} ", style="dim")
        line.append(text, style=LEVEL_STYLES.get(level, ""))
        self.write(line)


class LogForwarder(logging.Handler):
    """A logging handler that hands records to ``post`` (thread-safe ``post_message``)."""

    def __init__(self, post: Callable[[str, str], None], level: int = logging.INFO) -> None:
        super().__init__(level)
        self.post = post

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f": {record.exc_info[1]!r}"
            self.post(f"{record.name}: {text}", record.levelname.lower())
        except Exception:  # a log line must never take anything down
            self.handleError(record)
