"""The queue contract: SQS semantics, which the local queue reproduces.

Visibility tests need time to pass, so they use 1-second timeouts and long-poll until the
message shows or a deadline passes; nothing sleeps to synchronise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from shared.errors import BackendError, InvalidKey, NotFound
from shared.ports import MAX_BODY_BYTES, MAX_RECEIVE_BATCH, Backend, Message, Queue, QueueSpec

from .helpers import Capabilities, receive_within

#: Enough for any receive that should find a message at once, on every backend.
PROMPT = 5.0


@pytest.fixture
def short(backend: Backend) -> Queue:
    """A queue whose deliveries hide for one second only."""
    return backend.ensure_queue(QueueSpec("short", visibility_timeout=1))


def test_send_receive_delete(queue: Queue) -> None:
    before = time.time()
    message_id = queue.send('{"hello": "world"}')
    after = time.time()
    message = receive_within(queue, PROMPT)
    assert message is not None
    assert (message.id, message.body, message.receive_count) == (
        message_id, '{"hello": "world"}', 1,
    )
    assert before - 1 <= message.sent_at <= after + 1
    assert queue.depth() == (0, 1)
    queue.delete(message.receipt)
    assert queue.depth() == (0, 0)
    assert queue.receive(wait_seconds=0) == []


def test_delete_twice_is_fine(queue: Queue) -> None:
    queue.send("once")
    message = receive_within(queue, PROMPT)
    assert message is not None
    queue.delete(message.receipt)
    queue.delete(message.receipt)
    assert queue.depth() == (0, 0)


def test_receive_returns_at_most_n(queue: Queue) -> None:
    for index in range(MAX_RECEIVE_BATCH + 3):
        queue.send(f"m{index}")
    three = queue.receive(3, wait_seconds=1)
    assert 1 <= len(three) <= 3
    many = queue.receive(50, wait_seconds=1)  # capped at SQS's batch limit, not refused
    assert 1 <= len(many) <= MAX_RECEIVE_BATCH
    ids = [m.id for m in three + many]
    assert len(set(ids)) == len(ids)


def test_visibility_expiry_redelivers(short: Queue, capabilities: Capabilities) -> None:
    message_id = short.send("again")
    first = receive_within(short, PROMPT)
    assert first is not None and first.receive_count == 1
    assert short.receive(wait_seconds=0) == []  # hidden while held
    second = receive_within(short, 1 + capabilities.redelivery_slack)
    assert second is not None
    assert (second.id, second.receive_count) == (message_id, 2)
    assert second.receipt != first.receipt


def test_change_visibility_extends_and_release_returns(
    short: Queue, capabilities: Capabilities
) -> None:
    short.send("held")
    message = receive_within(short, PROMPT)
    assert message is not None
    short.change_visibility(message.receipt, 60)
    # Past the queue's 1 s visibility, with room for the slowest redelivery check.
    assert receive_within(short, 1 + capabilities.redelivery_slack) is None
    short.release(message.receipt)
    started = time.monotonic()
    again = receive_within(short, PROMPT)
    assert again is not None and again.id == message.id and again.receive_count == 2
    assert time.monotonic() - started < capabilities.wakeup_seconds


def test_receive_visibility_override(queue: Queue, capabilities: Capabilities) -> None:
    queue.send("brief")  # the queue holds deliveries 30 s; this receive asks for 1 s
    first = queue.receive(wait_seconds=1, visibility_timeout=1)
    assert len(first) == 1
    second = receive_within(queue, 1 + capabilities.redelivery_slack)
    assert second is not None and second.receive_count == 2


def test_stale_receipt(short: Queue, capabilities: Capabilities) -> None:
    short.send("contested")
    first = receive_within(short, PROMPT)
    assert first is not None
    second = receive_within(short, 1 + capabilities.redelivery_slack)
    assert second is not None and second.receipt != first.receipt
    short.change_visibility(second.receipt, 60)

    short.delete(first.receipt)  # never an error: SQS says the call "succeeds"
    if capabilities.stale_receipt_protected:
        assert short.depth() == (0, 1), "a stale receipt deleted the newer delivery"
        with pytest.raises(NotFound):
            short.change_visibility(first.receipt, 0)
        short.delete(second.receipt)
    # SQS may or may not have deleted it with the stale receipt (moto always does); the newest
    # receipt deletes it in any case, and repeating that is harmless.
    short.delete(second.receipt)
    assert short.depth() == (0, 0)


def test_change_visibility_after_delete(queue: Queue) -> None:
    queue.send("gone")
    message = receive_within(queue, PROMPT)
    assert message is not None
    queue.delete(message.receipt)
    with pytest.raises(NotFound):
        queue.change_visibility(message.receipt, 10)


def test_malformed_receipt(queue: Queue) -> None:
    with pytest.raises(InvalidKey):
        queue.delete("not-a-receipt")


def test_dead_letter_after_max_receives(backend: Backend) -> None:
    jobs = backend.ensure_queue(
        QueueSpec("jobs", visibility_timeout=30, dead_letter="jobs-dlq", max_receives=2)
    )
    message_id = jobs.send("poison")
    for count in (1, 2):
        message = receive_within(jobs, PROMPT)
        assert message is not None and message.receive_count == count
        jobs.release(message.receipt)  # visible again at once: no waiting for a timeout
    # The third receive finds it over max_receives and moves it instead of delivering it.
    assert jobs.receive(wait_seconds=0) == []
    parked = receive_within(backend.queue("jobs-dlq"), PROMPT)
    assert parked is not None
    assert (parked.id, parked.body) == (message_id, "poison")
    assert jobs.depth() == (0, 0)


@pytest.mark.parametrize("receiver", ["same", "other"])
def test_long_poll_wakes_on_send(
    backend: Backend,
    open_backend: Callable[[], Backend],
    capabilities: Capabilities,
    receiver: str,
) -> None:
    """A waiting receive returns as soon as a message is sent, by this backend or by another
    one over the same state (as another process would be)."""
    sender = backend.ensure_queue(QueueSpec("wake"))
    listener = sender if receiver == "same" else open_backend().queue("wake")
    got: list[Message] = []
    returned = threading.Event()
    waiting = threading.Event()

    def listen() -> None:
        waiting.set()
        got.extend(listener.receive(wait_seconds=5))
        returned.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert waiting.wait(PROMPT)
    # Not synchronisation: a head start so the send usually lands mid-wait, exercising the
    # wake-up rather than an immediate return. The assertions hold either way.
    time.sleep(0.3)
    sent_at = time.monotonic()
    sender.send("wake up")
    assert returned.wait(5), "the receive did not return within its own wait"
    woke_after = time.monotonic() - sent_at
    thread.join(PROMPT)
    assert [m.body for m in got] == ["wake up"]
    assert woke_after < capabilities.wakeup_seconds


def test_depth_counts(queue: Queue) -> None:
    assert queue.depth() == (0, 0)
    for index in range(3):
        queue.send(f"m{index}")
    assert queue.depth() == (3, 0)
    taken = queue.receive(2, wait_seconds=1)
    assert queue.depth() == (3 - len(taken), len(taken))
    queue.send("later", delay_seconds=60)  # delayed: neither visible nor in flight
    assert queue.depth() == (3 - len(taken), len(taken))


def test_purge(queue: Queue) -> None:
    queue.send("a")
    queue.send("b")
    assert receive_within(queue, PROMPT) is not None
    queue.purge()
    assert queue.depth() == (0, 0)
    assert queue.receive(wait_seconds=0) == []


def test_delayed_message_shows_later(queue: Queue) -> None:
    queue.send("soon", delay_seconds=1)
    assert queue.receive(wait_seconds=0) == []
    assert receive_within(queue, 4) is not None


def test_body_limits(queue: Queue) -> None:
    queue.send("x" * MAX_BODY_BYTES)
    with pytest.raises(BackendError):
        queue.send("x" * (MAX_BODY_BYTES + 1))
    with pytest.raises(BackendError):
        queue.send("é" * (MAX_BODY_BYTES // 2 + 1))  # the limit is in bytes, not characters
    for refused in ("\x00", "\x1b[31m", "\ufffe", "\uffff", "\ud800"):
        with pytest.raises(BackendError):
            queue.send(f'{{"text": "{refused}"}}')
    queue.send('{"text": "tab\t, newline\n, café, 東京, 🎨"}')
    assert queue.depth() == (2, 0)


def test_delay_limits(queue: Queue) -> None:
    queue.send("latest allowed", delay_seconds=15 * 60)
    for delay in (-1, 15 * 60 + 1):
        with pytest.raises(BackendError):
            queue.send("refused", delay_seconds=delay)


def test_missing_queue(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.queue("no-such-queue")


def test_invalid_queue_names(backend: Backend) -> None:
    for name in ("../x", "a b", "", "x" * 81, "a.b"):
        with pytest.raises(InvalidKey):
            backend.queue(name)
        with pytest.raises(InvalidKey):
            backend.ensure_queue(QueueSpec(name))
    with pytest.raises(InvalidKey):
        backend.ensure_queue(QueueSpec("ok", dead_letter="not ok"))


def test_queue_settings_within_sqs_bounds(backend: Backend) -> None:
    refused = [
        QueueSpec("q", visibility_timeout=-1),
        QueueSpec("q", visibility_timeout=12 * 3600 + 1),
        QueueSpec("q", retention_seconds=59),
        QueueSpec("q", retention_seconds=14 * 86400 + 1),
        QueueSpec("q", dead_letter="q-dlq", max_receives=0),
        QueueSpec("q", dead_letter="q-dlq", max_receives=1001),
    ]
    for spec in refused:
        with pytest.raises(BackendError):
            backend.ensure_queue(spec)
    with pytest.raises(NotFound):
        backend.queue("q")


def test_ensure_queue_is_idempotent(backend: Backend, open_backend: Callable[[], Backend]) -> None:
    spec = QueueSpec("jobs", visibility_timeout=30, dead_letter="jobs-dlq", max_receives=3)
    first = backend.ensure_queue(spec)
    second = backend.ensure_queue(spec)
    third = open_backend().ensure_queue(spec)
    message_id = first.send("one queue")
    message = receive_within(second, PROMPT)
    assert message is not None and message.id == message_id
    assert third.depth() == (0, 1)
    backend.queue("jobs-dlq")  # created along with it


def test_ensure_queue_updates_settings(backend: Backend, capabilities: Capabilities) -> None:
    backend.ensure_queue(QueueSpec("jobs", visibility_timeout=60))
    jobs = backend.ensure_queue(QueueSpec("jobs", visibility_timeout=1))
    jobs.send("quick")
    assert receive_within(jobs, PROMPT) is not None
    again = receive_within(jobs, 1 + capabilities.redelivery_slack)
    assert again is not None and again.receive_count == 2


def test_delete_queue(backend: Backend, queue: Queue) -> None:
    queue.send("dropped with its queue")
    backend.delete_queue(queue.name)
    backend.delete_queue(queue.name)  # absent is fine
    with pytest.raises(NotFound):
        backend.queue(queue.name)
    with pytest.raises(NotFound):
        queue.send("into the void")
    with pytest.raises(NotFound):
        queue.receive(wait_seconds=1)
    fresh = backend.ensure_queue(QueueSpec(queue.name))
    assert fresh.depth() == (0, 0)
