"""The bodies of imgserver's subcommands: ``run`` (the worker), ``init`` and ``check``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from server.check import Item, check_backend
from server.engine import Engine, check_policy, detect_engine
from server.job import JobContext
from server.oplog import OpLog, host_name
from server.provision import provision, request_queue_spec
from server.shipper import Shipper
from server.worker import ReplyQueues, Worker, default_work_root, worker_id
from shared import keys
from shared.backends import open_backend
from shared.cli import EXIT_BACKEND, EXIT_FAILED, EXIT_OK
from shared.config import Settings
from shared.errors import ImgpipeError, NotFound
from shared.ports import Backend

log = logging.getLogger("imgserver")

#: Seconds in-flight jobs get to finish after the first SIGTERM/SIGINT.
GRACE_SECONDS = 30.0


def dispatch(command: str, settings: Settings, args: argparse.Namespace) -> int:
    _configure_logging()
    if command == "init":
        return init(settings)
    if command == "check":
        return check(settings)
    return run(settings, once=bool(getattr(args, "once", False)))


def _configure_logging() -> None:
    level = os.environ.get("IMGPIPE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s" if sys.stderr.isatty()
        else "%(levelname)s %(message)s",  # journald adds its own timestamps
    )
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def init(settings: Settings) -> int:
    with open_backend(settings) as backend:
        for line in provision(backend, settings):
            print(line.render())
    return EXIT_OK


def check(settings: Settings) -> int:
    items: list[Item] = []
    try:
        backend = open_backend(settings)
    except ImgpipeError as error:
        items.append(Item("backend reachable", False, str(error)))
        backend = None
    if backend is not None:
        with backend:
            items += check_backend(backend, settings.queue)
    try:
        engine = detect_engine()
    except ImgpipeError as error:
        items.append(Item("ImageMagick", False, str(error)))
    else:
        items.append(Item("ImageMagick", True, f"{engine.version} ({' '.join(engine.argv0)})"))
        active, detail = check_policy(engine)
        items.append(Item("security policy", active, detail))
        items.append(Item("output formats", bool(engine.writable),
                          ", ".join(sorted(engine.writable)) or "none writable"))
    for item in items:
        print(item.render())
    return EXIT_OK if all(item.ok for item in items) else EXIT_FAILED


def build_worker(settings: Settings, backend: Backend, engine: Engine, *, once: bool = False,
                 concurrency: int | None = None) -> tuple[Worker, Shipper]:
    """A worker and its log shipper, wired to ``backend`` (used by imgtui's embedded worker)."""
    if backend.name == "local":
        # Nothing to provision on a local backend but a folder and a table: just do it.
        provision(backend, settings)
    try:
        queue = backend.queue(settings.queue)
    except NotFound:
        raise NotFound(f"request queue {settings.queue} does not exist: run 'imgserver init'"
                       ) from None
    try:
        dead_letter = backend.queue(keys.dead_letter_name(settings.queue))
    except NotFound:
        dead_letter = None
    host = host_name()
    shipper = Shipper(settings.op_log_path.parent / "outbox",
                      lambda: backend.store(backend.log_bucket), host)
    oplog = OpLog(settings.op_log_path, settings.log_max_bytes, on_rotate=shipper.notify)
    context = JobContext(
        backend=backend, store=backend.store(backend.data_bucket), engine=engine,
        worker_id=worker_id(), request_queue=settings.queue,
        convert_timeout=settings.convert_timeout, work_root=default_work_root(),
        reply_queue=ReplyQueues(backend), dead_letter=dead_letter,
    )
    worker = Worker(backend, queue, context, oplog,
                    concurrency=concurrency or settings.concurrency,
                    visibility_timeout=request_queue_spec(settings).visibility_timeout,
                    grace=GRACE_SECONDS, once=once,
                    poll_wait=poll_wait(backend))
    return worker, shipper


def poll_wait(backend: Backend) -> float:
    """Seconds per long poll: SQS bills per request, so long there; a local wait costs nothing
    but delays a stop by as much, so short there."""
    default = 10.0 if backend.name == "aws" else 1.0
    return float(os.environ.get("IMGPIPE_POLL_WAIT", default))


def run(settings: Settings, *, once: bool) -> int:
    engine = detect_engine()
    with open_backend(settings) as backend:
        worker, shipper = build_worker(settings, backend, engine, once=once)
        shipper.start()
        _install_signal_handlers(worker)
        log.info("imgserver %s: %s, queue %s, %d converters, %s", worker.context.worker_id,
                 backend.describe(), settings.queue, worker.concurrency, engine.version)
        try:
            worker.run()
        finally:
            # Jobs still converting after the grace period were released to other workers;
            # their ImageMagick processes must not outlive this one.
            _kill_children()
            worker.oplog.close()
            shipper.stop(timeout=10.0)
        log.info("imgserver stopped after %d messages", worker.processed)
    return EXIT_OK


def _install_signal_handlers(worker: Worker) -> None:
    """First SIGTERM/SIGINT: graceful stop. Second: kill converters and exit at once."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if not worker.stopping.is_set():
            log.info("stopping: finishing in-flight jobs (signal again to exit now)")
            worker.stop()
            return
        _kill_children()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _kill_children() -> None:
    """Kill the process group of each child (converters run in their own session)."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:
                os.killpg(int(stat.parent.name), signal.SIGKILL)


__all__ = ["EXIT_BACKEND", "build_worker", "dispatch"]
