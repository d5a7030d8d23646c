"""The client engine shared by the dashboard and ``imgtui submit``.

It owns the job lifecycle from a file on disk to a verified file in the output folder, and runs
all of its blocking work (hashing, uploads, long polls, downloads) on its own threads: callers
only enqueue (``add_path``, ``cancel``, ``retry``) and hear back through ``on_change`` and
``on_status``, which are called from those threads (the dashboard forwards them with
``post_message``, which is thread-safe).

Delivery rules kept here:
- Replies arrive on this client's own reply queue; a reply for a job this client does not
  know, or one already final (timed out, cancelled), has its objects and message deleted.
- A result is downloaded to a hidden temp file in the output folder, verified against its
  SHA-256, then linked to ``<stem>.<ext>`` without overwriting; the journal records the final
  path before the link, so a crash in between never produces a second copy.
- Only after the file is in place are the result objects and the reply message deleted.
- At the deadline an unfinished job is timed out and its input deleted, so no worker starts it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shared import keys
from shared.backends import open_backend
from shared.config import Settings
from shared.errors import BackendError, ChecksumMismatch, ImgpipeError, NotFound
from shared.formats import sniff_file
from shared.hashing import sha256_file
from shared.ports import Backend, Message, ObjectStore, Queue, QueueSpec
from shared.protocol import (
    InputRef,
    JobProgress,
    JobRequest,
    JobResult,
    Operations,
    ProtocolError,
    TagOptions,
    clean_file_name,
    decode_reply,
    encode,
    new_id,
)
from tui.identity import Identity, acquire_identity
from tui.intake import regular_file_problem
from tui.jobs import AWAITING_REPLY, RETRYABLE, Job, State, TagSpec, settings_key
from tui.journal import Journal
from tui.naming import find_reserved, holds_token, placeholder_token, reserve

log = logging.getLogger("imgtui")

UPLOAD_THREADS: Final = 4
DOWNLOAD_THREADS: Final = 4
#: A reply stays hidden this long once received; a long download extends it as it goes. Short,
#: because a client killed mid-download gets the reply back only after it expires.
REPLY_VISIBILITY: Final = 30
RETRY_MIN: Final = 1.0
RETRY_MAX: Final = 30.0
#: Progress callbacks at most this often per transfer (keeps the UI's message rate sane).
PROGRESS_INTERVAL: Final = 0.1
TICK: Final = 0.2
MAX_FAILURE_TEXT: Final = 300
REPLY_THREAD: Final = "imgpipe-replies"


@dataclass(frozen=True)
class Status:
    """Whether the backend answers, for the header."""

    reachable: bool
    detail: str


class Client:
    def __init__(
        self,
        settings: Settings,
        *,
        on_change: Callable[[Job], None] | None = None,
        on_status: Callable[[Status], None] | None = None,
        backend_factory: Callable[[Settings], Backend] = open_backend,
        poll_wait: float | None = None,
    ) -> None:
        self.settings = settings
        self.on_change = on_change or (lambda job: None)
        self.on_status = on_status or (lambda status: None)
        self._backend_factory = backend_factory
        self.identity: Identity = acquire_identity(settings.state_dir)
        self.client_id = self.identity.client_id
        self.journal = Journal(settings.state_dir / "journal.sqlite3", self.client_id)
        self.reply_queue_name = keys.reply_queue_name(settings.queue, self.client_id)
        # A local long poll costs nothing but delays close() by as much: keep it short there.
        self.poll_wait = poll_wait if poll_wait is not None else (
            20.0 if settings.backend == "aws" else 1.0)
        self.jobs: dict[int, Job] = {}
        self._by_job_id: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._backend: Backend | None = None
        self._store: ObjectStore | None = None
        self._requests: Queue | None = None
        self._replies: Queue | None = None
        self._uploads = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="imgpipe-upload")
        self._downloads = ThreadPoolExecutor(DOWNLOAD_THREADS,
                                             thread_name_prefix="imgpipe-download")
        self._threads: list[threading.Thread] = []
        self.status = Status(False, "connecting")
        self._retry_at: dict[int, float] = {}
        self._uploading: set[int] = set()
        #: Who closes the backend: close(), or the reply loop if it is still in a long poll.
        self._closing = threading.Lock()
        self._reply_loop_running = False
        self._reply_loop_closes_backend = False
        self._retry_delay: dict[int, float] = {}

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Load the journal, connect in the background, start the reply and deadline loops."""
        for job in self.journal.load():
            self._remember(job)
        self._reply_loop_running = True
        for name, target in (("imgpipe-connect", self._connect_loop),
                             (REPLY_THREAD, self._reply_loop),
                             ("imgpipe-deadlines", self._deadline_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self, *, delete_reply_queue: bool | None = None) -> None:
        """Stop every loop; delete the reply queue when nothing is left in flight.

        Never waits out a long poll: a reply loop still inside one is left to finish it and
        closes the backend itself on its way out (the poll delivers nothing after a stop).
        """
        self._stop.set()
        self._uploads.shutdown(wait=False, cancel_futures=True)
        self._downloads.shutdown(wait=True, cancel_futures=True)
        for thread in self._threads:
            thread.join(timeout=0.05 if thread.name == REPLY_THREAD else 1.0)
        if delete_reply_queue is None:
            delete_reply_queue = not self.in_flight()
        if delete_reply_queue and self._backend is not None:
            with contextlib.suppress(ImgpipeError):
                self._backend.delete_queue(self.reply_queue_name)
        with self._closing:
            if self._reply_loop_running:
                self._reply_loop_closes_backend = True
            elif self._backend is not None:
                self._backend.close()
        self.journal.close()
        self.identity.release()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def in_flight(self) -> list[Job]:
        with self._lock:
            return [job for job in self.jobs.values() if not job.final]

    def _connect_loop(self) -> None:
        delay = RETRY_MIN
        while not self._stop.is_set():
            try:
                backend = self._backend_factory(self.settings)
                if backend.name == "local":
                    # Nothing to provision on one machine but a folder and a table: a client
                    # started before any worker should not have to ask for `imgserver init`.
                    from server.provision import provision

                    provision(backend, self.settings)
                replies = backend.ensure_queue(QueueSpec(
                    self.reply_queue_name, visibility_timeout=REPLY_VISIBILITY,
                    retention_seconds=86400))
                requests = backend.queue(self.settings.queue)
                store = backend.store(backend.data_bucket)
            except NotFound as error:
                self._set_status(False, f"{error} (run 'imgserver init')")
            except ImgpipeError as error:
                self._set_status(False, f"unreachable: {error}")
            else:
                self._backend, self._replies, self._requests, self._store = (
                    backend, replies, requests, store)
                self._set_status(True, backend.describe())
                self._connected.set()
                self._resume()
                return
            self._stop.wait(delay)
            delay = min(RETRY_MAX, delay * 2)

    def _set_status(self, reachable: bool, detail: str) -> None:
        status = Status(reachable, detail)
        if status != self.status:
            self.status = status
            self.on_status(status)

    def _resume(self) -> None:
        """After connecting: send what was waiting, recover what a crash interrupted."""
        self._sweep()
        with self._lock:
            jobs = [job for job in self.jobs.values() if not job.final]
        for job in jobs:
            if job.state in (State.WAITING, State.UPLOADING):
                self._schedule_upload(job)
            elif job.state is State.DOWNLOADING:
                self._recover_download(job)

    def _sweep(self) -> None:
        """Delete this identity's objects that nobody will collect: inputs and results of jobs
        that are final (a client killed between placing a file and its clean-up, a result that
        came after its job timed out and the client quit) or no longer known."""
        assert self._store is not None
        for prefix in (keys.INPUT_PREFIX, keys.RESULT_PREFIX):
            try:
                found = list(self._store.list(f"{prefix}{self.client_id}/"))
            except ImgpipeError as error:
                log.warning("cannot list leftovers: %s", error)
                return
            for info in found:
                job_id = info.key.rsplit("/", 1)[-1].split(".", 1)[0]
                with self._lock:
                    job = self._by_job_id.get(job_id)
                if job is None:
                    job = self.journal.by_job_id(job_id)
                if job is None or job.final:
                    self._delete_quietly(info.key)

    # --- intake ----------------------------------------------------------------------------

    def add_paths(self, paths: Iterable[Path], *, origin: str = "added") -> None:
        """Submit files (from the input folder, a paste or the path prompt), off-thread."""
        for path in paths:
            self._uploads.submit(self._guarded, self._intake, Path(path), origin)

    def submit_paths(self, paths: Iterable[Path], *, again: bool = False) -> list[Job]:
        """Submit files now (hashing in this thread) and return their jobs, for ``submit``.

        Reruns are idempotent, so a script can simply run the same command again after a
        crash: a file this client already has under way (unchanged, same settings) is
        adopted, and one already converted whose output is still in the output folder,
        unchanged, is reported done, not converted twice. ``again`` converts regardless.
        """
        jobs = [self._intake(Path(path), "again" if again else "submit") for path in paths]
        return [job for job in jobs if job is not None]

    def _guarded(self, step: Callable[..., object], *args: object) -> None:
        try:
            step(*args)
        except Exception:  # a bug must not kill the pool thread silently
            log.exception("unexpected error in %s", getattr(step, "__name__", step))

    def _intake(self, path: Path, origin: str) -> Job | None:
        name = path.name or str(path)
        # Hidden and temporary names are skipped by the folder watcher; a file the user names
        # explicitly is taken whatever its name.
        reason = regular_file_problem(path)
        if reason is None:
            try:
                fmt = sniff_file(path)
                digest = sha256_file(path)
                size = path.stat().st_size
            except OSError as error:
                reason, fmt, digest, size = f"cannot read: {error.strerror}", None, "", 0
            else:
                if size == 0:
                    reason = "empty file"
                elif fmt is None:
                    reason = "not a supported image (jpeg, png, gif, webp, tiff, bmp)"
        else:
            fmt, digest, size = None, "", 0
        if reason is None and origin == "submit":
            adopted = self._unfinished_twin(path, digest) or self._converted_twin(path, digest)
            if adopted is not None:
                return adopted
        # Checked before the job is journaled: the new row itself would count as "under way".
        if reason is None and origin == "startup" and \
                self.journal.processed(digest, self._settings_key()):
            return None
        job = self._new_job(path, name, size, digest, fmt)
        if reason is not None:
            job.state, job.reason, job.finished_at = State.REJECTED, reason, time.time()
            self._save(job)
            return job
        self._save(job, new=True)
        self._schedule_upload(job)
        return job

    def _tag_spec(self) -> TagSpec | None:
        settings = self.settings
        if not settings.tag:
            return None
        return TagSpec(settings.tag, settings.tag_mode, settings.tag_size, settings.tag_color)

    def _settings_key(self) -> str:
        return settings_key(self.settings.format, self._tag_spec())

    def _new_job(self, path: Path, name: str, size: int, digest: str, fmt: str | None) -> Job:
        settings = self.settings
        tag = self._tag_spec()
        now = time.time()
        job = Job(row=0, job_id=new_id(), source=path.absolute(), name=clean_file_name(name),
                  size=size, sha256=digest or "0" * 64, input_format=fmt,
                  output_format=settings.format, tag=tag, timeout=settings.timeout,
                  created_at=now, deadline=now + settings.timeout)
        with self._lock:
            self.journal.add(job)
            self._remember(job)
        return job

    def _unfinished_twin(self, path: Path, digest: str) -> Job | None:
        key = self._settings_key()
        with self._lock:
            for job in self.jobs.values():
                if (not job.final and job.source == path.absolute() and job.sha256 == digest
                        and job.settings_key() == key):
                    return job
        return None

    def _converted_twin(self, path: Path, digest: str) -> Job | None:
        """A finished job for this file (same path, content and settings) whose output is
        still in place."""
        output = self.settings.output.resolve()
        for job in self.journal.done_twins(digest, self._settings_key()):
            placed = job.output_path
            if job.source != path.absolute():
                continue
            if placed is not None and placed.parent == output and placed.is_file() and \
                    job.output_sha256 and sha256_file(placed) == job.output_sha256:
                job.reason = "already converted"
                with self._lock:
                    self._remember(job)
                return job
        return None

    # --- upload and request ----------------------------------------------------------------

    def _schedule_upload(self, job: Job, delay: float = 0.0) -> None:
        if delay:
            with self._lock:
                self._retry_at[job.row] = time.monotonic() + delay
            return
        self._uploads.submit(self._guarded, self._upload, job)

    def _upload(self, job: Job) -> None:
        if not self._connected.is_set():
            self._set_waiting(job, "waiting for the backend")
            return  # _resume picks it up
        with self._lock:
            # One upload per job at a time: _resume and a retry may schedule the same job.
            if job.final or job.state not in (State.WAITING, State.UPLOADING) or \
                    job.row in self._uploading:
                return
            self._uploading.add(job.row)
        try:
            self._upload_and_request(job)
        finally:
            with self._lock:
                self._uploading.discard(job.row)

    def _upload_and_request(self, job: Job) -> None:
        assert self._store is not None and self._requests is not None
        self._update(job, state=State.UPLOADING, reason="", progress=0.0)
        key = keys.input_key(self.client_id, job.job_id)
        try:
            self._transfer(job, lambda progress: self._store.put_file(  # type: ignore[union-attr]
                key, job.source, sha256=job.sha256, progress=progress))
            with self._lock:
                if job.final:  # cancelled or timed out while uploading
                    self._delete_quietly(key)
                    return
            request = self._request(job, key)
            self._requests.send(encode(request))
        except ChecksumMismatch:
            self._fail(job, State.FAILED, "the file changed while it was being uploaded")
            return
        except NotFound as error:
            if not job.source.exists():
                self._fail(job, State.FAILED, "the file vanished before it was uploaded")
            else:
                self._fail(job, State.FAILED, str(error))
            return
        except BackendError as error:
            if error.transient:
                self._backoff(job, f"backend unreachable ({error}); retrying")
                return
            self._fail(job, State.FAILED, str(error))
            return
        except OSError as error:
            self._fail(job, State.FAILED, f"cannot read the file: {error.strerror}")
            return
        self._retry_delay.pop(job.row, None)
        with self._lock:
            # A fast worker's reply may already have moved the job on (processing, even
            # done): only an upload still in progress becomes queued, never a later state.
            if job.state is State.UPLOADING:
                self._update(job, state=State.QUEUED, submitted_at=request.submitted_at,
                             progress=1.0)
            else:
                self._update(job, submitted_at=job.submitted_at or request.submitted_at)
        if not self.status.reachable and self._backend is not None:
            self._set_status(True, self._backend.describe())

    def _request(self, job: Job, key: str) -> JobRequest:
        tag = None if job.tag is None else TagOptions(
            text=job.tag.text, mode=job.tag.mode,  # type: ignore[arg-type]
            point_size=job.tag.size, color=job.tag.color)
        now = time.time()
        return JobRequest(
            job_id=job.job_id, client_id=self.client_id, reply_to=self.reply_queue_name,
            input=InputRef(key=key, sha256=job.sha256, bytes=job.size, name=job.name,
                           format=job.input_format),  # type: ignore[arg-type]
            ops=Operations(format=job.output_format, tag=tag),  # type: ignore[arg-type]
            submitted_at=now, deadline=max(now, job.deadline or now + job.timeout),
        )

    def _backoff(self, job: Job, reason: str) -> None:
        delay = self._retry_delay.get(job.row, RETRY_MIN)
        self._retry_delay[job.row] = min(RETRY_MAX, delay * 2)
        self._set_waiting(job, f"{reason} in {delay:.0f} s")
        self._set_status(False, "unreachable: " + reason.split(";")[0])
        self._schedule_upload(job, delay)

    def _set_waiting(self, job: Job, reason: str) -> None:
        self._update(job, state=State.WAITING, reason=reason, progress=0.0)

    def _transfer(self, job: Job, run: Callable[[Callable[[int], None]], object],
                  holding: Message | None = None) -> object:
        """Run an upload or download, reporting progress at most every PROGRESS_INTERVAL.

        ``holding``: a reply received for this download, kept hidden while it runs.
        """
        last = 0.0
        extended = time.monotonic()
        total = max(1, job.size if job.state is State.UPLOADING else job.output_bytes or 1)

        def progress(done: int) -> None:
            nonlocal last, extended
            now = time.monotonic()
            if holding is not None and now - extended > REPLY_VISIBILITY / 3:
                extended = now
                with contextlib.suppress(ImgpipeError):
                    assert self._replies is not None
                    self._replies.change_visibility(holding.receipt, REPLY_VISIBILITY)
            if now - last >= PROGRESS_INTERVAL:
                last = now
                job.progress = min(1.0, done / total)
                self.on_change(job)

        return run(progress)

    # --- replies ---------------------------------------------------------------------------

    def _reply_loop(self) -> None:
        try:
            while not self._connected.wait(0.2):
                if self._stop.is_set():
                    return
            self._receive_replies()
        finally:
            with self._closing:
                self._reply_loop_running = False
                if self._reply_loop_closes_backend and self._backend is not None:
                    self._backend.close()

    def _receive_replies(self) -> None:
        failures = 0
        while not self._stop.is_set():
            assert self._replies is not None
            try:
                messages = self._replies.receive(10, wait_seconds=self.poll_wait)
            except BackendError as error:
                if self._stop.is_set():
                    return  # the queue was deleted by close(): nothing more to hear
                failures += 1
                self._set_status(False, f"unreachable: {error}")
                self._stop.wait(min(RETRY_MAX, RETRY_MIN * 2 ** min(failures, 5)))
                continue
            if failures:
                failures = 0
                assert self._backend is not None
                self._set_status(True, self._backend.describe())
            for index, message in enumerate(messages):
                if self._stop.is_set():
                    # Closed while this poll ran: hand the rest back at once, or the next
                    # client on this identity would wait out their visibility timeout.
                    for unread in messages[index:]:
                        with contextlib.suppress(ImgpipeError):
                            self._replies.release(unread.receipt)
                    return
                self._guarded(self._on_reply, message)

    def _on_reply(self, message: Message) -> None:
        assert self._replies is not None
        try:
            reply = decode_reply(message.body)
        except ProtocolError as error:
            log.warning("dropping an invalid reply: %s", error)
            self._ack(message)
            return
        if reply.client_id != self.client_id:
            self._ack(message)
            return
        with self._lock:
            job = self._by_job_id.get(reply.job_id)
        if isinstance(reply, JobProgress):
            if job is not None and job.state in (State.UPLOADING, State.QUEUED):
                self._update(job, state=State.PROCESSING, worker_id=reply.worker_id)
            self._ack(message)
            return
        if job is None or job.final:
            self._discard(reply, message)
            return
        if job.state is State.DOWNLOADING:
            return  # a redelivery while the download runs: it is acked once final
        self._update(job, state=State.DOWNLOADING if reply.status == "done" else job.state,
                     worker_id=reply.worker_id, timings=dict(reply.timings), progress=0.0)
        if reply.status == "done":
            self._downloads.submit(self._guarded, self._download, job, reply, message)
            return
        error = reply.error
        reason = f"{error.message} ({error.code})" if error else reply.status
        state = State.EXPIRED if reply.status == "expired" else State.FAILED
        self._fail(job, state, reason, delete_input=False)
        self._cleanup_result(reply)
        self._ack(message)

    def _download(self, job: Job, result: JobResult, message: Message) -> None:
        assert self._store is not None and result.output is not None
        output = result.output
        folder = self.settings.output
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".imgpipe-{job.job_id}.part"
        self._update(job, output_bytes=output.bytes, output_sha256=output.sha256,
                     width=output.width, height=output.height)
        try:
            self._transfer(job, lambda progress: self._store.get_file(  # type: ignore[union-attr]
                output.key, temp, sha256=output.sha256, progress=progress), holding=message)
        except NotFound:
            self._fail(job, State.FAILED, "the result vanished from the store",
                       delete_input=False)
            self._cleanup_result(result)
            self._ack(message)
            return
        except BackendError as error:
            temp.unlink(missing_ok=True)
            # Leave the reply for redelivery; show why meanwhile.
            self._update(job, state=State.QUEUED, reason=f"download failed ({error}); retrying")
            with contextlib.suppress(ImgpipeError):
                assert self._replies is not None
                self._replies.change_visibility(message.receipt, 5)
            return
        except OSError as error:
            temp.unlink(missing_ok=True)
            self._fail(job, State.FAILED, f"cannot write to {folder}: {error.strerror}",
                       delete_input=False)
            return
        # Reserve the name (a placeholder holding this job's token), record it, then move the
        # verified file over the placeholder: a crash at any point is recognised on restart
        # instead of producing a second copy.
        token = placeholder_token(job.job_id)
        try:
            final = job.output_path if holds_token(job.output_path, token) else None
            final = final or find_reserved(folder, job.name, output.format, token)
            if final is None:
                final = reserve(folder, job.name, output.format, token)
            self._update(job, output_path=final)
            temp.replace(final)
        except OSError as error:
            temp.unlink(missing_ok=True)
            self._fail(job, State.FAILED, f"cannot write to {folder}: {error}",
                       delete_input=False)
            return
        self._update(job, state=State.DONE, reason="", output_path=final, progress=1.0,
                     finished_at=time.time())
        self._cleanup_result(result)
        self._ack(message)

    def _recover_download(self, job: Job) -> None:
        """A crash interrupted a download: keep a placed, verified file; else redo it."""
        path = job.output_path
        if path is not None and path.is_file() and job.output_sha256 and \
                sha256_file(path) == job.output_sha256:
            self._update(job, state=State.DONE, finished_at=job.finished_at or time.time())
            return
        # The reply is still on the queue (it is deleted only after placing): wait for it.
        # A reserved placeholder stays recorded and is filled by the next download.
        self._update(job, state=State.QUEUED)

    def _cleanup_result(self, result: JobResult) -> None:
        self._delete_quietly(keys.reply_key(result.client_id, result.job_id))
        if result.output is not None:
            self._delete_quietly(result.output.key)

    def _discard(self, result: JobResult, message: Message) -> None:
        """A reply nobody waits for (timed out, cancelled, unknown): leave nothing behind."""
        self._cleanup_result(result)
        self._ack(message)

    def _ack(self, message: Message) -> None:
        if self._replies is None:
            return
        try:
            self._replies.delete(message.receipt)
        except ImgpipeError as error:
            log.warning("cannot delete reply %s: %s", message.id, error)

    def _delete_quietly(self, key: str) -> None:
        if self._store is None:
            return
        try:
            self._store.delete(key)
        except ImgpipeError as error:
            log.warning("cannot delete %s: %s", key, error)

    # --- deadlines, cancel, retry ----------------------------------------------------------

    def _deadline_loop(self) -> None:
        while not self._stop.wait(TICK):
            self.expire_due()
            self._run_due_retries()

    def expire_due(self, now: float | None = None) -> list[Job]:
        """Time out every unfinished job past its deadline (not one already downloading)."""
        now = time.time() if now is None else now
        with self._lock:
            due = [job for job in self.jobs.values()
                   if not job.final and job.state is not State.DOWNLOADING
                   and job.deadline is not None and job.deadline <= now]
        for job in due:
            self._fail(job, State.TIMED_OUT, f"no result within {job.timeout:g} s")
        return due

    def _run_due_retries(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [row for row, at in self._retry_at.items() if at <= now]
            for row in due:
                del self._retry_at[row]
            jobs = [self.jobs[row] for row in due if row in self.jobs]
        for job in jobs:
            if not job.final:
                self._uploads.submit(self._guarded, self._upload, job)

    def cancel(self, row: int) -> bool:
        with self._lock:
            job = self.jobs.get(row)
            if job is None or job.final:
                return False
        self._fail(job, State.CANCELLED, "cancelled by the user")
        return True

    def retry(self, row: int) -> bool:
        """Submit a failed, expired, timed-out or cancelled job again (a new request)."""
        with self._lock:
            job = self.jobs.get(row)
            if job is None or job.state not in RETRYABLE:
                return False
            self._by_job_id.pop(job.job_id, None)
            now = time.time()
            job.job_id = new_id()
            job.attempts += 1
            job.state, job.reason, job.progress = State.WAITING, "", 0.0
            job.created_at, job.deadline, job.finished_at = now, now + job.timeout, None
            job.submitted_at = job.worker_id = job.output_path = None
            job.timings = {}
            self._by_job_id[job.job_id] = job
        try:
            job.sha256 = sha256_file(job.source)
            job.size = job.source.stat().st_size
        except OSError:
            self._fail(job, State.FAILED, "the file is gone; cannot retry")
            return True
        self._save(job)
        self._schedule_upload(job)
        return True

    def clear_finished(self) -> list[int]:
        """Forget finished rows (kept in the journal as processed). Returns their rows."""
        with self._lock:
            rows = [row for row, job in self.jobs.items() if job.final]
            for row in rows:
                job = self.jobs.pop(row)
                self._by_job_id.pop(job.job_id, None)
        self.journal.hide(rows)
        return rows

    def _fail(self, job: Job, state: State, reason: str, *, delete_input: bool = True) -> None:
        with self._lock:
            if job.final:
                return
            was_out = job.state in AWAITING_REPLY or job.state is State.UPLOADING
            self._retry_at.pop(job.row, None)
        self._update(job, state=state, reason=reason[:MAX_FAILURE_TEXT], finished_at=time.time(),
                     progress=0.0)
        if delete_input and was_out:
            # Withdraw the request: a worker that has not started finds no input (or a
            # passed deadline) and does no work.
            self._delete_quietly(keys.input_key(self.client_id, job.job_id))

    # --- bookkeeping -----------------------------------------------------------------------

    def _remember(self, job: Job) -> None:
        self.jobs[job.row] = job
        self._by_job_id[job.job_id] = job

    def _save(self, job: Job, *, new: bool = False) -> None:
        with self._lock:
            self.journal.save(job)
        self.on_change(job)

    def _update(self, job: Job, **changes: object) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(job, name, value)
            self.journal.save(job)
        self.on_change(job)

    def snapshot(self) -> list[Job]:
        with self._lock:
            return list(self.jobs.values())
