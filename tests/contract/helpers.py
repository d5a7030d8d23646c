"""What the contract tests share besides fixtures: settings, capabilities, waiting helpers.

Waiting is on conditions with deadlines, never on fixed sleeps.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from shared.ports import Backend, Message, Queue

BACKENDS = ("local", "aws")
MIB = 1024 * 1024
#: The smallest threshold S3 allows (parts are 5 MiB at least), so a ~12 MiB file is multipart.
MULTIPART_THRESHOLD = 5 * MIB


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one adapter guarantees beyond the weakest common contract."""

    #: A superseded receipt never deletes or extends the newer delivery (SQS: it "might").
    stale_receipt_protected: bool
    #: A waiting receive returns within this many seconds of a send from another thread.
    wakeup_seconds: float
    #: A receive waiting for a redelivery sees it within this long after the visibility ends.
    redelivery_slack: float


CAPABILITIES = {
    "local": Capabilities(stale_receipt_protected=True, wakeup_seconds=0.5, redelivery_slack=0.5),
    # moto re-checks hidden messages once a second while a receive waits.
    "aws": Capabilities(stale_receipt_protected=False, wakeup_seconds=2.0, redelivery_slack=1.5),
}


def open_aws() -> Backend:
    """An aws backend with the small multipart threshold; boto3 is imported only here."""
    from shared.backends.aws import AwsBackend

    return AwsBackend(multipart_threshold=MULTIPART_THRESHOLD, part_size=MULTIPART_THRESHOLD)


def receive_within(
    queue: Queue, seconds: float, *, visibility_timeout: int | None = None
) -> Message | None:
    """Long-poll ``queue`` until one message arrives or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        got = queue.receive(
            1, wait_seconds=min(1.0, remaining), visibility_timeout=visibility_timeout
        )
        if got:
            return got[0]
    return None


def write_random(path: Path, size: int) -> str:
    """A file of ``size`` random bytes; returns its SHA-256."""
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
