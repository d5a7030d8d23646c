"""The two ports every backend implements: an object store and a message queue.

The semantics are SQS's and S3's, because those are what production runs on; the local backend
reproduces them (see shared/backends/local_queue.py for the few documented differences).
Every method raises only ``shared.errors.BackendError`` subclasses for backend trouble.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: SQS limits, kept by both backends so code that works locally works on AWS.
MAX_RECEIVE_BATCH: Final = 10
MAX_WAIT_SECONDS: Final = 20
MAX_VISIBILITY_SECONDS: Final = 12 * 3600
MAX_BODY_BYTES: Final = 256 * 1024

#: Called with the number of bytes moved so far, from whatever thread does the moving.
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one object."""

    key: str
    size: int
    sha256: str | None  # full-object SHA-256 in hex, as recorded at upload


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a queued message.

    ``receipt`` identifies this delivery, not the message: after a redelivery, only the newest
    receipt may delete or extend it.
    """

    id: str
    body: str
    receipt: str
    receive_count: int
    sent_at: float  # epoch seconds when it was first sent


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """How a queue is created: its default visibility and its dead-letter policy."""

    name: str
    visibility_timeout: int = 30
    dead_letter: str | None = None
    max_receives: int = 3
    #: Keep messages this long at most (SQS default 4 days; reply queues want less).
    retention_seconds: int = 4 * 86400


class ObjectStore(ABC):
    """One bucket: objects addressed by keys built from ids, never from user file names."""

    bucket: str

    @abstractmethod
    def put_file(
        self, key: str, path: Path, *, sha256: str | None = None, progress: Progress | None = None
    ) -> ObjectInfo:
        """Store the file at ``path`` under ``key``.

        When ``sha256`` is given the stored bytes must hash to it, or ``ChecksumMismatch`` is
        raised and nothing is stored. The returned info carries the object's SHA-256.
        """

    @abstractmethod
    def get_file(
        self, key: str, dest: Path, *, sha256: str | None = None, progress: Progress | None = None
    ) -> ObjectInfo:
        """Write the object to ``dest`` (replacing it) and verify it.

        The bytes are checked against ``sha256`` when given, else against the SHA-256 recorded
        at upload. On a mismatch ``dest`` is removed and ``ChecksumMismatch`` raised.
        """

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """The object's info; ``NotFound`` when absent."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; deleting what is absent is not an error (every step repeats)."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order."""

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Store a small payload (a reply record, say) through ``put_file``."""
        import tempfile

        with tempfile.NamedTemporaryFile(prefix="imgpipe-put-") as handle:
            handle.write(data)
            handle.flush()
            return self.put_file(key, Path(handle.name))

    def get_bytes(self, key: str, *, limit: int = 1024 * 1024) -> bytes:
        """Fetch a small payload; objects over ``limit`` bytes are refused unread."""
        import tempfile

        from shared.errors import BackendError

        if self.head(key).size > limit:
            raise BackendError(f"object {key} is over {limit} bytes")
        with tempfile.TemporaryDirectory(prefix="imgpipe-get-") as folder:
            target = Path(folder) / "payload"
            self.get_file(key, target)
            return target.read_bytes()

    def exists(self, key: str) -> bool:
        from shared.errors import NotFound

        try:
            self.head(key)
        except NotFound:
            return False
        return True


class Queue(ABC):
    """One queue with SQS semantics: at-least-once, visibility timeout, receive counts."""

    name: str

    @abstractmethod
    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Enqueue ``body``; returns the message id."""

    @abstractmethod
    def receive(
        self,
        max_messages: int = 1,
        *,
        wait_seconds: float = 0.0,
        visibility_timeout: int | None = None,
    ) -> list[Message]:
        """Up to ``max_messages`` visible messages, waiting up to ``wait_seconds`` for one.

        Each is hidden for ``visibility_timeout`` seconds (the queue's default when None) and
        its receive count goes up by one. A message received more often than the queue's
        ``max_receives`` is moved to the dead-letter queue instead of being delivered.
        """

    @abstractmethod
    def delete(self, receipt: str) -> None:
        """Acknowledge a delivery. A stale receipt (superseded by a newer delivery) does not
        delete the newer one."""

    @abstractmethod
    def change_visibility(self, receipt: str, seconds: int) -> None:
        """Hide the delivered message for ``seconds`` from now (0 makes it visible at once)."""

    def release(self, receipt: str) -> None:
        """Give a delivery back for someone else to take now."""
        self.change_visibility(receipt, 0)

    @abstractmethod
    def depth(self) -> tuple[int, int]:
        """Approximate (visible, in flight) message counts."""

    @abstractmethod
    def purge(self) -> None:
        """Drop every message (tests and ``init --reset`` only)."""


class Backend(ABC):
    """A store and queue provider: ``local`` (directory + SQLite) or ``aws`` (S3 + SQS)."""

    name: str
    #: Bucket names in use, resolved when the backend opens (settings, or a default).
    data_bucket: str
    log_bucket: str

    @abstractmethod
    def describe(self) -> str:
        """A short human description: 'local .imgpipe' or 'aws eu-west-1 imgpipe-requests'."""

    @abstractmethod
    def store(self, bucket: str) -> ObjectStore:
        """The object store for ``bucket`` (which must exist)."""

    @abstractmethod
    def queue(self, name: str) -> Queue:
        """The existing queue called ``name``; ``NotFound`` when it does not exist."""

    @abstractmethod
    def ensure_queue(self, spec: QueueSpec) -> Queue:
        """Create the queue (and its dead-letter queue) if missing; idempotent."""

    @abstractmethod
    def delete_queue(self, name: str) -> None:
        """Remove a queue and its messages; absent is not an error."""

    @abstractmethod
    def ensure_bucket(self, bucket: str) -> bool:
        """Create the bucket if missing; True when it was created now."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections and threads."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
