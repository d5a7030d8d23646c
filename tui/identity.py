"""Who this client is: a client id held by exactly one running process.

Identities live in numbered slots in ``<state-dir>/clients/``. A starting client takes the
lowest slot whose lock no running process holds (an ``flock``, released by the kernel when the
holder dies, however it dies) and adopts that slot's client id. So two clients running at once
on one state dir never share an id or a reply queue, and a restarted client takes over the
identity, the jobs and the reply queue of the one it replaces.
"""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from shared.errors import ImgpipeError
from shared.protocol import new_id

MAX_SLOTS: Final = 64
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Identity:
    client_id: str
    slot: int
    _lock: IO[bytes]

    def release(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()


def acquire_identity(state_dir: Path) -> Identity:
    folder = state_dir / "clients"
    folder.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        lock = (folder / f"slot-{slot}.lock").open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        id_file = folder / f"slot-{slot}.id"
        try:
            client_id = id_file.read_text().strip()
        except FileNotFoundError:
            client_id = ""
        if not _ID.fullmatch(client_id):
            client_id = new_id()
            tmp = id_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(client_id + "\n")
            tmp.replace(id_file)
        return Identity(client_id, slot, lock)
    raise ImgpipeError(f"{MAX_SLOTS} clients are already running on {state_dir}")
