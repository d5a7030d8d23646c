"""The operations log: one JSON object per line per job (the lab's ConvertImagesLog).

Several processes may share one log (workers on one state dir, the dashboard's embedded worker),
so every append and every rotation happens under an exclusive ``flock`` on a lock file beside
the log. Under it, a writer first checks that its open file is still the live one (another
process may have rotated it) and reopens if not, then appends the whole line with one
``write``. When the live file passes ``max_bytes`` it is renamed, still under the lock, into
the ``outbox`` folder: a record is therefore in exactly one file, never split across a rollover
and never in two. The shipper (server/shipper.py) uploads outbox files to the log bucket and
deletes each only once its upload is confirmed.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec

OUTBOX: Final = "outbox"

_encoder = msgspec.json.Encoder()


def host_name() -> str:
    """This machine's name, reduced to characters safe in keys and worker ids."""
    raw = socket.gethostname() or "host"
    return "".join(c if c.isalnum() or c in "-." else "-" for c in raw)[:63]


def utc_stamp() -> str:
    """A sortable UTC timestamp with microseconds, for rotated file names and log keys."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


class OpLog:
    """Append-only JSON-lines log with size-based rotation into an outbox folder."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        *,
        on_rotate: Callable[[Path], None] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.outbox = path.parent / OUTBOX
        self.on_rotate = on_rotate
        self._lock = threading.Lock()
        self._sequence = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(exist_ok=True)
        self._lock_file = (path.parent / (path.name + ".lock")).open("ab")
        self._file = path.open("ab", buffering=0)

    def write(self, record: dict[str, Any]) -> None:
        line = _encoder.encode(record) + b"\n"
        rotated = None
        with self._lock:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                self._reopen_if_rotated()
                self._file.write(line)  # unbuffered: one write(2) per record, whole lines
                if os.fstat(self._file.fileno()).st_size >= self.max_bytes:
                    rotated = self._rotate()
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        if rotated is not None and self.on_rotate is not None:
            self.on_rotate(rotated)

    def _reopen_if_rotated(self) -> None:
        try:
            live = os.stat(self.path).st_ino
        except FileNotFoundError:
            live = -1
        if live != os.fstat(self._file.fileno()).st_ino:
            self._file.close()
            self._file = self.path.open("ab", buffering=0)

    def _rotate(self) -> Path:
        self._sequence += 1
        target = self.outbox / f"{host_name()}-{utc_stamp()}-{os.getpid()}-{self._sequence}.jsonl"
        os.fsync(self._file.fileno())
        self.path.replace(target)
        self._file.close()
        self._file = self.path.open("ab", buffering=0)
        return target

    def flush(self) -> None:
        with self._lock:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                os.fsync(self._file.fileno())
                self._file.close()
            self._lock_file.close()
