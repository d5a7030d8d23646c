"""``imgserver init``: what it creates on AWS (moto), idempotence, and the deploy files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.provision import provision
from shared.backends import open_backend
from shared.config import Settings
from tests.moto_server import MotoServer

DEPLOY = Path(__file__).resolve().parents[2] / "server" / "deploy"


def test_init_hardens_both_buckets_and_wires_the_dead_letter_queue(
    aws_env: MotoServer, tmp_path: Path
) -> None:
    settings = Settings(backend="aws", state_dir=tmp_path, max_receives=5)
    with open_backend(settings) as backend:
        lines = provision(backend, settings)
        assert [line.state for line in lines] == ["created"] * 3
        account, region = backend.account_id, backend.region  # type: ignore[attr-defined]
        assert backend.data_bucket == f"imgpipe-data-{account}-{region}"
        assert backend.log_bucket == f"imgpipe-logs-{account}-{region}"
        s3, sqs = backend.s3, backend.sqs  # type: ignore[attr-defined]
        for bucket in (backend.data_bucket, backend.log_bucket):
            block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
            assert all(block.values()) and len(block) == 4
            rules = s3.get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"]["Rules"]
            assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
            policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
            (statement,) = policy["Statement"]
            assert statement["Effect"] == "Deny"
            assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=backend.data_bucket)["Rules"]
        expiring = {rule["Filter"]["Prefix"]: rule["Expiration"]["Days"]
                    for rule in lifecycle if "Expiration" in rule}
        assert expiring == {"in/": 1, "out/": 1}
        url = sqs.get_queue_url(QueueName="imgpipe-requests")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["maxReceiveCount"] == 5
        assert redrive["deadLetterTargetArn"].endswith(":imgpipe-requests-dlq")

        again = provision(backend, settings)
        assert [line.state for line in again] == ["exists"] * 3

        changed = provision(backend, settings.with_values(max_receives="2"))
        assert changed[0].state == "updated"


def test_init_on_local_creates_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "fresh" / "state")
    with open_backend(settings) as backend:
        assert [line.state for line in provision(backend, settings)] == ["created"] * 3
        assert [line.state for line in provision(backend, settings)] == ["exists"] * 3
    assert (tmp_path / "fresh" / "state" / "queues.sqlite3").exists()


# --- deploy files --------------------------------------------------------------------------

WORKER_ACTIONS = {
    # Every call the worker makes, by what the code uses (shared/backends/aws*.py, server/).
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage",
    "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
    "s3:ListBucket",
}


@pytest.mark.parametrize("name", ["iam-policy.json", "client-iam-policy.json"])
def test_iam_policies_are_least_privilege(name: str) -> None:
    policy = json.loads((DEPLOY / name).read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        statement_actions = statement["Action"]
        statement_actions = ([statement_actions] if isinstance(statement_actions, str)
                             else statement_actions)
        assert not any("*" in action for action in statement_actions)  # no wildcards
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            assert resource != "*"
            assert re.match(r"arn:aws:(sqs|s3):", resource)
            assert "imgpipe" in resource
        actions.update(statement_actions)
    if name == "iam-policy.json":
        assert actions == WORKER_ACTIONS
        assert not any(a.startswith("sqs:CreateQueue") or a.startswith("sqs:DeleteQueue")
                       for a in actions)  # provisioning is init's job, with its own rights


def test_systemd_unit_runs_unprivileged_and_restarts() -> None:
    unit = (DEPLOY / "imgserver.service").read_text()
    for line in ("User=imgpipe", "Restart=on-failure", "NoNewPrivileges=yes",
                 "StandardOutput=journal", "ProtectSystem=strict", "KillSignal=SIGTERM"):
        assert line in unit
    assert "AWS_ACCESS_KEY" not in unit and "AWS_SECRET" not in unit


def test_user_data_installs_and_starts_without_keys() -> None:
    script = (DEPLOY / "user-data.sh").read_text()
    assert script.startswith("#!/bin/sh")
    assert "systemctl enable --now imgserver.service" in script
    assert "apt-get install" in script and "imagemagick" in script
    assert "AWS_ACCESS_KEY" not in script and "aws_secret" not in script.lower()
