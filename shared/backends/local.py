"""The embedded backend: objects in ``<state-dir>/store/<bucket>/``, queues in one SQLite file.

It has the same semantics as the aws backend, so everything runs on one machine without an AWS
account, and several processes (a dashboard, workers) can share one state dir.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

from shared.backends.local_queue import LocalQueue, QueueDatabase
from shared.backends.local_store import LocalStore
from shared.errors import BackendError
from shared.keys import check_queue_name
from shared.ports import Backend, ObjectStore, Queue, QueueSpec

DATA_BUCKET: Final = "data"
LOG_BUCKET: Final = "logs"


class LocalBackend(Backend):
    name = "local"

    def __init__(self, state_dir: Path, *, data_bucket: str | None = None,
                 log_bucket: str | None = None) -> None:
        self.state_dir = state_dir
        self.data_bucket = data_bucket or DATA_BUCKET
        self.log_bucket = log_bucket or LOG_BUCKET
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BackendError(f"cannot create state dir {state_dir}: {error.strerror}") from None
        self._db = QueueDatabase(state_dir / "queues.sqlite3")

    def describe(self) -> str:
        return f"local {self.state_dir}"

    def _bucket_root(self, bucket: str) -> Path:
        return self.state_dir / "store" / check_queue_name(bucket.replace(".", "_"))

    def store(self, bucket: str) -> ObjectStore:
        return LocalStore(self._bucket_root(bucket), bucket)

    def ensure_bucket(self, bucket: str) -> bool:
        root = self._bucket_root(bucket)
        created = not root.is_dir()
        root.mkdir(parents=True, exist_ok=True)
        return created

    def delete_bucket(self, bucket: str) -> None:
        shutil.rmtree(self._bucket_root(bucket), ignore_errors=True)

    def queue(self, name: str) -> Queue:
        return LocalQueue(self._db, self._db.spec(check_queue_name(name)))

    def ensure_queue(self, spec: QueueSpec) -> Queue:
        self._db.ensure(spec)
        return LocalQueue(self._db, self._db.spec(spec.name))

    def delete_queue(self, name: str) -> None:
        self._db.drop(check_queue_name(name))

    def close(self) -> None:
        self._db.close()
