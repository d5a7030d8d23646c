"""SQS semantics on one SQLite file, safe across threads and processes.

Every state change is one ``BEGIN IMMEDIATE`` transaction, so two consumers (threads or
processes) can never both take the same visible message. WAL mode keeps readers off writers.

Long polling: a waiting receiver re-checks when the database changes (``PRAGMA data_version``
is a cheap counter, polled every few milliseconds) or when a hidden message's visibility ends.
A send from the same process wakes waiters at once through a condition variable.

Differences from SQS, all on the safe side, and covered by the contract suite (the full list,
with how imgpipe copes, is in ``shared/backends/aws.py``):
- A stale receipt (one superseded by a newer delivery) never deletes or extends the message; on
  SQS it may (AWS: "the request succeeds, but the message might not be deleted").
- Delivery order is FIFO by send time (SQS standard queues are roughly ordered).
- Counts are exact, short polls see every message, waits are exact to the millisecond.
- A dead-lettered message's receive count restarts at zero.

What SQS refuses, this queue refuses too (``check_send``, ``check_spec``), and its settings are
read at every receive, as SQS applies attributes server-side.
"""

from __future__ import annotations

import contextlib
import re
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
from shared.sqlite import connect

#: How often a long-polling receiver looks for changes made by other processes.
POLL_INTERVAL: Final = 0.004
BUSY_TIMEOUT_MS: Final = 30_000
#: How often a queue drops messages past their retention period.
EXPIRY_INTERVAL: Final = 60.0

_T = TypeVar("_T")

# SQS's rules for a send, enforced by both queues (the aws one imports them from here), so a
# message that the local queue takes is one SQS takes too.
#: SQS's longest delivery delay.
MAX_DELAY_SECONDS: Final = 15 * 60
#: Characters SQS refuses in a body: it allows #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD
#: and #x10000-#x10FFFF.
_FORBIDDEN_IN_BODY: Final = re.compile(
    "[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


#: SQS's bounds for a queue's settings.
MIN_RETENTION_SECONDS: Final = 60
MAX_RETENTION_SECONDS: Final = 14 * 86400
MAX_RECEIVE_COUNT: Final = 1000


def check_spec(spec: QueueSpec) -> None:
    """Refuse queue settings SQS would refuse; names raise ``InvalidKey``."""
    check_queue_name(spec.name)
    if spec.dead_letter is not None:
        check_queue_name(spec.dead_letter)
    for label, value, low, high in (
        ("visibility timeout", spec.visibility_timeout, 0, MAX_VISIBILITY_SECONDS),
        ("retention", spec.retention_seconds, MIN_RETENTION_SECONDS, MAX_RETENTION_SECONDS),
        ("max receives", spec.max_receives, 1, MAX_RECEIVE_COUNT),
    ):
        if not low <= value <= high:
            raise BackendError(f"queue {spec.name}: {label} {value} is outside {low} to {high}")


def check_send(body: str, delay_seconds: int) -> None:
    """Refuse what SQS would: a body over ``MAX_BODY_BYTES`` or holding a character it does
    not allow, or a delay outside 0 to ``MAX_DELAY_SECONDS``."""
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise BackendError(f"message of {size} bytes is over {MAX_BODY_BYTES}")
    if bad := _FORBIDDEN_IN_BODY.search(body):
        raise BackendError(
            f"message holds a character queues refuse: U+{ord(bad.group()):04X} "
            f"at {bad.start()}"
        )
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise BackendError(
            f"delay of {delay_seconds} s is outside 0 to {MAX_DELAY_SECONDS} s"
        )

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
                db = connect(self.path, busy_timeout=BUSY_TIMEOUT_MS / 1000)
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
        check_spec(spec)

        def work(db: sqlite3.Connection) -> None:
            if spec.dead_letter:
                db.execute(
                    "INSERT OR IGNORE INTO queues VALUES (?, ?, NULL, 0, ?)",
                    (spec.dead_letter, spec.visibility_timeout, MAX_RETENTION_SECONDS),
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
        try:
            return _read_spec(self.connection(), name)
        except sqlite3.Error as error:
            raise BackendError(f"local queue {self.path} failed: {error}") from None

    def drop(self, name: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM messages WHERE queue = ?", (name,))
            db.execute("DELETE FROM queues WHERE name = ?", (name,))

        self.run(work)


def _read_spec(db: sqlite3.Connection, name: str) -> QueueSpec:
    row = db.execute(
        "SELECT visibility_timeout, dead_letter, max_receives, retention_seconds"
        " FROM queues WHERE name = ?", (name,),
    ).fetchone()
    if row is None:
        raise NotFound(f"queue {name} does not exist")
    return QueueSpec(name, row[0], row[1], row[2] or 3, row[3])


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
        check_send(body, delay_seconds)
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

    def _take(
        self, limit: int, visibility_timeout: int | None
    ) -> tuple[list[Message], float | None]:
        """Deliver up to ``limit`` visible messages; also when the next hidden one shows.

        The queue's settings are read in the same transaction, as SQS applies its attributes
        server-side: a later ``ensure_queue`` changes them for every open handle, and a queue
        deleted meanwhile raises ``NotFound`` (it used to look empty forever).
        """

        def work(db: sqlite3.Connection) -> tuple[list[Message], float | None]:
            now = time.time()
            spec = self.spec = _read_spec(db, self.name)
            visibility = spec.visibility_timeout if visibility_timeout is None else (
                visibility_timeout)
            visibility = max(0, min(visibility, MAX_VISIBILITY_SECONDS))
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
        deadline = time.monotonic() + max(0.0, min(wait_seconds, MAX_WAIT_SECONDS))
        while True:
            version = self.db.data_version()
            taken, next_visible = self._take(limit, visibility_timeout)
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
                taken, _ = self._take(limit, visibility_timeout)
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
        # In flight means delivered and hidden (it has a receipt token); a delayed message that
        # was never delivered counts in neither number, as in SQS.
        now = time.time()
        row = self.db.connection().execute(
            "SELECT COALESCE(SUM(visible_at <= ?), 0),"
            " COALESCE(SUM(visible_at > ? AND token IS NOT NULL), 0)"
            " FROM messages WHERE queue = ?", (now, now, self.name),
        ).fetchone()
        return int(row[0]), int(row[1])

    def purge(self) -> None:
        self.db.run(lambda db: db.execute("DELETE FROM messages WHERE queue = ?", (self.name,)))
