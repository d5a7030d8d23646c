"""The client's journal: every job, in SQLite in the state dir, so nothing is lost on a restart.

A client that quits with jobs in flight finds them here when it starts again, with their
original deadlines, and resumes them. The journal also answers "was this file (content and
settings) processed before?" so that start-up does not submit finished files again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final

from shared.sqlite import connect
from tui.jobs import FINAL, Job, State, TagSpec

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    job_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    input_format TEXT,
    output_format TEXT NOT NULL,
    tag TEXT,
    timeout REAL NOT NULL,
    settings_key TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    submitted_at REAL,
    deadline REAL,
    finished_at REAL,
    output_path TEXT,
    output_sha256 TEXT,
    output_bytes INTEGER,
    width INTEGER,
    height INTEGER,
    worker_id TEXT,
    timings TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    hidden INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_client ON jobs (client_id, state);
CREATE INDEX IF NOT EXISTS jobs_by_content ON jobs (sha256, settings_key);
"""

_COLUMNS: Final = (
    "job_id", "source", "name", "size", "sha256", "input_format", "output_format", "tag",
    "timeout", "settings_key", "state", "reason", "created_at", "submitted_at", "deadline",
    "finished_at", "output_path", "output_sha256", "output_bytes", "width", "height",
    "worker_id", "timings", "attempts",
)


class Journal:
    """Thread-safe: one connection per thread, every write a short transaction."""

    def __init__(self, path: Path, client_id: str) -> None:
        self.path = path
        self.client_id = client_id
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            self._local.db = db
        return db

    @staticmethod
    def _values(job: Job) -> dict[str, Any]:
        tag = None if job.tag is None else json.dumps(job.tag.__dict__)
        return {
            "job_id": job.job_id, "source": str(job.source), "name": job.name, "size": job.size,
            "sha256": job.sha256, "input_format": job.input_format,
            "output_format": job.output_format, "tag": tag, "timeout": job.timeout,
            "settings_key": job.settings_key(), "state": job.state.value, "reason": job.reason,
            "created_at": job.created_at, "submitted_at": job.submitted_at,
            "deadline": job.deadline, "finished_at": job.finished_at,
            "output_path": None if job.output_path is None else str(job.output_path),
            "output_sha256": job.output_sha256, "output_bytes": job.output_bytes,
            "width": job.width, "height": job.height, "worker_id": job.worker_id,
            "timings": json.dumps(job.timings), "attempts": job.attempts,
        }

    def add(self, job: Job) -> Job:
        """Insert a new job; sets and returns it with its row number."""
        values = self._values(job)
        columns = ", ".join(("client_id", *values))
        marks = ", ".join("?" * (len(values) + 1))
        cursor = self._db().execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})",  # noqa: S608
                                    (self.client_id, *values.values()))
        job.row = int(cursor.lastrowid or 0)
        return job

    def save(self, job: Job) -> None:
        values = self._values(job)
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._db().execute(f"UPDATE jobs SET {assignments} WHERE row = ?",  # noqa: S608
                           (*values.values(), job.row))

    def hide(self, rows: list[int]) -> None:
        """Forget rows on screen (``c`` clears finished rows); they still count as processed."""
        self._db().executemany("UPDATE jobs SET hidden = 1 WHERE row = ?", [(r,) for r in rows])

    def processed(self, sha256: str, settings_key: str) -> bool:
        """Was this content, with these settings, done or under way already (by anyone)?"""
        row = self._db().execute(
            "SELECT 1 FROM jobs WHERE sha256 = ? AND settings_key = ? AND state IN (?,?,?,?,?,?)"
            " LIMIT 1",
            (sha256, settings_key, State.DONE.value, State.WAITING.value, State.UPLOADING.value,
             State.QUEUED.value, State.PROCESSING.value, State.DOWNLOADING.value),
        ).fetchone()
        return row is not None

    def done_twins(self, sha256: str, settings_key: str) -> list[Job]:
        """Finished conversions of this content with these settings (by any client), newest
        first."""
        rows = self._db().execute(
            f"SELECT row, {', '.join(_COLUMNS)} FROM jobs WHERE sha256 = ? AND "  # noqa: S608
            "settings_key = ? AND state = ? ORDER BY row DESC",
            (sha256, settings_key, State.DONE.value),
        ).fetchall()
        return [self._job(row) for row in rows]

    def load(self, *, include_hidden: bool = False) -> list[Job]:
        """This client's jobs, oldest first."""
        sql = f"SELECT row, {', '.join(_COLUMNS)} FROM jobs WHERE client_id = ?"  # noqa: S608
        if not include_hidden:
            sql += " AND hidden = 0"
        rows = self._db().execute(sql + " ORDER BY row", (self.client_id,)).fetchall()
        return [self._job(row) for row in rows]

    def by_job_id(self, job_id: str) -> Job | None:
        row = self._db().execute(
            f"SELECT row, {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?",  # noqa: S608
            (job_id,),
        ).fetchone()
        return None if row is None else self._job(row)

    @staticmethod
    def _job(row: tuple[Any, ...]) -> Job:
        data = dict(zip(("row", *_COLUMNS), row, strict=True))
        tag = data["tag"]
        return Job(
            row=data["row"], job_id=data["job_id"], source=Path(data["source"]),
            name=data["name"], size=data["size"], sha256=data["sha256"],
            input_format=data["input_format"], output_format=data["output_format"],
            tag=None if tag is None else TagSpec(**json.loads(tag)), timeout=data["timeout"],
            state=State(data["state"]), reason=data["reason"], created_at=data["created_at"],
            submitted_at=data["submitted_at"], deadline=data["deadline"],
            finished_at=data["finished_at"],
            output_path=None if data["output_path"] is None else Path(data["output_path"]),
            output_sha256=data["output_sha256"], output_bytes=data["output_bytes"],
            width=data["width"], height=data["height"], worker_id=data["worker_id"],
            timings=json.loads(data["timings"] or "{}"), attempts=data["attempts"],
        )

    def unfinished(self) -> list[Job]:
        return [job for job in self.load(include_hidden=True) if job.state not in FINAL]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
