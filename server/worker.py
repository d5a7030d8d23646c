"""The worker loop: one receiver, N converters, one heartbeat.

- The receiver long-polls the request queue for as many messages as there are free converter
  slots (never more: a message received is a message hidden from other workers), and hands
  each to the converter pool.
- The heartbeat extends the visibility of every in-flight message well before it expires and
  forgets it when its job ends, so a slow conversion is never handed to a second worker.
- Stopping (first SIGTERM/SIGINT): stop receiving, let in-flight jobs finish within the grace
  period (heartbeats keep running), then release whatever is left (visibility 0) so another
  worker takes it at once, flush the log, return. A second signal is handled by the command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from server.job import JobContext, Outcome, clean_stale_job_dirs, handle
from server.oplog import OpLog, host_name, utc_stamp
from shared.errors import BackendError, ImgpipeError, NotFound
from shared.ports import Backend, Message, Queue

log = logging.getLogger("imgserver")

#: Long-poll wait per receive. SQS bills per request; 10 s keeps idle cost low while a
#: stopping worker still notices its stop within seconds.
POLL_WAIT: Final = 10.0
#: Backoff before a transiently failed job is retried: base * 2**(receives-1), capped.
RETRY_BASE_SECONDS: Final = 2
RETRY_MAX_SECONDS: Final = 300
REPLY_QUEUE_CACHE: Final = 256


def worker_id() -> str:
    return f"{host_name()}:{os.getpid()}"


@dataclass
class InFlight:
    message: Message
    extended_at: float = field(default_factory=time.monotonic)


class Worker:
    def __init__(
        self,
        backend: Backend,
        queue: Queue,
        context: JobContext,
        oplog: OpLog,
        *,
        concurrency: int,
        visibility_timeout: int,
        poll_wait: float = POLL_WAIT,
        grace: float = 30.0,
        once: bool = False,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.backend = backend
        self.queue = queue
        self.context = context
        self.oplog = oplog
        self.concurrency = concurrency
        self.visibility_timeout = visibility_timeout
        self.poll_wait = poll_wait
        self.grace = grace
        self.once = once
        self.on_outcome = on_outcome
        self.stopping = threading.Event()
        self._slots = threading.Semaphore(concurrency)
        self._in_flight: dict[str, InFlight] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="imgpipe-job")
        self.processed = 0

    # --- lifecycle --------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until ``stop`` is called (or, with ``once``, until the queue is drained)."""
        clean_stale_job_dirs(self.context.work_root)
        heartbeat = threading.Thread(target=self._heartbeat, name="imgpipe-heartbeat",
                                     daemon=True)
        heartbeat.start()
        receiver = threading.Thread(target=self._receive_loop, name="imgpipe-receiver",
                                    daemon=True)
        receiver.start()
        try:
            while receiver.is_alive() and not self.stopping.is_set():
                receiver.join(0.2)
        finally:
            self.stopping.set()
            self._drain()
            receiver.join(timeout=self.poll_wait + 5)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self.oplog.flush()

    def stop(self) -> None:
        """Begin a graceful stop (idempotent, safe from a signal handler's thread)."""
        self.stopping.set()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.grace
        with self._idle:
            while self._in_flight and time.monotonic() < deadline:
                self._idle.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            left = list(self._in_flight.values())
        for item in left:
            with contextlib.suppress(ImgpipeError):
                self.queue.release(item.message.receipt)
            log.warning("released unfinished message %s at shutdown", item.message.id)

    # --- receiving ----------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            free = 1
            while free < 10 and self._slots.acquire(blocking=False):
                free += 1
            try:
                wait = min(self.poll_wait, 1.0) if self.once else self.poll_wait
                messages = self.queue.receive(
                    free, wait_seconds=wait, visibility_timeout=self.visibility_timeout)
                failures = 0
            except BackendError as error:
                self._release_slots(free)
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning("cannot receive from %s: %s (retrying in %.0f s)",
                            self.queue.name, error, delay)
                self.stopping.wait(delay)
                continue
            self._release_slots(free - len(messages))
            if self.stopping.is_set():
                for message in messages:
                    with contextlib.suppress(ImgpipeError):
                        self.queue.release(message.receipt)
                self._release_slots(len(messages))
                return
            if not messages and self.once:
                with self._idle:
                    if not self._in_flight:
                        return
                continue
            for message in messages:
                with self._lock:
                    self._in_flight[message.receipt] = InFlight(message)
                self._pool.submit(self._run_job, message)

    def _release_slots(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _run_job(self, message: Message) -> None:
        try:
            outcome = handle(self.context, message)
        except Exception as error:  # a bug: keep serving, let the message come back
            log.exception("unexpected error on message %s", message.id)
            outcome = Outcome({"event": "job", "message_id": message.id, "status": "retry",
                               "error": f"internal: {type(error).__name__}: {error}"[:500]},
                              ack=False)
        try:
            self._settle(message, outcome)
        finally:
            with self._idle:
                self._in_flight.pop(message.receipt, None)
                self._idle.notify_all()
            self._slots.release()

    def _settle(self, message: Message, outcome: Outcome) -> None:
        record = outcome.record if outcome.record is not None else {}
        record.setdefault("worker_id", self.context.worker_id)
        record["ts"] = utc_stamp()
        if outcome.ack:
            try:
                self.queue.delete(message.receipt)
            except BackendError as error:
                # Harmless: the job's effect is recorded, a redelivery only re-sends the reply.
                log.warning("cannot delete message %s: %s", message.id, error)
        else:
            delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (message.receive_count - 1))
            with contextlib.suppress(ImgpipeError):
                self.queue.change_visibility(message.receipt, delay)
            record["retry_in"] = delay
        if outcome.record is not None:
            try:
                self.oplog.write(record)
            except OSError as error:
                log.error("cannot write the op log: %s", error)
            log.log(logging.WARNING if record.get("status") == "retry" else logging.INFO,
                    "%s", describe(record))
        self.processed += 1
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    # --- heartbeat ------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Extend in-flight messages once a third of their visibility has passed."""
        interval = max(1.0, self.visibility_timeout / 3)
        while True:
            time.sleep(min(1.0, interval / 2))
            now = time.monotonic()
            with self._lock:
                due = [item for item in self._in_flight.values()
                       if now - item.extended_at >= interval]
            for item in due:
                try:
                    self.queue.change_visibility(item.message.receipt, self.visibility_timeout)
                    item.extended_at = time.monotonic()
                except NotFound:
                    log.warning("message %s was redelivered elsewhere before its heartbeat",
                                item.message.id)
                    item.extended_at = time.monotonic()
                except BackendError as error:
                    log.warning("heartbeat for %s failed: %s", item.message.id, error)
            if self.stopping.is_set() and not self._in_flight:
                with self._lock:
                    if not self._in_flight:
                        return


