"""One S3 bucket as an ``ObjectStore``, with SHA-256 verified both ways.

Small objects (below the multipart threshold: nearly every image) move in one request each, a
PutObject or a GetObject, with no transfer manager. Large ones go through s3transfer (boto3's
transfer manager) in parallel parts, streamed from and to disk. Every upload carries a SHA-256
checksum that S3 checks, and the object's *full* SHA-256 is kept in the user metadata
``sha256``: a multipart object's own checksum is a checksum of part checksums, which nobody
else can recompute.

Integrity, step by step:

- ``put_file`` hashes the file first (the metadata has to be sent before the bytes) and refuses
  a mismatch with the promised ``sha256`` before sending anything. A single PUT then streams
  the file through a reader that hashes it again and carries the SHA-256 itself, which S3
  verifies (moto does not): a file changed in between fails the PUT. A multipart upload is
  read by file name (so its memory stays flat), and the file is hashed once more afterwards;
  if it changed, the object is deleted before anyone is told its key.
- ``get_file`` issues one GET, which answers size, ETag and the recorded SHA-256 with the
  bytes; a small body is hashed as it is written, a large object is handed to s3transfer,
  whose ranged GETs are pinned to that ETag with ``If-Match`` and written in order through a
  hashing sink (no second pass). The bytes land in a temp file beside ``dest`` that replaces
  it only once verified.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from boto3.s3.transfer import (  # type: ignore[import-untyped, unused-ignore]
    TransferConfig,
    create_transfer_manager,
)

from shared.backends.aws_errors import translate
from shared.errors import ChecksumMismatch, NotFound
from shared.keys import check_key
from shared.ports import ObjectInfo, ObjectStore, Progress

#: User-metadata key holding the full-object SHA-256 in hex.
SHA256_METADATA: Final = "sha256"
MIB: Final = 1024 * 1024
#: Files at least this big go up and down in parts; S3 takes parts of 5 MiB at least.
MULTIPART_THRESHOLD: Final = 16 * MIB
PART_SIZE: Final = 8 * MIB
MIN_PART_SIZE: Final = 5 * MIB
#: Parallel part transfers per file; a worker may move several files at once.
TRANSFER_THREADS: Final = 4
#: Parts held in memory per transfer, ahead of the disk or the network.
PARTS_IN_MEMORY: Final = 2 * TRANSFER_THREADS
#: Bytes read at a time from a single GET's body.
STREAM_CHUNK: Final = 1024 * 1024
#: Objects per ListObjectsV2 page (S3's maximum).
LIST_PAGE_SIZE: Final = 1000


def transfer_config(
    multipart_threshold: int = MULTIPART_THRESHOLD, part_size: int = PART_SIZE
) -> Any:
    """s3transfer settings; always the classic (pure Python) client, whose callbacks we use."""
    config = TransferConfig(
        multipart_threshold=multipart_threshold,
        multipart_chunksize=max(part_size, MIN_PART_SIZE),
        max_concurrency=TRANSFER_THREADS,
        preferred_transfer_client="classic",
    )
    # Our upload source is a file object and our download target a stream, so parts pass
    # through memory: bound how many (s3transfer defaults: 10 up, 1000 down).
    config.max_in_memory_upload_chunks = PARTS_IN_MEMORY
    config.max_in_memory_download_chunks = PARTS_IN_MEMORY
    return config


class _ProgressTotal:
    """Turns s3transfer's per-chunk amounts (from several threads, negative on a retry) into
    the cumulative count the ``Progress`` port promises. The callback runs under the lock, so
    its calls are never reordered between threads."""

    def __init__(self, callback: Progress | None) -> None:
        self._callback = callback
        self._done = 0
        self._lock = threading.Lock()

    def add(self, amount: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            self._done = max(0, self._done + amount)
            self._callback(self._done)


class _Subscriber:
    """An s3transfer subscriber: gives it what we already know, and reports progress."""

    def __init__(self, total: _ProgressTotal, size: int, etag: str | None = None) -> None:
        self._total = total
        self._size = size
        self._etag = etag

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self._size)
        if self._etag is not None:
            future.meta.provide_object_etag(self._etag)

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        self._total.add(bytes_transferred)


class _VerifyingReader:
    """The file as s3transfer reads it, hashed on the way so a changed file fails the upload.

    s3transfer may seek back to re-send a part (a retry); bytes are hashed the first time each
    offset is read, so re-reads count once. When the last byte has been read and the digest
    differs, every read raises ``ChecksumMismatch``: for a multipart upload that happens
    before ``CompleteMultipartUpload``, for a single PUT before the body is fully sent.
    """

    def __init__(self, raw: BinaryIO, size: int, sha256: str, label: str) -> None:
        self._raw = raw
        self._size = size
        self._expected = sha256
        self._label = label
        self._digest = hashlib.sha256()
        self._hashed = 0
        self._failed: ChecksumMismatch | None = None

    def read(self, amount: int = -1) -> bytes:
        if self._failed is not None:
            raise self._failed
        start = self._raw.tell()
        data = self._raw.read(amount)
        end = start + len(data)
        if start <= self._hashed < end:
            self._digest.update(memoryview(data)[self._hashed - start :])
            self._hashed = end
        if self._hashed >= self._size:
            self.verify()
        return data

    def verify(self) -> None:
        """Raise ``ChecksumMismatch`` unless exactly the promised bytes were read."""
        if self._failed is None and (
            self._hashed != self._size or self._digest.hexdigest() != self._expected
        ):
            self._failed = ChecksumMismatch(
                f"{self._label} changed while it was uploading; nothing was stored"
            )
        if self._failed is not None:
            raise self._failed

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        """s3transfer closes what it sent; the file itself is ``put_file``'s to close."""


