"""``imgserver init``: create what the backend needs, idempotently, and say what exists.

On aws: the request queue with its dead-letter queue (redrive after ``max_receives``), a data
bucket and a log bucket, each with public access blocked, default encryption, a TLS-only bucket
policy and lifecycle rules (abandoned request and result objects expire after a day). Every
setting is compared before it is written, so a second run changes nothing and says so.
On local: the state dir, its two bucket folders and the queues.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from shared import keys
from shared.config import Settings
from shared.errors import ImgpipeError
from shared.ports import Backend, QueueSpec

EXPIRE_DAYS: Final = 1
LOG_RETENTION_DAYS: Final = 365


@dataclass(frozen=True)
class Line:
    """One line of init's report: a resource, and what init found or did."""

    kind: str
    name: str
    state: str  # "created", "updated" or "exists"
    detail: str = ""

    def render(self) -> str:
        text = f"{self.kind:<8} {self.name:<44} {self.state}"
        return f"{text}  ({self.detail})" if self.detail else text


def request_queue_spec(settings: Settings) -> QueueSpec:
    return QueueSpec(
        name=settings.queue,
        visibility_timeout=settings.visibility_timeout,
        dead_letter=keys.dead_letter_name(settings.queue),
        max_receives=settings.max_receives,
    )


def provision(backend: Backend, settings: Settings) -> list[Line]:
    spec = request_queue_spec(settings)
    lines = [_queue(backend, spec)]
    for bucket, rules in ((backend.data_bucket, _data_lifecycle()),
                          (backend.log_bucket, _log_lifecycle())):
        created = backend.ensure_bucket(bucket)
        if backend.name == "aws":
            changed = _harden_bucket(backend, bucket, rules)
            state = "created" if created else ("updated" if changed else "exists")
            detail = ("public access blocked, encrypted, TLS only, "
                      + ("objects under in/ and out/ expire after 1 day"
                         if bucket == backend.data_bucket
                         else f"logs kept {LOG_RETENTION_DAYS} days"))
        else:
            state = "created" if created else "exists"
            detail = "local folder"
        lines.append(Line("bucket", bucket, state, detail))
    return lines


def _queue(backend: Backend, spec: QueueSpec) -> Line:
    assert spec.dead_letter is not None
    before: QueueSpec | None
    try:
        before = _current_spec(backend, spec.name)
    except ImgpipeError:
        before = None
    backend.ensure_queue(spec)
    detail = (f"visibility {spec.visibility_timeout} s, dead-letter {spec.dead_letter} after "
              f"{spec.max_receives} receives")
    if before is None:
        return Line("queue", spec.name, "created", detail)
    same = (before.visibility_timeout, before.dead_letter, before.max_receives) == (
        spec.visibility_timeout, spec.dead_letter, spec.max_receives)
    return Line("queue", spec.name, "exists" if same else "updated", detail)


def _current_spec(backend: Backend, name: str) -> QueueSpec:
    """The queue's settings as the backend has them (NotFound when it does not exist)."""
    queue = backend.queue(name)
    url = getattr(queue, "url", None)
    if url is None:
        spec: QueueSpec = getattr(queue, "spec")  # noqa: B009 - local queues keep theirs
        return spec
    from shared.backends.aws_errors import translate

    with translate(f"read settings of queue {name}"):
        attributes = backend.sqs.get_queue_attributes(  # type: ignore[attr-defined]
            QueueUrl=url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])["Attributes"]
    redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
    target = str(redrive.get("deadLetterTargetArn", ""))
    return QueueSpec(
        name=name, visibility_timeout=int(attributes.get("VisibilityTimeout", 30)),
        dead_letter=target.rsplit(":", 1)[-1] or None,
        max_receives=int(redrive.get("maxReceiveCount", 0)),
    )


# --- aws bucket hardening ----------------------------------------------------------------


def _data_lifecycle() -> list[dict[str, Any]]:
    rules = [
        {"ID": f"imgpipe-expire-{prefix.rstrip('/')}", "Status": "Enabled",
         "Filter": {"Prefix": prefix}, "Expiration": {"Days": EXPIRE_DAYS}}
        for prefix in (keys.INPUT_PREFIX, keys.RESULT_PREFIX)
    ]
    rules.append({"ID": "imgpipe-abort-multipart", "Status": "Enabled", "Filter": {"Prefix": ""},
                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": EXPIRE_DAYS}})
    return rules


def _log_lifecycle() -> list[dict[str, Any]]:
    return [
        {"ID": "imgpipe-expire-logs", "Status": "Enabled", "Filter": {"Prefix": keys.LOG_PREFIX},
         "Expiration": {"Days": LOG_RETENTION_DAYS}},
        {"ID": "imgpipe-abort-multipart", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": EXPIRE_DAYS}},
    ]


def _tls_only_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }


_BLOCK_ALL: Final = {
    "BlockPublicAcls": True, "IgnorePublicAcls": True,
    "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
}
_ENCRYPTION: Final = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                                 "BucketKeyEnabled": True}]}


def _harden_bucket(backend: Backend, bucket: str, rules: list[dict[str, Any]]) -> bool:
    """Apply every protection that is not already in place; True when anything changed."""
    from botocore.exceptions import ClientError

    from shared.backends.aws_errors import map_error

    s3 = backend.s3  # type: ignore[attr-defined]
    changed = False

    def current(call: Callable[[], Any], missing: tuple[str, ...]) -> Any:
        try:
            return call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in missing:
                return None
            raise map_error(error, f"reading settings of bucket {bucket}") from None

    def put(call: Callable[[], Any]) -> None:
        nonlocal changed
        try:
            call()
        except ClientError as error:
            raise map_error(error, f"configuring bucket {bucket}") from None
        changed = True

    block = current(lambda: s3.get_public_access_block(Bucket=bucket)
                    ["PublicAccessBlockConfiguration"], ("NoSuchPublicAccessBlockConfiguration",))
    if block != _BLOCK_ALL:
        put(lambda: s3.put_public_access_block(Bucket=bucket,
                                               PublicAccessBlockConfiguration=_BLOCK_ALL))
    encryption = current(lambda: s3.get_bucket_encryption(Bucket=bucket)
                         ["ServerSideEncryptionConfiguration"],
                         ("ServerSideEncryptionConfigurationNotFoundError",))
    algorithms = [rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
                  for rule in (encryption or {}).get("Rules", [])]
    if not any(algorithms):
        put(lambda: s3.put_bucket_encryption(Bucket=bucket,
                                             ServerSideEncryptionConfiguration=_ENCRYPTION))
    policy = _tls_only_policy(bucket)
    existing = current(lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"],
                       ("NoSuchBucketPolicy",))
    if existing is None or json.loads(existing) != policy:
        put(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy)))
    lifecycle = current(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
                        ("NoSuchLifecycleConfiguration",))
    if _normalise_rules(lifecycle) != _normalise_rules(rules):
        put(lambda: s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules}))
    return changed


def _normalise_rules(rules: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    """Compare lifecycle rules by id and content, ignoring key order and extra defaults."""
    normal = []
    for rule in rules or []:
        body = {key: rule[key] for key in ("Status", "Expiration", "AbortIncompleteMultipartUpload")
                if key in rule}
        prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
        normal.append((str(rule.get("ID")), json.dumps([prefix, body], sort_keys=True)))
    return sorted(normal)
