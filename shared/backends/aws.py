"""The AWS backend: S3 buckets for objects, SQS standard queues for messages.

Configuration comes only from boto3's own chain: credentials (environment, profile, SSO,
instance or task role), region (unless the settings name one) and endpoints. Nothing here sets
an endpoint: to aim at moto, LocalStack or a VPC endpoint, use boto3's ``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_S3`` / ``_SQS`` / ``_STS`` or a profile's ``endpoint_url``. Retries are
boto3's "standard" mode; their number follows ``AWS_MAX_ATTEMPTS`` or the profile's
``max_attempts`` (boto3 default: 3 attempts) unless ``max_attempts`` is given here.

One boto3 session is made per backend, on the thread that opens it, and only its clients are
shared: clients are thread-safe, sessions are not. Opening may call STS (to name the default
buckets after the account), so open the backend off any UI thread.

Where SQS differs from the local queue (``local_queue.py``); the contract suite
(``tests/contract``) pins each point, on moto for this side:

- Stale receipts. After a redelivery, SQS "may" still let the superseded receipt delete or
  extend the message, and reports success either way; moto always lets it (it accepts every
  receipt a message ever had). The local queue never does. So a worker whose delivery timed
  out can delete the message another worker now holds: that is why every step must be
  repeatable (at-least-once delivery demands it anyway). Test capability:
  ``stale_receipt_protected``.
- Refused receipts. A visibility change with a receipt SQS no longer honours raises
  ``NotFound`` on both sides. A malformed receipt raises ``InvalidKey`` on delete on both
  sides; on a visibility change SQS cannot tell malformed from expired, so aws says
  ``NotFound`` where local says ``InvalidKey``.
- Short polls (``wait_seconds=0``) sample a subset of SQS's servers and may come back empty
  while messages wait; the local queue and moto see everything. Consumers long-poll.
- Waits are whole seconds on SQS, so a fractional wait rounds up; local waits are exact.
- A waiting receive sees a send at once on both (moto within milliseconds), but moto only
  notices a visibility timeout ending once a second; the local queue wakes at that moment.
  Test capabilities: ``wakeup_seconds``, ``redelivery_slack``.
- ``depth()`` is approximate on SQS (consistent about a minute after sends stop), exact on
  the local queue and moto. Delayed messages count in neither number, on every backend.
- Order is roughly FIFO on SQS, exactly FIFO locally. Nothing may rely on order.
- A dead-lettered message keeps its id, body and send time everywhere; its receive count
  keeps counting on moto (and, as far as AWS documents, on SQS) but restarts at zero locally.
  Nothing relies on the count in a dead-letter queue.
- ``purge()`` takes up to 60 s on SQS and runs at most once a minute (another raises
  ``Throttled``); a deleted queue's name can be reused only after 60 s (``Throttled`` too).
  The local queue and moto do both at once.
- A queue URL is looked up once per backend; a queue deleted by another process shows as
  ``NotFound`` on the next operation, not in ``queue()``, on either side.
- Limits SQS puts on a send (body bytes and characters, delay) and on a queue's settings are
  checked by both queues before anything is sent, with the same ``BackendError``
  (``local_queue.check_send`` and ``check_spec``).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Final

import boto3  # type: ignore[import-untyped, unused-ignore]
from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]
from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]

from shared.backends.aws_errors import NO_REGION, error_code, translate
from shared.backends.aws_queue import POLL_READ_TIMEOUT, SqsQueue
from shared.backends.aws_store import (
    MULTIPART_THRESHOLD,
    PART_SIZE,
    S3Store,
    transfer_config,
)
from shared.backends.local_queue import MAX_RETENTION_SECONDS, check_spec
from shared.errors import BackendError, NotFound
from shared.keys import check_queue_name
from shared.ports import Backend, ObjectStore, Queue, QueueSpec

#: us-east-1 is the one region whose buckets take no LocationConstraint.
DEFAULT_S3_REGION: Final = "us-east-1"
CONNECT_TIMEOUT: Final = 5
READ_TIMEOUT: Final = 30
USER_AGENT: Final = "imgpipe"
#: Codes CreateQueue answers when the queue exists with other attributes (JSON, query).
_QUEUE_EXISTS: Final = frozenset({"QueueAlreadyExists", "QueueNameExists"})
#: Codes CreateBucket answers when the bucket is already ours.
_BUCKET_OURS: Final = frozenset({"BucketAlreadyOwnedByYou"})


def default_bucket(kind: str, account_id: str, region: str) -> str:
    """The bucket name used when the settings give none: unique per account and region."""
    return f"imgpipe-{kind}-{account_id}-{region}"


class AwsBackend(Backend):
    """S3 + SQS through boto3; exposes ``session``, ``s3``, ``sqs``, ``sts``, ``region`` and
    ``account_id`` for provisioning code (``imgserver init``)."""

    name = "aws"

    def __init__(
        self,
        *,
        region: str | None = None,
        data_bucket: str | None = None,
        log_bucket: str | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        max_attempts: int | None = None,
    ) -> None:
        with translate("open AWS session"):
            self.session = boto3.session.Session(region_name=region)
        resolved = self.session.region_name
        if not resolved:
            raise BackendError(NO_REGION)
        self.region: str = resolved
        retries: dict[str, Any] = {"mode": "standard"}
        if max_attempts is not None:
            retries["total_max_attempts"] = max_attempts
        config = Config(
            region_name=self.region,
            retries=retries,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            user_agent_extra=USER_AGENT,
        )
        # A long poll holds the HTTP read for up to MAX_WAIT_SECONDS: its own read timeout.
        poll_config = config.merge(Config(read_timeout=POLL_READ_TIMEOUT))
        with translate("create AWS clients"):
            self.s3: Any = self.session.client("s3", config=config)
            self.sqs: Any = self.session.client("sqs", config=config)
            self.sqs_poll: Any = self.session.client("sqs", config=poll_config)
            self.sts: Any = self.session.client("sts", config=config)
        self._transfer = transfer_config(multipart_threshold, part_size)
        self._account_id: str | None = None
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self.data_bucket = data_bucket or default_bucket("data", self.account_id, self.region)
        self.log_bucket = log_bucket or default_bucket("logs", self.account_id, self.region)

    @property
    def account_id(self) -> str:
        """The account of the credentials in use (one STS call, the first time)."""
        if self._account_id is None:
            with translate("identify the AWS account (sts get-caller-identity)"):
                self._account_id = str(self.sts.get_caller_identity()["Account"])
        return self._account_id

    def describe(self) -> str:
        return f"aws {self.region} {self.data_bucket}"

    # --- objects ---------------------------------------------------------------------------

    def store(self, bucket: str) -> ObjectStore:
        # No HeadBucket here: it needs s3:ListBucket, which a worker's role may not have.
        # A missing bucket shows as NotFound on the first operation.
        return S3Store(self.s3, bucket, self._transfer)

    def ensure_bucket(self, bucket: str) -> bool:
        try:
            with translate(f"look up bucket {bucket}"):
                self.s3.head_bucket(Bucket=bucket)
            return False
        except NotFound:
            pass
        request: dict[str, Any] = {"Bucket": bucket}
        if self.region != DEFAULT_S3_REGION:
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        with translate(f"create bucket {bucket}"):
            try:
                self.s3.create_bucket(**request)
            except ClientError as error:
                if error_code(error) in _BUCKET_OURS:  # created meanwhile, by us
                    return False
                raise
        return True

    # --- queues ----------------------------------------------------------------------------

    def _queue_url(self, name: str) -> str:
        with self._lock:
            url = self._urls.get(name)
        if url is None:
            with translate(f"look up queue {name}"):
                url = str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])
            with self._lock:
                self._urls[name] = url
        return url

    def _open(self, name: str, url: str) -> SqsQueue:
        return SqsQueue(name, url, self.sqs, self.sqs_poll)

    def queue(self, name: str) -> Queue:
        """The queue ``name``; its URL is looked up once per backend, so a queue deleted by
        another process later shows as ``NotFound`` on its first operation instead."""
        check_queue_name(name)
        return self._open(name, self._queue_url(name))

    def _create_or_update(self, name: str, attributes: dict[str, str]) -> str:
        """Create the queue with ``attributes``, or bring an existing one in line with them."""
        with translate(f"create queue {name}"):
            try:
                url = str(self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
            except ClientError as error:
                if error_code(error) not in _QUEUE_EXISTS:
                    raise
                url = str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])
                self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        with self._lock:
            self._urls[name] = url
        return url

    def ensure_queue(self, spec: QueueSpec) -> Queue:
        check_spec(spec)
        attributes = {
            "VisibilityTimeout": str(spec.visibility_timeout),
            "MessageRetentionPeriod": str(spec.retention_seconds),
        }
        if spec.dead_letter:
            # The dead-letter queue keeps messages as long as SQS allows: they keep their
            # original enqueue time, so a shorter retention would drop them early.
            dlq_url = self._create_or_update(spec.dead_letter, {
                "VisibilityTimeout": str(spec.visibility_timeout),
                "MessageRetentionPeriod": str(MAX_RETENTION_SECONDS),
            })
            with translate(f"look up queue {spec.dead_letter}"):
                arn = self.sqs.get_queue_attributes(
                    QueueUrl=dlq_url, AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": spec.max_receives}
            )
        return self._open(spec.name, self._create_or_update(spec.name, attributes))

    def delete_queue(self, name: str) -> None:
        check_queue_name(name)
        try:
            url = self._queue_url(name)
            with translate(f"delete queue {name}"):
                self.sqs.delete_queue(QueueUrl=url)
        except NotFound:
            pass
        finally:
            with self._lock:
                self._urls.pop(name, None)

    def close(self) -> None:
        for client in (self.s3, self.sqs, self.sqs_poll, self.sts):
            client.close()
