"""What only the local backend promises, or only it can be tested for here."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shared.backends.local import LocalBackend
from shared.errors import InvalidKey
from shared.ports import QueueSpec

CONSUMER = Path(__file__).with_name("consume_local.py")
MESSAGES = 300
CONSUMERS = 4


@pytest.mark.slow
def test_consumers_in_processes_never_share_a_message(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with LocalBackend(state) as backend:
        queue = backend.ensure_queue(QueueSpec("jobs", visibility_timeout=600))
        sent = {queue.send(f"job {index}") for index in range(MESSAGES)}

    consumers = [
        subprocess.Popen(
            [sys.executable, str(CONSUMER), str(state), "jobs"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for _ in range(CONSUMERS)
    ]
    try:
        for consumer in consumers:  # all open and ready before any starts taking
            assert consumer.stdout is not None
            assert consumer.stdout.readline().strip() == "ready"
        for consumer in consumers:
            assert consumer.stdin is not None
            consumer.stdin.write("go\n")
            consumer.stdin.flush()
        results = [consumer.communicate(timeout=60)[0] for consumer in consumers]
    finally:
        for consumer in consumers:
            if consumer.poll() is None:
                consumer.kill()
                consumer.wait()
    assert [consumer.returncode for consumer in consumers] == [0] * CONSUMERS

    received = [json.loads(output) for output in results]
    every = [message_id for ids in received for message_id in ids]
    assert len(every) == len(set(every)), "a message was delivered to two consumers"
    assert set(every) == sent
    assert sum(1 for ids in received if ids) >= 2, "no contention happened: test is void"


def test_colliding_keys_are_refused_cleanly(tmp_path: Path) -> None:
    """S3 keeps "a" and "a/b" side by side; a directory tree cannot, and says so."""
    source = tmp_path / "source"
    source.write_bytes(b"x")
    with LocalBackend(tmp_path / "state") as backend:
        backend.ensure_bucket(backend.data_bucket)
        store = backend.store(backend.data_bucket)
        store.put_file("in/a", source)
        with pytest.raises(InvalidKey):
            store.put_file("in/a/b", source)
        store.put_file("out/a/b", source)
        with pytest.raises(InvalidKey):
            store.put_file("out/a", source)
        assert [info.key for info in store.list()] == ["in/a", "out/a/b"]


def test_local_backend_never_imports_boto3(tmp_path: Path) -> None:
    """boto3 costs ~0.5 s to import and is useless locally: only the aws backend loads it."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from shared.backends.local import LocalBackend\n"
        f"with LocalBackend(Path({str(tmp_path / 'state')!r})) as b:\n"
        "    b.ensure_queue(__import__('shared.ports').ports.QueueSpec('q')).send('x')\n"
        "loaded = sorted(m for m in ('boto3', 'botocore', 's3transfer') if m in sys.modules)\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_puts_survive_deletes_pruning_their_directory(tmp_path: Path) -> None:
    """A delete prunes directories it empties; a put into the same directory must not fail
    (it used to, now and then, with FileNotFoundError)."""
    source = tmp_path / "source"
    source.write_bytes(b"x")
    with LocalBackend(tmp_path / "state") as backend:
        backend.ensure_bucket(backend.data_bucket)
        store = backend.store(backend.data_bucket)
        errors: list[BaseException] = []
        done = threading.Event()

        def put(client: int) -> None:
            try:
                for job in range(100):
                    store.put_file(f"in/c{client}/j{job}", source)
                    store.delete(f"in/c{client}/j{job}")
            except BaseException as error:
                errors.append(error)

        def prune(client: int) -> None:
            while not done.is_set():
                store.delete(f"in/c{client}/absent")  # prunes in/cN/ whenever it is empty

        putters = [threading.Thread(target=put, args=(n,)) for n in range(2)]
        pruners = [threading.Thread(target=prune, args=(n,)) for n in range(2)]
        for thread in putters + pruners:
            thread.start()
        for thread in putters:
            thread.join(60)
        done.set()
        for thread in pruners:
            thread.join(60)
        assert errors == []
        assert list(store.list()) == []
