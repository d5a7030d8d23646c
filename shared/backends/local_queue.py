"""SQS semantics on one SQLite file, safe across threads and processes.

Every state change is one ``BEGIN IMMEDIATE`` transaction, so two consumers (threads or
processes) can never both take the same visible message. WAL mode keeps readers off writers.

Long polling: a waiting receiver re-checks when the database changes (``PRAGMA data_version``
is a cheap counter, polled every few milliseconds) or when a hidden message's visibility ends.
A send from the same process wakes waiters at once through a condition variable.

Differences from SQS, all on the safe side, and covered by the contract suite:
- A stale receipt (one superseded by a newer delivery) never deletes or extends the message; on
  SQS it may (AWS: "the request succeeds, but the message might not be deleted").
- Delivery order is FIFO by send time (SQS standard queues are roughly ordered).
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, TypeVar

from shared.errors import BackendError, InvalidKey, NotFound
from shared.keys import check_queue_name
from shared.ports import (
    MAX_BODY_BYTES,
    MAX_RECEIVE_BATCH,
    MAX_VISIBILITY_SECONDS,
    MAX_WAIT_SECONDS,
    Message,
    Queue,
    QueueSpec,
)

#: How often a long-polling receiver looks for changes made by other processes.
POLL_INTERVAL: Final = 0.004
BUSY_TIMEOUT_MS: Final = 30_000
#: How often a queue drops messages past their retention period.
EXPIRY_INTERVAL: Final = 60.0

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    visibility_timeout INTEGER NOT NULL,
    dead_letter TEXT,
    max_receives INTEGER NOT NULL,
    retention_seconds INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    token TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, visible_at, seq);
"""


