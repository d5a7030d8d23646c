"""A bare protocol client for worker tests: upload, request, collect replies.

It speaks the wire protocol directly (no imgtui), so tests can send exactly the requests they
mean, including hostile ones, and watch every reply a worker sends.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from server.commands import build_worker
from server.engine import Engine
from server.provision import provision
from server.worker import Worker
from shared import keys
from shared.backends import open_backend
from shared.config import Settings
from shared.errors import ImgpipeError
from shared.hashing import sha256_file
from shared.ports import Backend, QueueSpec
from shared.protocol import (
    InputRef,
    JobProgress,
    JobRequest,
    JobResult,
    Operations,
    TagOptions,
    decode_reply,
    encode,
    new_id,
)


def make_image(path: Path, width: int = 64, height: int = 48, *, color: str = "red",
               extra: Iterable[str] = ()) -> Path:
    """A real image written by the real ImageMagick (format from the file name)."""
    subprocess.run(["/usr/bin/convert", "-size", f"{width}x{height}", f"xc:{color}", *extra,
                    str(path)], check=True, capture_output=True, timeout=120)
    return path


def lift_tls_policy_for_moto(backend: Backend) -> None:
    """Remove the TLS-only bucket policies that ``imgserver init`` sets, on moto only.

    moto evaluates bucket policies but not the ``Bool`` condition operator: it treats the
    ``aws:SecureTransport = false`` deny as unconditional and refuses every request (and its
    server speaks plain HTTP anyway). tests/server/test_provision.py checks that init sets the
    policy; everything after init runs without it.
    """
    if backend.name != "aws":
        return
    s3 = backend.s3  # type: ignore[attr-defined]
    for bucket in (backend.data_bucket, backend.log_bucket):
        s3.delete_bucket_policy(Bucket=bucket)


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02,
             what: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


DEFAULT_TAG = TagOptions()


@dataclass
class Collected:
    results: dict[str, list[JobResult]] = field(default_factory=dict)
    progress: dict[str, list[JobProgress]] = field(default_factory=dict)


class Pipeline:
    """One test client on a provisioned backend."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend: Backend = open_backend(settings)
        provision(self.backend, settings)
        lift_tls_policy_for_moto(self.backend)
        self.store = self.backend.store(self.backend.data_bucket)
        self.requests = self.backend.queue(settings.queue)
        self.client_id = new_id()
        self.reply_name = keys.reply_queue_name(settings.queue, self.client_id)
        self.replies = self.backend.ensure_queue(QueueSpec(self.reply_name, visibility_timeout=30))
        self.collected = Collected()

    def close(self) -> None:
        """Delete this test client's reply queue (as imgtui does) and let go."""
        with contextlib.suppress(ImgpipeError):
            self.backend.delete_queue(self.reply_name)
        self.backend.close()

    def request(self, source: Path, *, fmt: str = "png", tag: TagOptions | None = DEFAULT_TAG,
                timeout: float = 120.0, name: str | None = None, upload: bool = True,
                sha256: str | None = None) -> JobRequest:
        job_id = new_id()
        key = keys.input_key(self.client_id, job_id)
        digest = sha256 or sha256_file(source)
        if upload:
            self.store.put_file(key, source)
        now = time.time()
        return JobRequest(
            job_id=job_id, client_id=self.client_id, reply_to=self.reply_name,
            input=InputRef(key=key, sha256=digest, bytes=source.stat().st_size,
                           name=name or source.name),
            ops=Operations(format=fmt, tag=tag),  # type: ignore[arg-type]
            submitted_at=now, deadline=now + timeout,
        )

    def submit(self, source: Path, **options: object) -> JobRequest:
        request = self.request(source, **options)  # type: ignore[arg-type]
        self.requests.send(encode(request))
        return request

    def collect(self, wait: float = 0.5) -> None:
        for message in self.replies.receive(10, wait_seconds=wait):
            reply = decode_reply(message.body)
            bucket = (self.collected.results if isinstance(reply, JobResult)
                      else self.collected.progress)
            bucket.setdefault(reply.job_id, []).append(reply)  # type: ignore[arg-type]
            self.replies.delete(message.receipt)

    def results_for(self, job_ids: Iterable[str], timeout: float = 60.0) -> dict[str, JobResult]:
        """Wait until every job has a result; returns the first result of each."""
        wanted = list(job_ids)
        deadline = time.monotonic() + timeout
        while not all(job in self.collected.results for job in wanted):
            if time.monotonic() > deadline:
                missing = [job for job in wanted if job not in self.collected.results]
                raise AssertionError(f"no result for {len(missing)} job(s) after {timeout} s")
            self.collect()
        return {job: self.collected.results[job][0] for job in wanted}


class RunningWorker:
    """An in-process worker on its own thread (imgserver's own loop, minus the CLI)."""

    def __init__(self, settings: Settings, engine: Engine, **options: object) -> None:
        self.backend = open_backend(settings)
        self.worker: Worker
        self.worker, self.shipper = build_worker(settings, self.backend, engine, **options)  # type: ignore[arg-type]
        self.worker.poll_wait = 0.5
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        finally:
            self.worker.oplog.close()

    def __enter__(self) -> RunningWorker:
        self.shipper.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.thread.join(timeout=60)
        self.shipper.stop()
        self.backend.close()
