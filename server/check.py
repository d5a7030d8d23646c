"""``imgserver check``: one pass/fail line per item, exit 1 on any failure.

Permissions are proved by doing, not by reading policies: a probe object is written, read and
deleted in the data bucket, and a probe message is sent to the request queue, received and
deleted. Workers recognise probe messages and drop them silently, so a check never disturbs
real work; a real request received by the check is released at once.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ImgpipeError, NotFound
from shared.ports import Backend
from shared.protocol import encode_probe, is_probe, new_id


@dataclass(frozen=True)
class Item:
    name: str
    ok: bool
    detail: str

    def render(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<22} {self.detail}"


def _try(name: str, step: Callable[[], str]) -> Item:
    try:
        return Item(name, True, step())
    except ImgpipeError as error:
        return Item(name, False, str(error))
    except OSError as error:
        return Item(name, False, f"{error.strerror or error}")


def check_backend(backend: Backend, queue_name: str) -> list[Item]:
    items = [_try("backend reachable", lambda: _reachable(backend, queue_name))]
    if not items[0].ok:
        return items
    items.append(_try("store put/get/delete", lambda: _store_round_trip(backend)))
    items.append(_try("queue send/receive/del", lambda: _queue_round_trip(backend, queue_name)))
    return items


def _reachable(backend: Backend, queue_name: str) -> str:
    try:
        queue = backend.queue(queue_name)
    except NotFound as error:
        raise NotFound(f"{error} (run 'imgserver init')") from None
    visible, in_flight = queue.depth()
    return f"{backend.describe()}: {queue_name} has {visible} waiting, {in_flight} in flight"


def _store_round_trip(backend: Backend) -> str:
    store = backend.store(backend.data_bucket)
    key = f"check/{new_id()}"
    payload = f"imgpipe check {time.time()}".encode()
    try:
        store.put_bytes(key, payload)
        with tempfile.TemporaryDirectory(prefix="imgpipe-check-") as folder:
            target = Path(folder) / "probe"
            store.get_file(key, target)
            if target.read_bytes() != payload:
                return "read back different bytes"  # pragma: no cover - get_file verifies
    finally:
        with contextlib.suppress(ImgpipeError):
            store.delete(key)
    return f"bucket {backend.data_bucket}"


def _queue_round_trip(backend: Backend, queue_name: str) -> str:
    queue = backend.queue(queue_name)
    probe_id = new_id()
    queue.send(encode_probe(probe_id))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for message in queue.receive(1, wait_seconds=1, visibility_timeout=5):
            if is_probe(message.body, probe_id):
                queue.delete(message.receipt)
                return f"queue {queue_name}"
            with contextlib.suppress(ImgpipeError):
                queue.release(message.receipt)
    # A running worker took the probe first: sending and receiving still worked.
    return f"queue {queue_name} (probe taken by a running worker)"
