"""The worker that imgtui hosts on the local backend, so one command does everything.

It is the same worker as ``imgserver`` (server.commands.build_worker), run on a background
thread with its own backend handle; ``--workers 0`` runs none, for use beside a separate
``imgserver`` on the same state dir.
"""

from __future__ import annotations

import logging
import threading

from shared.backends import open_backend
from shared.config import Settings
from shared.errors import ImgpipeError

log = logging.getLogger("imgtui")


class EmbeddedWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._thread: threading.Thread | None = None
        self._worker: object | None = None
        self.error: str | None = None
        self._ready = threading.Event()

    @property
    def enabled(self) -> bool:
        return self.settings.backend == "local" and self.settings.workers > 0

    def start(self) -> None:
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="imgpipe-embedded-worker",
                                        daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _run(self) -> None:
        # Imported here: the server (and ImageMagick detection) only when a worker is hosted.
        from server.commands import build_worker
        from server.engine import detect_engine

        try:
            engine = detect_engine()
            backend = open_backend(self.settings)
            worker, shipper = build_worker(self.settings, backend, engine,
                                           concurrency=self.settings.workers)
        except ImgpipeError as error:
            self.error = str(error)
            log.error("embedded worker cannot start: %s", error)
            self._ready.set()
            return
        self._worker = worker
        shipper.start()
        self._ready.set()
        try:
            worker.run()
        finally:
            worker.oplog.close()
            shipper.stop(timeout=5.0)
            backend.close()

    def stop(self, timeout: float = 10.0) -> None:
        worker = self._worker
        if worker is not None:
            worker.stop()  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(timeout)
