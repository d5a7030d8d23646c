"""Ships rotated op-log files from the outbox to the log bucket, in the background.

A file is deleted locally only after its upload is confirmed; a failed upload is retried with
backoff, and files left by an earlier run are shipped at start. The key is built from the file
name (host, UTC timestamp, pid, sequence), so two shippers racing on one file write the same
object: a record is never duplicated in the bucket. Uploads never block job processing: the
log writer only drops a file into the outbox and wakes this thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from shared.errors import ImgpipeError
from shared.keys import LOG_PREFIX
from shared.ports import ObjectStore

log = logging.getLogger("imgserver")

RETRY_MIN_SECONDS: Final = 1.0
RETRY_MAX_SECONDS: Final = 300.0


def log_key(host: str, file_name: str) -> str:
    """``oplog/<host>/<file name>``: the file name already carries the UTC timestamp."""
    return f"{LOG_PREFIX}{host}/{file_name}"


class Shipper:
    def __init__(self, outbox: Path, store: Callable[[], ObjectStore], host: str) -> None:
        self.outbox = outbox
        self._store = store
        self.host = host
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.shipped = 0
        self.failures = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="imgpipe-shipper", daemon=True)
        self._thread.start()
        self._wake.set()  # ship what an earlier run left behind

    def notify(self, _rotated: Path | None = None) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """One last attempt to ship everything, bounded by ``timeout``."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def pending(self) -> list[Path]:
        return sorted(self.outbox.glob("*.jsonl"))

    def ship_once(self) -> bool:
        """Upload every pending file; True when the outbox is empty afterwards."""
        for path in self.pending():
            try:
                self._store().put_file(log_key(self.host, path.name), path)
            except (ImgpipeError, OSError) as error:
                if not path.exists():
                    continue  # another shipper on this state dir took it

                self.failures += 1
                log.warning("cannot ship op log %s: %s (will retry)", path.name, error)
                return False
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self.shipped += 1
        return True

    def _run(self) -> None:
        delay = RETRY_MIN_SECONDS
        while True:
            self._wake.wait()
            self._wake.clear()
            if self.ship_once():
                delay = RETRY_MIN_SECONDS
            else:
                if self._stop.is_set():
                    return
                self._wake.wait(delay)
                self._wake.set()
                delay = min(RETRY_MAX_SECONDS, delay * 2)
            if self._stop.is_set():
                return
