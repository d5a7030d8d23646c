"""The wire protocol: a job request (client → worker) and a job result (worker → client).

Both are JSON objects with a schema version ``v``. Decoding is strict: unknown versions, missing
or mistyped fields, oversized strings and hostile file names all raise ``ProtocolError`` with a
message that says which field and why; nothing else ever escapes ``decode_request`` or
``decode_result``. Every message is untrusted on both sides.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Annotated, Any, Final, Literal

import msgspec

from shared.errors import ProtocolError
from shared.formats import InputFormat, OutputFormat

SCHEMA_VERSION: Final = 1

#: SQS refuses bodies over 256 KiB; ours are a few hundred bytes, so anything large is hostile.
MAX_BODY_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 255
MAX_TAG_CHARS: Final = 200
MAX_MESSAGE_CHARS: Final = 500
MAX_OBJECT_BYTES: Final = 5 * 1024**3  # 5 GiB: S3's single-PUT ceiling, far beyond any image

ID_PATTERN: Final = r"^[0-9a-f]{32}$"
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
KEY_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$"
QUEUE_NAME_PATTERN: Final = r"^[A-Za-z0-9_-]{1,80}$"
COLOR_PATTERN: Final = r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,30})$"
WORKER_PATTERN: Final = r"^[A-Za-z0-9._:@-]{1,128}$"

JobId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Sha256 = Annotated[str, msgspec.Meta(pattern=SHA256_PATTERN)]
ObjectKey = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN)]
QueueName = Annotated[str, msgspec.Meta(pattern=QUEUE_NAME_PATTERN)]
ByteCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_OBJECT_BYTES)]
Timestamp = Annotated[float, msgspec.Meta(ge=0, le=32503680000)]  # before the year 3000
Pixels = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]

#: Control characters and bidirectional overrides (which could fool a terminal or a reader:
#: "Trojan Source"), and what SQS refuses to carry.
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
    r"\ud800-\udfff\ufffe\uffff]"
)

ErrorCode = Literal[
    "bad_request",       # the request itself is invalid
    "unsupported_input",  # not an allowed raster format (or empty)
    "corrupt_input",     # sniffed as an image but cannot be decoded
    "too_large",         # over a width/height/area/frames/bytes limit
    "timeout",           # conversion exceeded its wall-clock limit
    "unsupported_output",  # the output format cannot be written here
    "input_missing",     # the input object is gone (cancelled or expired)
    "checksum_mismatch",  # the input does not hash to what the request promised
    "cancelled",         # the client withdrew the request
    "expired",           # the deadline passed before work started
    "internal",          # a bug or an environment fault on the worker
]
Status = Literal["done", "failed", "expired"]
TagMode = Literal["tile", "corner"]


def check_file_name(name: str) -> str:
    """Validate an original file name as carried in a request; returns it unchanged.

    Names are data shown to users and used for nothing else (keys come from ids), but they
    still must not carry path separators or control characters that could fool a terminal.
    """
    if not name or len(name) > MAX_NAME_CHARS:
        raise ValueError(f"file name must be 1 to {MAX_NAME_CHARS} characters")
    if "/" in name or "\\" in name:
        raise ValueError("file name must not contain a path separator")
    if _CONTROL.search(name):
        raise ValueError("file name must not contain control characters")
    if name in (".", ".."):
        raise ValueError("file name must not be '.' or '..'")
    return name


def clean_file_name(name: str) -> str:
    """A user's file name made acceptable to ``check_file_name`` (for display and requests)."""
    cleaned = _CONTROL.sub("_", name.replace("/", "_").replace("\\", "_"))[:MAX_NAME_CHARS]
    return cleaned if cleaned not in ("", ".", "..") else "image"


def check_tag_text(text: str) -> str:
    """Validate tag text: bounded, printable. Its rendering neutralises escapes (server side)."""
    if len(text) > MAX_TAG_CHARS:
        raise ValueError(f"tag text must be at most {MAX_TAG_CHARS} characters")
    if _CONTROL.search(text):
        raise ValueError("tag text must not contain control characters")
    return text


class _Struct(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=False, frozen=True):
    """Base: unknown fields are ignored so that a newer minor writer stays readable."""


class TagOptions(_Struct, frozen=True):
    """How to tag the image. The lab's default: its text tiled over the whole image."""

    text: str = "processed by imgpipe"
    mode: TagMode = "tile"
    point_size: Annotated[int, msgspec.Meta(ge=6, le=200)] = 20
    color: Annotated[str, msgspec.Meta(pattern=COLOR_PATTERN)] = "black"

    def __post_init__(self) -> None:
        check_tag_text(self.text)


class Operations(_Struct, frozen=True):
    """What to do with the input: the output format, and the tag (None: no tag)."""

    format: OutputFormat = "png"
    tag: TagOptions | None = TagOptions()


class InputRef(_Struct, frozen=True):
    """The uploaded input object and what the client knows about it."""

    key: ObjectKey
    sha256: Sha256
    bytes: ByteCount
    name: str
    format: InputFormat | None = None

    def __post_init__(self) -> None:
        check_file_name(self.name)


