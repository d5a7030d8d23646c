"""What only the aws adapter does: naming, regions, recorded checksums, outages.

These run against the session's moto server (``aws_env``), outside the parametrized contract.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.backends import aws_store
from shared.backends.aws import AwsBackend
from shared.backends.aws_errors import NO_CREDENTIALS, NO_REGION
from shared.errors import AccessDenied, BackendError, ChecksumMismatch, Unreachable
from shared.ports import QueueSpec
from tests.moto_server import MotoServer

from .helpers import MIB, MULTIPART_THRESHOLD, open_aws, write_random

MOTO_ACCOUNT = "123456789012"


@pytest.fixture
def aws(aws_env: MotoServer) -> Iterator[AwsBackend]:
    backend = open_aws()
    assert isinstance(backend, AwsBackend)
    backend.ensure_bucket(backend.data_bucket)
    yield backend
    backend.close()


def test_default_names_and_exposed_clients(aws: AwsBackend) -> None:
    assert (aws.region, aws.account_id) == ("us-east-1", MOTO_ACCOUNT)
    assert aws.data_bucket == f"imgpipe-data-{MOTO_ACCOUNT}-us-east-1"
    assert aws.log_bucket == f"imgpipe-logs-{MOTO_ACCOUNT}-us-east-1"
    assert aws.describe() == f"aws us-east-1 {aws.data_bucket}"
    names = {b["Name"] for b in aws.s3.list_buckets()["Buckets"]}
    assert aws.data_bucket in names
    assert aws.sqs.list_queues().get("QueueUrls", []) == []


def test_named_buckets_and_region(aws_env: MotoServer) -> None:
    with AwsBackend(region="eu-west-1", data_bucket="my-data", log_bucket="my-logs") as backend:
        assert isinstance(backend, AwsBackend)
        assert (backend.region, backend.data_bucket, backend.log_bucket) == (
            "eu-west-1", "my-data", "my-logs",
        )
        assert backend.ensure_bucket("my-data") is True
        location = backend.s3.get_bucket_location(Bucket="my-data")["LocationConstraint"]
        assert location == "eu-west-1"
        assert backend.ensure_bucket("my-data") is False


def test_no_region(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(BackendError) as caught:
        AwsBackend()
    assert str(caught.value) == NO_REGION


def test_no_credentials(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AccessDenied) as caught:
        AwsBackend()  # default bucket names need the account: STS is asked at once
    assert str(caught.value) == NO_CREDENTIALS


def test_large_upload_is_multipart_with_full_sha256(aws: AwsBackend, tmp_path: Path) -> None:
    big = tmp_path / "big"
    digest = write_random(big, 2 * MULTIPART_THRESHOLD + MIB)
    aws.store(aws.data_bucket).put_file("in/big", big)
    head = aws.s3.head_object(Bucket=aws.data_bucket, Key="in/big")
    assert head["ETag"].endswith('-3"')  # three parts
    assert head["Metadata"] == {"sha256": digest}


def test_get_verifies_the_recorded_sha256(aws: AwsBackend, tmp_path: Path) -> None:
    aws.s3.put_object(
        Bucket=aws.data_bucket, Key="in/lie", Body=b"actual bytes",
        Metadata={"sha256": hashlib.sha256(b"other bytes").hexdigest()},
    )
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumMismatch):
        aws.store(aws.data_bucket).get_file("in/lie", dest)
    assert not dest.exists()


def test_object_without_recorded_sha256(aws: AwsBackend, tmp_path: Path) -> None:
    aws.s3.put_object(Bucket=aws.data_bucket, Key="in/foreign", Body=b"from elsewhere")
    store = aws.store(aws.data_bucket)
    assert store.head("in/foreign").sha256 is None
    got = store.get_file("in/foreign", tmp_path / "dest")
    assert got.sha256 == hashlib.sha256(b"from elsewhere").hexdigest()


@pytest.mark.parametrize("size", [1000, 2 * MULTIPART_THRESHOLD + 1000], ids=["single", "multi"])
def test_file_changing_during_upload_stores_nothing(
    aws: AwsBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    path = tmp_path / "changing"
    write_random(path, size)
    real_hash = aws_store._hash_file

    def hash_then_change(raw: io.BufferedReader) -> tuple[str, int]:
        result = real_hash(raw)
        with path.open("r+b") as other:  # same size, different last byte
            other.seek(size - 1)
            other.write(bytes([(raw.read()[-1] + 1) % 256]))
        raw.seek(0)
        return result

    monkeypatch.setattr(aws_store, "_hash_file", hash_then_change)
    store = aws.store(aws.data_bucket)
    with pytest.raises(ChecksumMismatch):
        store.put_file("in/changing", path)
    assert not store.exists("in/changing")
    uploads = aws.s3.list_multipart_uploads(Bucket=aws.data_bucket).get("Uploads", [])
    assert uploads == []  # aborted, not left to linger


def test_verifying_reader_counts_rereads_once() -> None:
    data = b"0123456789" * 10
    reader = aws_store._VerifyingReader(io.BytesIO(data), len(data),
                                        hashlib.sha256(data).hexdigest(), "f")
    assert reader.read(30) == data[:30]
    reader.seek(10)  # a retry re-sends from an earlier offset
    assert reader.read() == data[10:]
    reader.verify()


def test_small_progress_reaches_size(aws: AwsBackend, tmp_path: Path) -> None:
    path = tmp_path / "small"
    path.write_bytes(b"x" * 5000)
    seen: list[int] = []
    aws.store(aws.data_bucket).put_file("in/small", path, progress=seen.append)
    assert seen[-1] == 5000


def test_outage_and_recovery(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch,
                             tmp_path: Path) -> None:
    """A server that goes away surfaces as Unreachable; when it is back, so is the state."""
    with MotoServer() as outage:  # its own port, same (process-wide) moto state
        monkeypatch.setenv("AWS_ENDPOINT_URL", outage.endpoint)
        with AwsBackend(max_attempts=1) as backend:
            backend.ensure_bucket(backend.data_bucket)
            store = backend.store(backend.data_bucket)
            source = tmp_path / "kept"
            source.write_bytes(b"kept across the outage")
            store.put_file("in/kept", source)
            queue = backend.ensure_queue(QueueSpec("jobs"))
            queue.send("kept too")

            outage.stop()
            with pytest.raises(Unreachable):
                store.head("in/kept")
            with pytest.raises(Unreachable):
                queue.send("lost")
            with pytest.raises(Unreachable):
                queue.receive(wait_seconds=1)
            outage.start()

            assert store.head("in/kept").size == len(b"kept across the outage")
            assert [m.body for m in queue.receive(wait_seconds=1)] == ["kept too"]

