"""Object keys and queue names, built only from ids that the protocol has validated.

User file names never reach a key: a name is data shown to people, a key is an address.
"""

from __future__ import annotations

import re
from typing import Final

from shared.errors import InvalidKey
from shared.formats import EXTENSIONS

INPUT_PREFIX: Final = "in/"
RESULT_PREFIX: Final = "out/"
LOG_PREFIX: Final = "oplog/"

_ID = re.compile(r"^[0-9a-f]{32}$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def _id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise InvalidKey(f"not an imgpipe id: {value[:40]!r}")
    return value


def check_key(key: str) -> str:
    """Refuse any key outside the safe alphabet or with '.'/'..' segments."""
    if not _KEY.fullmatch(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey(f"invalid object key: {key[:80]!r}")
    return key


def check_queue_name(name: str) -> str:
    if not _QUEUE.fullmatch(name):
        raise InvalidKey(f"invalid queue name {name[:80]!r}: use 1-80 letters, digits, - or _")
    return name


def input_key(client_id: str, job_id: str) -> str:
    return f"{INPUT_PREFIX}{_id(client_id)}/{_id(job_id)}"


def result_key(client_id: str, job_id: str, fmt: str) -> str:
    return f"{RESULT_PREFIX}{_id(client_id)}/{_id(job_id)}.{EXTENSIONS[fmt]}"


def reply_key(client_id: str, job_id: str) -> str:
    """The worker's final answer, kept beside the result so a redelivery re-sends it as is."""
    return f"{RESULT_PREFIX}{_id(client_id)}/{_id(job_id)}.reply.json"


def reply_queue_name(request_queue: str, client_id: str) -> str:
    """Each client's own reply queue, so no client can take another's replies."""
    return check_queue_name(f"{request_queue[:40]}-reply-{_id(client_id)}")


def dead_letter_name(queue: str) -> str:
    return check_queue_name(f"{queue[:76]}-dlq")
