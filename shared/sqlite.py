"""Opening SQLite files that several processes share (the local queue, the client journal).

Every connection uses WAL (readers never block the writer) and a busy timeout. Switching a
fresh file to WAL needs a moment alone with it, and SQLite answers "database is locked" at
once, without its busy handler, when two processes try together: opening retries that case.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Final

BUSY_TIMEOUT_SECONDS: Final = 30.0


def connect(path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """An autocommit, WAL-mode connection usable from any thread (callers serialise use)."""
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # with WAL: survives a killed process
            db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        except sqlite3.OperationalError as error:
            db.close()
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)  # another process is switching the file to WAL right now
            pause = min(0.1, pause * 2)
            continue
        return db