def describe(record: dict[str, object]) -> str:
    """One journal line for a job: what happened, to which file, how fast or why not."""
    status = record.get("status", "?")
    job = str(record.get("job_id", record.get("message_id", "?")))[:12]
    name = record.get("input_name")
    subject = f"{job} {name!r}" if name is not None else f"message {job}"
    if status == "done":
        timings = record.get("timings") or {}
        total = timings.get("total", 0.0) if isinstance(timings, dict) else 0.0
        return (f"done {subject} {record.get('input_format') or '?'}→"
                f"{record.get('output_format')} {record.get('width')}×{record.get('height')} "
                f"{record.get('output_bytes')} B in {total:.2f} s"
                + (" (replayed)" if record.get("event") == "replay" else ""))
    reason = record.get("error", "")
    retry = f", retry in {record['retry_in']} s" if "retry_in" in record else ""
    return f"{status} {subject}: {reason}{retry}"


class ReplyQueues:
    """Reply queues by name, resolved once each (an LRU, since clients come and go)."""

    def __init__(self, backend: Backend, size: int = REPLY_QUEUE_CACHE) -> None:
        self.backend = backend
        self.size = size
        self._cache: OrderedDict[str, Queue] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Queue:
        with self._lock:
            if name in self._cache:
                self._cache.move_to_end(name)
                return self._cache[name]
        queue = self.backend.queue(name)
        with self._lock:
            self._cache[name] = queue
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return queue


def default_work_root() -> Path:
    """Per-user folder for job temp dirs (on local disk, never shared between users)."""
    import tempfile

    root = Path(tempfile.gettempdir()) / f"imgpipe-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root