class QueueDatabase:
    """The SQLite file shared by every local queue, with one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        #: Wakes same-process waiters on a send or a visibility change.
        self.changed = threading.Condition()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection().executescript(_SCHEMA)  # idempotent; commits by itself
        except sqlite3.Error as error:
            raise BackendError(f"cannot open local queue {path}: {error}") from None

    def connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                    check_same_thread=False,
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            except sqlite3.Error as error:
                raise BackendError(f"cannot open local queue {self.path}: {error}") from None
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.connection()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise BackendError(f"local queue {self.path} is unavailable: {error}") from None
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in one write transaction, mapping SQLite errors to BackendError."""
        try:
            with self.transaction() as db:
                return work(db)
        except sqlite3.Error as error:
            raise BackendError(f"local queue {self.path} failed: {error}") from None

    def data_version(self) -> int:
        return int(self.connection().execute("PRAGMA data_version").fetchone()[0])

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._connections.clear()
        self._local = threading.local()

    # --- queue management ---------------------------------------------------------------

    def ensure(self, spec: QueueSpec) -> None:
        check_queue_name(spec.name)
        if spec.dead_letter:
            check_queue_name(spec.dead_letter)

        def work(db: sqlite3.Connection) -> None:
            if spec.dead_letter:
                db.execute(
                    "INSERT OR IGNORE INTO queues VALUES (?, ?, NULL, 0, ?)",
                    (spec.dead_letter, spec.visibility_timeout, 14 * 86400),
                )
            db.execute(
                "INSERT INTO queues VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " visibility_timeout=excluded.visibility_timeout,"
                " dead_letter=excluded.dead_letter, max_receives=excluded.max_receives,"
                " retention_seconds=excluded.retention_seconds",
                (spec.name, spec.visibility_timeout, spec.dead_letter, spec.max_receives,
                 spec.retention_seconds),
            )

        self.run(work)

    def spec(self, name: str) -> QueueSpec:
        row = self.connection().execute(
            "SELECT visibility_timeout, dead_letter, max_receives, retention_seconds"
            " FROM queues WHERE name = ?", (name,),
        ).fetchone()
        if row is None:
            raise NotFound(f"queue {name} does not exist")
        return QueueSpec(name, row[0], row[1], row[2] or 3, row[3])

    def drop(self, name: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM messages WHERE queue = ?", (name,))
            db.execute("DELETE FROM queues WHERE name = ?", (name,))

        self.run(work)


def _receipt(seq: int, token: str) -> str:
    return f"{seq}.{token}"


def _parse_receipt(receipt: str) -> tuple[int, str]:
    seq, _, token = receipt.partition(".")
    if not seq.isdigit() or not token:
        raise InvalidKey(f"not a receipt of this queue: {receipt[:40]!r}")
    return int(seq), token


class LocalQueue(Queue):
    def __init__(self, database: QueueDatabase, spec: QueueSpec) -> None:
        self.db = database
        self.name = spec.name
        self.spec = spec
        self._next_expiry = 0.0

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        if len(body.encode()) > MAX_BODY_BYTES:
            raise BackendError(f"message of {len(body.encode())} bytes is over {MAX_BODY_BYTES}")
        message_id = uuid.uuid4().hex
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM queues WHERE name = ?", (self.name,)).fetchone() is None:
                raise NotFound(f"queue {self.name} does not exist")
            db.execute(
                "INSERT INTO messages (id, queue, body, sent_at, visible_at) VALUES (?,?,?,?,?)",
                (message_id, self.name, body, now, now + delay_seconds),
            )

        self.db.run(work)
        self.db.notify()
        return message_id

    def _take(self, limit: int, visibility: int) -> tuple[list[Message], float | None]:
        """Deliver up to ``limit`` visible messages; also when the next hidden one shows."""

        def work(db: sqlite3.Connection) -> tuple[list[Message], float | None]:
            now = time.time()
            spec = self.spec
            if now >= self._next_expiry:
                self._next_expiry = now + EXPIRY_INTERVAL
                db.execute(
                    "DELETE FROM messages WHERE queue = ? AND sent_at < ?",
                    (self.name, now - spec.retention_seconds),
                )
            taken: list[Message] = []
            after = 0
            while len(taken) < limit:
                rows = db.execute(
                    "SELECT seq, id, body, sent_at, receive_count FROM messages"
                    " WHERE queue = ? AND visible_at <= ? AND seq > ? ORDER BY seq LIMIT ?",
                    (self.name, now, after, limit - len(taken)),
                ).fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                for seq, message_id, body, sent_at, count in rows:
                    if spec.dead_letter and count >= spec.max_receives:
                        # Received too often without being deleted: park it, as SQS's redrive.
                        db.execute(
                            "UPDATE messages SET queue = ?, visible_at = ?, receive_count = 0,"
                            " token = NULL WHERE seq = ?", (spec.dead_letter, now, seq),
                        )
                        continue
                    token = secrets.token_hex(8)
                    db.execute(
                        "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?,"
                        " token = ? WHERE seq = ?", (now + visibility, token, seq),
                    )
                    taken.append(Message(message_id, body, _receipt(seq, token), count + 1,
                                         sent_at))
            next_visible = None
            if not taken:
                row = db.execute(
                    "SELECT MIN(visible_at) FROM messages WHERE queue = ?", (self.name,)
                ).fetchone()
                next_visible = row[0]
            return taken, next_visible

        return self.db.run(work)

    def receive(
        self,
        max_messages: int = 1,
        *,
        wait_seconds: float = 0.0,
        visibility_timeout: int | None = None,
    ) -> list[Message]:
        limit = max(1, min(max_messages, MAX_RECEIVE_BATCH))
        visibility = self.spec.visibility_timeout if visibility_timeout is None else (
            visibility_timeout)
        visibility = max(0, min(visibility, MAX_VISIBILITY_SECONDS))
        deadline = time.monotonic() + max(0.0, min(wait_seconds, MAX_WAIT_SECONDS))
        while True:
            version = self.db.data_version()
            taken, next_visible = self._take(limit, visibility)
            if taken:
                return taken
            # Wait for a change: another process committing, a same-process send, or the
            # moment a hidden message becomes visible again.
            wake_at = deadline
            if next_visible is not None:
                wake_at = min(wake_at, time.monotonic() + max(0.0, next_visible - time.time()))
            while True:
                remaining = wake_at - time.monotonic()
                if remaining <= 0:
                    break
                with self.db.changed:
                    if self.db.changed.wait(min(POLL_INTERVAL, remaining)):
                        break
                if self.db.data_version() != version:
                    break
            if time.monotonic() >= deadline:
                taken, _ = self._take(limit, visibility)
                return taken

    def _update(self, receipt: str, sql: str, *args: object) -> int:
        seq, token = _parse_receipt(receipt)
        changed: int = self.db.run(
            lambda db: db.execute(sql, (*args, seq, token, self.name)).rowcount
        )
        return changed

    def delete(self, receipt: str) -> None:
        self._update(receipt, "DELETE FROM messages WHERE seq = ? AND token = ? AND queue = ?")

    def change_visibility(self, receipt: str, seconds: int) -> None:
        seconds = max(0, min(seconds, MAX_VISIBILITY_SECONDS))
        changed = self._update(
            receipt,
            "UPDATE messages SET visible_at = ? WHERE seq = ? AND token = ? AND queue = ?",
            time.time() + seconds,
        )
        if not changed:
            raise NotFound(f"message in {self.name} is no longer held by this receipt")
        if seconds == 0:
            self.db.notify()

    def depth(self) -> tuple[int, int]:
        now = time.time()
        row = self.db.connection().execute(
            "SELECT COALESCE(SUM(visible_at <= ?), 0), COALESCE(SUM(visible_at > ?), 0)"
            " FROM messages WHERE queue = ?", (now, now, self.name),
        ).fetchone()
        return int(row[0]), int(row[1])

    def purge(self) -> None:
        self.db.run(lambda db: db.execute("DELETE FROM messages WHERE queue = ?", (self.name,)))