class OutputRef(_Struct, frozen=True):
    """The result object written by the worker."""

    key: ObjectKey
    sha256: Sha256
    bytes: ByteCount
    format: OutputFormat
    width: Pixels
    height: Pixels


class JobError(_Struct, frozen=True):
    """Why a job failed: a stable code for programs and a short reason for people."""

    code: ErrorCode
    message: Annotated[str, msgspec.Meta(max_length=MAX_MESSAGE_CHARS)]


class JobRequest(_Struct, frozen=True, tag="request", tag_field="kind"):
    """A client asks for one image to be converted; the worker answers on ``reply_to``."""

    job_id: JobId
    client_id: JobId
    reply_to: QueueName
    input: InputRef
    ops: Operations
    submitted_at: Timestamp
    deadline: Timestamp
    v: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.deadline < self.submitted_at:
            raise ValueError("deadline must not be before submitted_at")


StageName = Literal["queue_wait", "download", "convert", "upload", "total"]
Timings = dict[
    Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,32}$")],
    Annotated[float, msgspec.Meta(ge=0, le=86400 * 30)],
]


class JobResult(_Struct, frozen=True, tag="result", tag_field="kind"):
    """The worker's answer: done with an output, failed with an error, or expired."""

    job_id: JobId
    client_id: JobId
    status: Status
    worker_id: Annotated[str, msgspec.Meta(pattern=WORKER_PATTERN)]
    output: OutputRef | None = None
    error: JobError | None = None
    timings: Annotated[Timings, msgspec.Meta(max_length=16)] = {}
    finished_at: Timestamp = 0.0
    v: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status == "done" and self.output is None:
            raise ValueError("a done result must carry an output")
        if self.status != "done" and self.error is None:
            raise ValueError(f"a {self.status} result must carry an error")


class JobProgress(_Struct, frozen=True, tag="progress", tag_field="kind"):
    """A notice on the reply queue that a worker has started on the job (not final)."""

    job_id: JobId
    client_id: JobId
    worker_id: Annotated[str, msgspec.Meta(pattern=WORKER_PATTERN)]
    stage: Literal["processing"] = "processing"
    at: Timestamp = 0.0
    v: int = SCHEMA_VERSION


Message = JobRequest | JobResult | JobProgress
Reply = JobResult | JobProgress

_encoder = msgspec.json.Encoder()
_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    "request": msgspec.json.Decoder(JobRequest),
    "result": msgspec.json.Decoder(JobResult),
    "reply": msgspec.json.Decoder(Reply),
}
_version_probe = msgspec.json.Decoder(dict[str, object])


def new_id() -> str:
    """A fresh job or client id: 32 lower-case hex digits."""
    return uuid.uuid4().hex


def encode(message: Message) -> str:
    """The JSON text of a request or result."""
    return _encoder.encode(message).decode()


def _decode(body: str | bytes, what: str, kinds: tuple[str, ...]) -> Any:
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise ProtocolError(f"invalid {what}: body is {len(raw)} bytes, over {MAX_BODY_BYTES}")
    try:
        probe = _version_probe.decode(raw)
    except msgspec.ValidationError:
        raise ProtocolError(f"invalid {what}: not a JSON object") from None
    except msgspec.DecodeError as error:
        raise ProtocolError(f"invalid {what}: malformed JSON ({error})") from None
    version = probe.get("v")
    if version != SCHEMA_VERSION:
        raise ProtocolError(
            f"invalid {what}: unknown schema version {version!r} (this build speaks "
            f"{SCHEMA_VERSION})"
        )
    if probe.get("kind") not in kinds:
        raise ProtocolError(f"invalid {what}: kind is {probe.get('kind')!r}, not {what!r}")
    try:
        return _decoders[what].decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise ProtocolError(f"invalid {what}: {error}") from None


def decode_request(body: str | bytes) -> JobRequest:
    """Parse and validate a request body; raises ``ProtocolError`` and nothing else."""
    request: JobRequest = _decode(body, "request", ("request",))
    return request


def decode_result(body: str | bytes) -> JobResult:
    """Parse and validate a result body; raises ``ProtocolError`` and nothing else."""
    result: JobResult = _decode(body, "result", ("result",))
    return result


def decode_reply(body: str | bytes) -> Reply:
    """Parse anything a worker puts on a reply queue: a result or a progress notice."""
    reply: Reply = _decode(body, "reply", ("result", "progress"))
    return reply


def encode_probe(probe_id: str) -> str:
    """A message ``imgserver check`` sends to prove queue permissions; workers drop it."""
    return _encoder.encode({"v": SCHEMA_VERSION, "kind": "probe", "probe_id": probe_id}).decode()


def is_probe(body: str, probe_id: str | None = None) -> bool:
    """True for a check probe (and, given ``probe_id``, that exact one)."""
    if '"probe"' not in body or len(body) > 200:
        return False
    try:
        data = _version_probe.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    return data.get("kind") == "probe" and (probe_id is None or data.get("probe_id") == probe_id)


def now() -> float:
    """Wall-clock time as carried in messages (seconds since the epoch, UTC)."""
    return time.time()
