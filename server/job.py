"""One delivery of one request, handled to its end: the worker's unit of work.

Every step is safe to repeat (at-least-once delivery, exactly-once effect):

1. A final answer already recorded for the job (``reply_key``) is re-sent as is: a redelivery
   after a crash never converts twice.
2. Past its deadline: answered ``expired``, no work done.
3. Input gone (the client cancelled, or it expired from the store): answered ``failed``.
4. Convert in a temp dir removed whatever happens; permanent errors (bad input) are answered
   ``failed`` on the first delivery; transient ones (store or queue trouble) leave the message
   for redelivery with backoff, and past the max receive count it lands in the dead-letter queue.
5. Clean-up order: result stored, reply recorded and sent, input object and temp files deleted,
   request message deleted last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec

from server.engine import ConversionError, Engine, convert
from shared import keys
from shared.errors import BackendError, ChecksumMismatch, ImgpipeError, NotFound, ProtocolError
from shared.ports import Backend, Message, ObjectStore, Queue
from shared.protocol import (
    JobError,
    JobProgress,
    JobRequest,
    JobResult,
    OutputRef,
    decode_request,
    decode_result,
    encode,
    is_probe,
)

log = logging.getLogger("imgserver")

#: Inputs above this are refused before download (an image this big is an attack or a mistake).
MAX_INPUT_BYTES: Final = 256 * 1024 * 1024
JOB_DIR_PREFIX: Final = "imgpipe-job-"

_T = TypeVar("_T")


class Transient(Exception):
    """A step failed for a reason that may pass: leave the message for redelivery."""


@dataclass
class Outcome:
    """What handling one delivery produced: the op-log record and whether to ack it."""

    record: dict[str, Any] | None  # None: nothing to log (a check probe)
    ack: bool = True
    result: JobResult | None = None


@dataclass
class JobContext:
    """What a handler needs from its worker."""

    backend: Backend
    store: ObjectStore
    engine: Engine
    worker_id: str
    request_queue: str
    convert_timeout: float
    work_root: Path
    reply_queue: Callable[[str], Queue]
    dead_letter: Queue | None = None
    thread_limit: int = 1


def _stage(timings: dict[str, float], name: str, step: Callable[[], _T]) -> _T:
    started = time.perf_counter()
    try:
        return step()
    finally:
        timings[name] = round(time.perf_counter() - started, 4)


def _lenient_ids(body: str) -> tuple[str, str, str] | None:
    """Job id, client id and reply queue of a body that failed validation, if they are sane.

    Lets a worker tell a client why its request was refused (a newer schema, say) instead of
    leaving it to time out; every value is still checked against the strict patterns.
    """
    try:
        data = msgspec.json.decode(body.encode()[:65536])
    except (msgspec.DecodeError, UnicodeError):
        return None
    if not isinstance(data, dict):
        return None
    job, client, reply = data.get("job_id"), data.get("client_id"), data.get("reply_to")
    ident = re.compile(r"[0-9a-f]{32}")
    if not (isinstance(job, str) and isinstance(client, str) and isinstance(reply, str)):
        return None
    if not (ident.fullmatch(job) and ident.fullmatch(client)):
        return None
    return job, client, reply


def handle(context: JobContext, message: Message) -> Outcome:
    """Handle one delivery; never raises for anything a message or an image can cause."""
    received = time.time()
    record: dict[str, Any] = {
        "event": "job", "worker_id": context.worker_id, "message_id": message.id,
        "receive_count": message.receive_count,
    }
    timings: dict[str, float] = {"queue_wait": round(max(0.0, received - message.sent_at), 4)}
    record["timings"] = timings
    if is_probe(message.body):
        return Outcome(None, ack=True)
    try:
        request = decode_request(message.body)
    except ProtocolError as error:
        return _poison(context, message, record, str(error))
    record.update(_request_fields(request))
    if request.reply_to != keys.reply_queue_name(context.request_queue, request.client_id):
        # A request may only name its own client's reply queue: no worker can be made to
        # write into another client's queue. Nobody can be told; log it and drop it.
        record.update(status="rejected", error="bad_request: reply_to is not the client's queue")
        return Outcome(record, ack=True)
    started = time.perf_counter()
    try:
        outcome = _handle_request(context, request, record, timings)
    except Transient as error:
        record.update(status="retry", error=str(error))
        outcome = Outcome(record, ack=False)
    timings["total"] = round(time.perf_counter() - started, 4)
    return outcome


def _request_fields(request: JobRequest) -> dict[str, Any]:
    return {
        "job_id": request.job_id, "client_id": request.client_id,
        "input_name": request.input.name, "input_format": request.input.format,
        "input_bytes": request.input.bytes, "input_sha256": request.input.sha256,
        "output_format": request.ops.format,
    }


def _poison(context: JobContext, message: Message, record: dict[str, Any], reason: str
            ) -> Outcome:
    """An undecodable request: answer its client if it can be identified, park it, ack it."""
    record.update(event="poison", status="rejected", error=f"bad_request: {reason}")
    ids = _lenient_ids(message.body)
    if ids is not None:
        job_id, client_id, reply_to = ids
        record.update(job_id=job_id, client_id=client_id)
        result = JobResult(job_id=job_id, client_id=client_id, status="failed",
                           worker_id=context.worker_id,
                           error=JobError(code="bad_request", message=reason[:500]),
                           finished_at=time.time())
        with contextlib.suppress(ImgpipeError, Transient):
            _send_reply(context, reply_to, client_id, result)
    if context.dead_letter is not None:
        # Keep the evidence: SQS would dead-letter it after max receives anyway, but a body
        # that can never decode should not cost those receives.
        with contextlib.suppress(ImgpipeError):
            context.dead_letter.send(message.body)  # it fit in a queue once: it fits again
    return Outcome(record, ack=True)


def _send_reply(context: JobContext, reply_to: str, client_id: str,
                reply: JobResult | JobProgress) -> None:
    # A request may only name its own client's reply queue: no worker can be made to
    # write into another queue.
    if reply_to != keys.reply_queue_name(context.request_queue, client_id):
        raise NotFound(f"reply queue {reply_to!r} is not this client's")
    try:
        context.reply_queue(reply_to).send(encode(reply))
    except NotFound:
        raise
    except BackendError as error:
        raise Transient(f"cannot send reply: {error}") from None


def _finish(context: JobContext, request: JobRequest, record: dict[str, Any],
            result: JobResult, *, store_reply: bool = True) -> Outcome:
    """Record the final answer, send it, delete the input: everything but the ack."""
    reply_key = keys.reply_key(request.client_id, request.job_id)
    try:
        if store_reply:
            context.store.put_bytes(reply_key, encode(result).encode())
        _send_reply(context, request.reply_to, request.client_id, result)
    except NotFound:
        # The client and its reply queue are gone: nobody will collect anything.
        record["note"] = "reply queue gone; result discarded"
        for key in (reply_key, *([result.output.key] if result.output else [])):
            with contextlib.suppress(ImgpipeError):
                context.store.delete(key)
    except BackendError as error:
        raise Transient(f"cannot record reply: {error}") from None
    try:
        context.store.delete(keys.input_key(request.client_id, request.job_id))
    except BackendError as error:
        raise Transient(f"cannot delete input: {error}") from None
    record["status"] = result.status
    if result.error is not None:
        record["error"] = f"{result.error.code}: {result.error.message}"
    if result.output is not None:
        record.update(output_bytes=result.output.bytes, output_sha256=result.output.sha256,
                      width=result.output.width, height=result.output.height)
    return Outcome(record, ack=True, result=result)


def _failed(context: JobContext, request: JobRequest, code: Any, message: str,
            timings: dict[str, float], status: Any = "failed") -> JobResult:
    return JobResult(job_id=request.job_id, client_id=request.client_id, status=status,
                     worker_id=context.worker_id, error=JobError(code=code, message=message[:500]),
                     timings=dict(timings), finished_at=time.time())


def _handle_request(context: JobContext, request: JobRequest, record: dict[str, Any],
                    timings: dict[str, float]) -> Outcome:
    store = context.store
    reply_key = keys.reply_key(request.client_id, request.job_id)
    try:
        previous = store.get_bytes(reply_key, limit=65536)
    except NotFound:
        previous = None
    except BackendError as error:
        raise Transient(f"cannot check for an earlier answer: {error}") from None
    if previous is not None:
        record["event"] = "replay"
        try:
            result = decode_result(previous)
        except ProtocolError:
            result = None
        if result is not None:
            return _finish(context, request, record, result, store_reply=False)

    if time.time() > request.deadline:
        result = _failed(context, request, "expired", "the deadline passed before work began",
                         timings, status="expired")
        return _finish(context, request, record, result)

    if request.input.bytes > MAX_INPUT_BYTES:
        result = _failed(context, request, "too_large",
                         f"input is {request.input.bytes} bytes, over {MAX_INPUT_BYTES}", timings)
        return _finish(context, request, record, result)

    progress = JobProgress(job_id=request.job_id, client_id=request.client_id,
                           worker_id=context.worker_id, at=time.time())
    with contextlib.suppress(ImgpipeError, Transient):
        _send_reply(context, request.reply_to, request.client_id, progress)

    prefix = f"{JOB_DIR_PREFIX}{os.getpid()}-"
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=context.work_root))
    try:
        source = workdir / "input"
        input_key = keys.input_key(request.client_id, request.job_id)
        try:
            _stage(timings, "download", lambda: store.get_file(
                input_key, source, sha256=request.input.sha256))
        except NotFound:
            result = _failed(context, request, "input_missing",
                             "the input is gone (cancelled or expired)", timings)
            return _finish(context, request, record, result)
        except ChecksumMismatch:
            result = _failed(context, request, "checksum_mismatch",
                             "the input does not match the SHA-256 in the request", timings)
            return _finish(context, request, record, result)
        except BackendError as error:
            raise Transient(f"cannot download input: {error}") from None

        try:
            converted = _stage(timings, "convert", lambda: convert(
                context.engine, source, request.ops, workdir, timeout=context.convert_timeout))
        except ConversionError as error:
            if not error.permanent:
                raise Transient(f"conversion failed: {error.message}") from None
            result = _failed(context, request, error.code, error.message, timings)
            return _finish(context, request, record, result)

        result_key = keys.result_key(request.client_id, request.job_id, converted.format)
        try:
            info = _stage(timings, "upload", lambda: store.put_file(result_key, converted.path))
        except BackendError as error:
            raise Transient(f"cannot upload result: {error}") from None
        assert info.sha256 is not None
        output = OutputRef(key=result_key, sha256=info.sha256, bytes=info.size,
                           format=converted.format,  # type: ignore[arg-type]
                           width=converted.width, height=converted.height)
        result = JobResult(job_id=request.job_id, client_id=request.client_id, status="done",
                           worker_id=context.worker_id, output=output, timings=dict(timings),
                           finished_at=time.time())
        return _finish(context, request, record, result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def clean_stale_job_dirs(work_root: Path) -> int:
    """Remove job dirs left by worker processes that no longer exist (after a SIGKILL)."""
    removed = 0
    for path in work_root.glob(f"{JOB_DIR_PREFIX}*"):
        pid_text = path.name[len(JOB_DIR_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        except PermissionError:
            continue
    return removed
