"""A directory as an object store, with S3's all-or-nothing visibility of objects.

Writes go to a temp file in the same directory tree, are fsynced, then renamed into place, so a
reader sees a whole object or none, across processes. Keys are checked against a safe alphabet
and the resolved path must stay under the root: a key can never escape it.

Differences from S3, by design:
- The SHA-256 reported by ``head`` is computed from the bytes on disk when asked (local files
  cannot be corrupted in transit, and this keeps one file per object with no metadata to keep
  in step); ``get_file`` without ``sha256`` therefore has nothing recorded to check against.
- Objects are files, so a key cannot also be a prefix of other keys ("a" and "a/b"): such a
  put raises ``InvalidKey``. Keys built from ids never collide like that.
- A missing bucket raises ``NotFound`` already in ``store()``; S3 says so on the first call.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from shared.errors import ChecksumMismatch, InvalidKey, NotFound
from shared.hashing import sha256_file
from shared.keys import check_key
from shared.ports import ObjectInfo, ObjectStore, Progress

CHUNK: Final = 1024 * 1024
TMP_DIR: Final = ".tmp"


def copy_hashing(
    source: BinaryIO, target: BinaryIO, progress: Progress | None = None
) -> tuple[str, int]:
    """Copy ``source`` to ``target`` in chunks, hashing in the same pass; (sha256, bytes)."""
    digest = hashlib.sha256()
    done = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while count := source.readinto(view):  # type: ignore[attr-defined]
        digest.update(view[:count])
        target.write(view[:count])
        done += count
        if progress is not None:
            progress(done)
    return digest.hexdigest(), done


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Attempts to move an upload into place while deletes may prune its directory.
PLACE_ATTEMPTS: Final = 50


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, creating its directories, durably.

    A concurrent ``delete`` prunes directories it leaves empty, so a directory can vanish
    while it is made (``mkdir`` then fails oddly) or before the rename; then both are tried
    again. A real collision with a file fails every attempt and is raised.
    """
    for attempt in range(PLACE_ATTEMPTS):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.replace(target)
            break
        except (FileNotFoundError, FileExistsError):
            if attempt == PLACE_ATTEMPTS - 1 or not tmp.exists():
                raise
    fsync_dir(target.parent)


class LocalStore(ObjectStore):
    def __init__(self, root: Path, bucket: str) -> None:
        self.bucket = bucket
        self.root = root.resolve()
        if not self.root.is_dir():
            raise NotFound(f"bucket {bucket!r} does not exist in {root.parent}")

    def _path(self, key: str) -> Path:
        check_key(key)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidKey(f"invalid object key: {key[:80]!r}")
        if TMP_DIR in path.relative_to(self.root).parts[:1]:
            raise InvalidKey(f"invalid object key: {key[:80]!r}")
        return path

    def put_file(
        self, key: str, path: Path, *, sha256: str | None = None, progress: Progress | None = None
    ) -> ObjectInfo:
        target = self._path(key)
        tmp_dir = self.root / TMP_DIR
        tmp_dir.mkdir(exist_ok=True)
        tmp = tmp_dir / f"{secrets.token_hex(8)}.part"
        try:
            with path.open("rb") as source, tmp.open("wb") as sink:
                digest, size = copy_hashing(source, sink, progress)
                sink.flush()
                os.fsync(sink.fileno())
            if sha256 is not None and digest != sha256:
                raise ChecksumMismatch(
                    f"upload of {path.name} changed on the way: sha256 {digest[:12]}…, "
                    f"expected {sha256[:12]}…"
                )
            try:
                _move_into_place(tmp, target)
            except (NotADirectoryError, FileExistsError, IsADirectoryError):
                # S3 holds "a" and "a/b" side by side; a directory tree cannot. Keys built
                # from ids never collide like this, so it is refused, not worked around.
                raise InvalidKey(
                    f"key {key} collides with another object or prefix in {self.bucket}"
                ) from None
        except FileNotFoundError as error:
            if error.filename == str(path):
                raise NotFound(f"file to upload is gone: {path}") from None
            raise
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectInfo(key=key, size=size, sha256=digest)

    def get_file(
        self, key: str, dest: Path, *, sha256: str | None = None, progress: Progress | None = None
    ) -> ObjectInfo:
        source_path = self._path(key)
        try:
            source = source_path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"object {key} not found in {self.bucket}") from None
        try:
            with source, dest.open("wb") as sink:
                digest, size = copy_hashing(source, sink, progress)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        if sha256 is not None and digest != sha256:
            dest.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"download of {key} is corrupt: sha256 {digest[:12]}…, expected {sha256[:12]}…"
            )
        return ObjectInfo(key=key, size=size, sha256=digest)

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            if not path.is_file():
                raise FileNotFoundError
            return ObjectInfo(key=key, size=path.stat().st_size, sha256=sha256_file(path))
        except FileNotFoundError:
            raise NotFound(f"object {key} not found in {self.bucket}") from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            path.unlink()
        # Prune directories left empty, so the store holds nothing once results are collected.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        keys: list[tuple[str, int]] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = Path(dirpath)
            relative = base.relative_to(self.root).as_posix()
            relative = "" if relative == "." else relative + "/"
            dirnames[:] = [d for d in dirnames if d != TMP_DIR or relative]
            if prefix and not (relative.startswith(prefix) or prefix.startswith(relative)):
                dirnames.clear()
                continue
            for name in filenames:
                key = relative + name
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        keys.append((key, (base / name).stat().st_size))
        for key, size in sorted(keys):
            yield ObjectInfo(key=key, size=size, sha256=None)
