"""One SQS standard queue as a ``Queue``.

Receives long-poll through their own client, whose HTTP read timeout outlasts the longest wait
(``POLL_READ_TIMEOUT``); everything else uses the backend's ordinary SQS client. SQS waits in
whole seconds, so a fractional ``wait_seconds`` is rounded up, never down: rounding down could
turn a short wait into a short poll, which on SQS samples only some servers and may miss
messages that are there.
"""

from __future__ import annotations

import math
from typing import Any, Final

from shared.backends.aws_errors import translate
from shared.backends.local_queue import check_send  # SQS's own rules, shared by both queues
from shared.errors import NotFound
from shared.ports import (
    MAX_RECEIVE_BATCH,
    MAX_VISIBILITY_SECONDS,
    MAX_WAIT_SECONDS,
    Message,
    Queue,
)

#: How much longer than a long poll the HTTP read may take before it counts as a timeout.
POLL_READ_MARGIN: Final = 10
POLL_READ_TIMEOUT: Final = MAX_WAIT_SECONDS + POLL_READ_MARGIN
#: Message attributes every receive asks for.
RECEIVE_ATTRIBUTES: Final = ("ApproximateReceiveCount", "SentTimestamp")

#: A receipt SQS no longer accepts for a visibility change: the delivery is no longer held.
_NOT_HELD: Final = {"ReceiptHandleIsInvalid": NotFound}


def to_message(raw: dict[str, Any]) -> Message:
    attributes = raw.get("Attributes", {})
    return Message(
        id=raw["MessageId"],
        body=raw["Body"],
        receipt=raw["ReceiptHandle"],
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
        sent_at=int(attributes.get("SentTimestamp", 0)) / 1000,
    )


class SqsQueue(Queue):
    """A queue addressed by its URL; ``client`` for calls, ``poll_client`` for receives."""

    def __init__(self, name: str, url: str, client: Any, poll_client: Any) -> None:
        self.name = name
        self.url = url
        self._sqs = client
        self._poll = poll_client

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        check_send(body, delay_seconds)
        with translate(f"send to queue {self.name}"):
            answer = self._sqs.send_message(
                QueueUrl=self.url, MessageBody=body, DelaySeconds=delay_seconds
            )
        return str(answer["MessageId"])

    def receive(
        self,
        max_messages: int = 1,
        *,
        wait_seconds: float = 0.0,
        visibility_timeout: int | None = None,
    ) -> list[Message]:
        request: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max(1, min(max_messages, MAX_RECEIVE_BATCH)),
            "WaitTimeSeconds": max(0, min(math.ceil(wait_seconds), MAX_WAIT_SECONDS)),
            "MessageSystemAttributeNames": list(RECEIVE_ATTRIBUTES),
        }
        if visibility_timeout is not None:
            request["VisibilityTimeout"] = max(0, min(visibility_timeout, MAX_VISIBILITY_SECONDS))
        with translate(f"receive from queue {self.name}"):
            answer = self._poll.receive_message(**request)
        return [to_message(raw) for raw in answer.get("Messages", ())]

    def delete(self, receipt: str) -> None:
        with translate(f"delete a message from queue {self.name}"):
            self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)

    def change_visibility(self, receipt: str, seconds: int) -> None:
        seconds = max(0, min(seconds, MAX_VISIBILITY_SECONDS))
        with translate(f"change visibility of a message in queue {self.name}", _NOT_HELD):
            self._sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=seconds
            )

    def depth(self) -> tuple[int, int]:
        with translate(f"count messages in queue {self.name}"):
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        return (
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def purge(self) -> None:
        with translate(f"purge queue {self.name}"):
            self._sqs.purge_queue(QueueUrl=self.url)
