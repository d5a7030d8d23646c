"""The object store contract: every adapter stores, verifies and lists the same way."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shared.errors import BackendError, ChecksumMismatch, InvalidKey, NotFound
from shared.ports import Backend, ObjectStore

from .helpers import MIB, MULTIPART_THRESHOLD, write_random

ESCAPING_KEYS = ["../x", "/abs", "a/../../b", "a/./b", "a//b", "", "x/..", "in/\x00"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(b"imgpipe contract bytes")
    return path


def test_put_get_head_delete(store: ObjectStore, source: Path, tmp_path: Path) -> None:
    digest = sha(source.read_bytes())
    put = store.put_file("in/a/1", source)
    assert (put.key, put.size, put.sha256) == ("in/a/1", source.stat().st_size, digest)

    head = store.head("in/a/1")
    assert (head.key, head.size, head.sha256) == ("in/a/1", source.stat().st_size, digest)
    assert store.exists("in/a/1")

    dest = tmp_path / "dest.bin"
    got = store.get_file("in/a/1", dest)
    assert dest.read_bytes() == source.read_bytes()
    assert (got.size, got.sha256) == (source.stat().st_size, digest)

    store.delete("in/a/1")
    assert not store.exists("in/a/1")
    with pytest.raises(NotFound):
        store.head("in/a/1")


def test_put_replaces(store: ObjectStore, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"first")
    second.write_bytes(b"second, longer")
    store.put_file("out/x.png", first)
    store.put_file("out/x.png", second)
    store.get_file("out/x.png", tmp_path / "dest")
    assert (tmp_path / "dest").read_bytes() == b"second, longer"
    assert store.head("out/x.png").sha256 == sha(b"second, longer")


def test_get_replaces_dest(store: ObjectStore, source: Path, tmp_path: Path) -> None:
    store.put_file("in/k", source)
    dest = tmp_path / "dest"
    dest.write_bytes(b"stale content that is longer than the object, to catch a missing truncate")
    store.get_file("in/k", dest)
    assert dest.read_bytes() == source.read_bytes()


def test_empty_object(store: ObjectStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert store.put_file("in/empty", empty, sha256=sha(b"")).size == 0
    got = store.get_file("in/empty", tmp_path / "dest", sha256=sha(b""))
    assert (got.size, (tmp_path / "dest").read_bytes()) == (0, b"")


def test_delete_absent_is_fine(store: ObjectStore) -> None:
    store.delete("in/never/was")
    store.delete("in/never/was")


def test_absent_object(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.head("in/absent")
    dest = tmp_path / "dest"
    with pytest.raises(NotFound):
        store.get_file("in/absent", dest)
    assert not dest.exists()
    assert not store.exists("in/absent")


def test_put_of_missing_file(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.put_file("in/k", tmp_path / "not-there")


def test_list_by_prefix(store: ObjectStore, source: Path) -> None:
    keys = ["in/a/2", "in/a/1", "in/b/1", "out/a/1.png", "in/ab"]
    for key in keys:
        store.put_file(key, source)
    listed = list(store.list("in/a/"))
    assert [info.key for info in listed] == ["in/a/1", "in/a/2"]
    assert all(info.size == source.stat().st_size for info in listed)
    assert [info.key for info in store.list("in/a")] == ["in/a/1", "in/a/2", "in/ab"]
    assert [info.key for info in store.list()] == sorted(keys)
    assert list(store.list("nothing/")) == []


def test_put_with_wrong_sha256_stores_nothing(store: ObjectStore, source: Path) -> None:
    with pytest.raises(ChecksumMismatch):
        store.put_file("in/k", source, sha256=sha(b"something else"))
    assert not store.exists("in/k")
    assert list(store.list()) == []


def test_put_with_right_sha256(store: ObjectStore, source: Path) -> None:
    digest = sha(source.read_bytes())
    assert store.put_file("in/k", source, sha256=digest).sha256 == digest


def test_get_with_wrong_sha256_removes_dest(
    store: ObjectStore, source: Path, tmp_path: Path
) -> None:
    store.put_file("in/k", source)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    dest = downloads / "dest"
    dest.write_bytes(b"an older download")
    with pytest.raises(ChecksumMismatch):
        store.get_file("in/k", dest, sha256=sha(b"something else"))
    assert not dest.exists()
    assert list(downloads.iterdir()) == []  # no temp file left behind either


def test_large_object_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    size = 2 * MULTIPART_THRESHOLD + MIB + 123  # three parts on aws, the last one short
    big = tmp_path / "big.bin"
    digest = write_random(big, size)
    sent: list[int] = []
    info = store.put_file("in/big", big, sha256=digest, progress=sent.append)
    assert (info.size, info.sha256) == (size, digest)
    assert sent and sent[-1] == size and max(sent) == size
    assert store.head("in/big").size == size

    received: list[int] = []
    dest = tmp_path / "big.out"
    got = store.get_file("in/big", dest, sha256=digest, progress=received.append)
    assert (got.size, got.sha256) == (size, digest)
    assert received and received[-1] == size and max(received) == size
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest


def test_keys_cannot_escape(store: ObjectStore, source: Path, tmp_path: Path) -> None:
    for key in ESCAPING_KEYS:
        with pytest.raises(InvalidKey):
            store.put_file(key, source)
        with pytest.raises(InvalidKey):
            store.get_file(key, tmp_path / "dest")
        with pytest.raises(InvalidKey):
            store.head(key)
        with pytest.raises(InvalidKey):
            store.delete(key)
    assert list(store.list()) == []
    assert not (tmp_path / "dest").exists()


def test_missing_bucket(backend: Backend) -> None:
    # local refuses at store(); S3 on the first request (a HEAD would need s3:ListBucket).
    with pytest.raises(NotFound):
        backend.store("imgpipe-no-such-bucket").head("in/k")


def test_ensure_bucket_is_idempotent(backend: Backend, source: Path) -> None:
    assert backend.ensure_bucket("imgpipe-contract-extra") is True
    assert backend.ensure_bucket("imgpipe-contract-extra") is False
    assert backend.ensure_bucket(backend.data_bucket) is False
    extra = backend.store("imgpipe-contract-extra")
    extra.put_file("in/k", source)
    assert [info.key for info in extra.list()] == ["in/k"]


def test_put_bytes_get_bytes(store: ObjectStore) -> None:
    info = store.put_bytes("out/a/reply.json", b'{"status": "done"}')
    assert (info.size, info.sha256) == (18, sha(b'{"status": "done"}'))
    assert store.get_bytes("out/a/reply.json") == b'{"status": "done"}'
    with pytest.raises(BackendError):
        store.get_bytes("out/a/reply.json", limit=10)
    with pytest.raises(NotFound):
        store.get_bytes("out/a/absent.json")