class _HashingWriter:
    """A write-only sink that hashes what passes; not seekable, so s3transfer writes in order."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        self.size += len(data)
        return self._sink.write(data)

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _hash_file(raw: io.BufferedReader) -> tuple[str, int]:
    """SHA-256 and size of an open file, read from its start; leaves it at the start."""
    raw.seek(0)
    digest = hashlib.file_digest(raw, "sha256").hexdigest()
    size = raw.tell()
    raw.seek(0)
    return digest, size


def _sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


class S3Store(ObjectStore):
    """The objects of one bucket; thread-safe (boto3 clients are)."""

    def __init__(self, client: Any, bucket: str, config: Any) -> None:
        self.bucket = bucket
        self._s3 = client
        self._config = config

    def _where(self, verb: str, key: str) -> str:
        return f"{verb} {key} {'to' if verb == 'put' else 'in'} bucket {self.bucket}"

    def put_file(
        self, key: str, path: Path, *, sha256: str | None = None, progress: Progress | None = None
    ) -> ObjectInfo:
        check_key(key)
        try:
            raw = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"file to upload is gone: {path}") from None
        with raw:
            digest, size = _hash_file(raw)
            if sha256 is not None and digest != sha256:
                raise ChecksumMismatch(
                    f"upload of {path.name} refused: sha256 {digest[:12]}…, "
                    f"expected {sha256[:12]}…; nothing was stored"
                )
            what = self._where("put", key)
            metadata = {SHA256_METADATA: digest}
            if size < self._config.multipart_threshold:
                # One PUT, streamed from the file through the verifying reader; S3 checks the
                # whole body against the SHA-256 it carries. No transfer manager, no threads.
                reader = _VerifyingReader(raw, size, digest, path.name)
                with translate(what):
                    self._s3.put_object(
                        Bucket=self.bucket, Key=key, Body=reader, ContentLength=size,
                        ChecksumSHA256=_sha256_b64(digest), Metadata=metadata,
                    )
                reader.verify()
                if progress is not None:
                    progress(size)
                return ObjectInfo(key=key, size=size, sha256=digest)
        # Large: s3transfer streams a named file part by part from disk, so memory stays flat
        # whatever the size. A file changed meanwhile is caught by hashing it again after the
        # upload (from the page cache): the object is deleted before anyone is told its key.
        subscriber = _Subscriber(_ProgressTotal(progress), size)
        extra: dict[str, Any] = {"ChecksumAlgorithm": "SHA256", "Metadata": metadata}
        with translate(what), create_transfer_manager(self._s3, self._config) as manager:
            manager.upload(str(path), self.bucket, key, extra_args=extra,
                           subscribers=[subscriber]).result()
        try:
            with path.open("rb") as again:
                unchanged = _hash_file(again) == (digest, size)
        except FileNotFoundError:
            unchanged = False
        if not unchanged:
            with translate(what):
                self._s3.delete_object(Bucket=self.bucket, Key=key)
            raise ChecksumMismatch(f"{path.name} changed while it was uploading; "
                                   "nothing was stored")
        return ObjectInfo(key=key, size=size, sha256=digest)

    def get_file(
        self, key: str, dest: Path, *, sha256: str | None = None, progress: Progress | None = None
    ) -> ObjectInfo:
        check_key(key)
        what = self._where("get", key)
        # One GET answers size, ETag and the recorded SHA-256 with the bytes: a small object
        # (nearly every image) costs one request. A large one is handed to s3transfer for
        # parallel ranged GETs pinned to that ETag.
        with translate(what):
            response = self._s3.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        size = int(response["ContentLength"])
        recorded = (response.get("Metadata") or {}).get(SHA256_METADATA)
        expected = sha256 or recorded
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        body = response["Body"]
        try:
            with tmp.open("wb") as sink:
                writer = _HashingWriter(sink)
                total = _ProgressTotal(progress)
                if size < self._config.multipart_threshold:
                    with translate(what):
                        for chunk in body.iter_chunks(STREAM_CHUNK):
                            writer.write(chunk)
                            total.add(len(chunk))
                else:
                    body.close()
                    subscriber = _Subscriber(total, size, response.get("ETag"))
                    with translate(what), create_transfer_manager(self._s3,
                                                                  self._config) as manager:
                        manager.download(
                            self.bucket, key, writer,
                            extra_args={"ChecksumMode": "ENABLED"}, subscribers=[subscriber],
                        ).result()
            digest = writer.hexdigest()
            if (expected is not None and digest != expected) or writer.size != size:
                dest.unlink(missing_ok=True)
                raise ChecksumMismatch(
                    f"download of {key} is corrupt: sha256 {digest[:12]}…, "
                    f"expected {(expected or '?')[:12]}…"
                )
            tmp.replace(dest)
        finally:
            body.close()
            tmp.unlink(missing_ok=True)
        return ObjectInfo(key=key, size=size, sha256=digest)

    def head(self, key: str) -> ObjectInfo:
        check_key(key)
        with translate(self._where("head", key)):
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            sha256=(head.get("Metadata") or {}).get(SHA256_METADATA),
        )

    def delete(self, key: str) -> None:
        check_key(key)
        with translate(self._where("delete", key)):
            self._s3.delete_object(Bucket=self.bucket, Key=key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        what = f"list {prefix or '/'} in bucket {self.bucket}"
        with translate(what):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    yield ObjectInfo(key=item["Key"], size=int(item["Size"]), sha256=None)
