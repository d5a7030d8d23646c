"""The operations log: whole records, rotation without loss or duplication, shipping."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections import Counter
from pathlib import Path

import pytest

from server.engine import detect_engine
from server.oplog import OpLog
from server.shipper import Shipper, log_key
from shared.backends.local import LocalBackend
from shared.config import Settings
from shared.errors import Unreachable
from shared.ports import ObjectStore
from tests.pipeline import Pipeline, RunningWorker, make_image, wait_for


def _lines(paths: list[Path]) -> list[dict[str, object]]:
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            out.append(json.loads(line))  # every line parses: no torn records
    return out


def _write_many(path: str, prefix: str, count: int, max_bytes: int) -> None:
    log = OpLog(Path(path), max_bytes)
    for index in range(count):
        log.write({"id": f"{prefix}-{index}", "pad": "x" * (index % 50)})
    log.close()


def test_rotation_across_threads_and_processes_keeps_each_record_once(tmp_path: Path) -> None:
    path = tmp_path / "oplog.jsonl"
    log = OpLog(path, 2000)
    rotated: list[Path] = []
    log.on_rotate = rotated.append
    threads = [threading.Thread(target=lambda t=t: [log.write({"id": f"t{t}-{i}"})
                                                    for i in range(300)]) for t in range(6)]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(str(path), f"p{p}", 300, 2000))
                 for p in range(2)]
    for worker in (*threads, *processes):
        worker.start()
    for worker in (*threads, *processes):
        worker.join(timeout=120)
    log.close()
    assert all(p.exitcode == 0 for p in processes)

    files = sorted((tmp_path / "outbox").glob("*.jsonl"))
    assert len(files) > 10  # rotated many times
    assert set(rotated) <= set(files)
    counts = Counter(str(r["id"]) for r in _lines([*files, path]))
    expected = {f"t{t}-{i}" for t in range(6) for i in range(300)} | {
        f"p{p}-{i}" for p in range(2) for i in range(300)}
    assert set(counts) == expected
    assert max(counts.values()) == 1
    assert all(f.stat().st_size < 2000 + 200 for f in files)  # rotated as soon as past the limit


class FlakyStore:
    """A store that is unreachable for its first ``failures`` uploads (an outage)."""

    def __init__(self, inner: ObjectStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def put_file(self, key: str, path: Path, **kwargs: object) -> object:
        if self.failures > 0:
            self.failures -= 1
            raise Unreachable("injected: log bucket unreachable")
        return self.inner.put_file(key, path)


def test_shipper_retries_and_deletes_only_after_upload(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "state")
    backend.ensure_bucket("logs")
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    for index in range(3):
        (outbox / f"host-2026-{index}.jsonl").write_text(f'{{"n": {index}}}\n')
    flaky = FlakyStore(backend.store("logs"), failures=2)
    shipper = Shipper(outbox, lambda: flaky, "host")  # type: ignore[arg-type, return-value]
    assert shipper.ship_once() is False  # unreachable: nothing deleted
    assert len(shipper.pending()) == 3
    shipper.start()  # ships what is left, retrying with backoff
    wait_for(lambda: not shipper.pending(), timeout=30, what="the outbox to empty")
    shipper.stop()
    keys = [info.key for info in backend.store("logs").list("oplog/")]
    assert keys == [log_key("host", f"host-2026-{i}.jsonl") for i in range(3)]
    assert shipper.failures == 2


def test_rotated_logs_under_concurrent_jobs_hold_every_job_once(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.with_values(log_max_bytes="1500", concurrency="4")
    pipeline = Pipeline(settings)
    try:
        image = make_image(tmp_path / "small.png", 32, 24)
        requests = [pipeline.submit(image, fmt="jpeg") for _ in range(24)]
        with RunningWorker(settings, detect_engine(), concurrency=4) as running:
            pipeline.results_for([r.job_id for r in requests], timeout=180)
            shipper = running.shipper
            wait_for(lambda: not shipper.pending(), timeout=60, what="every log shipped")
        logs = pipeline.backend.store(pipeline.backend.log_bucket)
        shipped = []
        for info in logs.list("oplog/"):
            target = tmp_path / "shipped" / info.key.replace("/", "_")
            target.parent.mkdir(exist_ok=True)
            logs.get_file(info.key, target)
            shipped.append(target)
        assert len(shipped) >= 3  # the 5 MB stand-in was crossed several times
        records = _lines([*shipped, settings.op_log_path])
        counts = Counter(str(r["job_id"]) for r in records)
        assert counts == Counter({r.job_id: 1 for r in requests})
    finally:
        pipeline.close()


@pytest.mark.parametrize("max_bytes", [1024])
def test_live_file_is_reopened_after_another_process_rotates(tmp_path: Path,
                                                             max_bytes: int) -> None:
    path = tmp_path / "oplog.jsonl"
    first, second = OpLog(path, max_bytes), OpLog(path, max_bytes)
    for index in range(40):
        (first if index % 2 else second).write({"id": index, "pad": "y" * 40})
    first.close()
    second.close()
    files = [*(tmp_path / "outbox").glob("*.jsonl"), path]
    ids = sorted(int(str(r["id"])) for r in _lines(files))
    assert ids == list(range(40))


class BlockedStore:
    """A log bucket that hangs until released: the slowest upload there can be."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.entered = threading.Event()

    def put_file(self, key: str, path: Path, **kwargs: object) -> object:
        self.entered.set()
        self.release.wait(60)
        return self.inner.put_file(key, path)


def test_a_hanging_upload_never_blocks_logging(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "state")
    backend.ensure_bucket("logs")
    blocked = BlockedStore(backend.store("logs"))
    log_path = tmp_path / "oplog.jsonl"
    shipper = Shipper(log_path.parent / "outbox", lambda: blocked, "host")  # type: ignore[arg-type, return-value]
    log = OpLog(log_path, 1024, on_rotate=shipper.notify)
    shipper.start()
    try:
        for index in range(200):  # rotates about 15 times while the first upload hangs
            log.write({"id": index, "pad": "z" * 40})
        assert blocked.entered.wait(10)
        assert len(shipper.pending()) >= 10  # everything is still written and waiting
    finally:
        blocked.release.set()
    wait_for(lambda: not shipper.pending(), timeout=30, what="the backlog to ship")
    shipper.stop()
    log.close()
    shipped = list(backend.store("logs").list("oplog/"))
    assert len(shipped) >= 10


def test_each_job_is_one_journal_line() -> None:
    from server.worker import describe

    done = {"status": "done", "job_id": "ab" * 16, "input_name": "cat\u202e.jpg",
            "input_format": "jpeg", "output_format": "png", "width": 20, "height": 10,
            "output_bytes": 123, "timings": {"total": 0.5}}
    assert describe(done) == ("done abababababab 'cat\\u202e.jpg' jpeg→png 20×10 123 B in "
                              "0.50 s")
    failed = {"status": "failed", "job_id": "cd" * 16, "input_name": "x.png",
              "error": "too_large: image is 30000×30000 pixels"}
    assert describe(failed) == ("failed cdcdcdcdcdcd 'x.png': too_large: image is "
                                "30000×30000 pixels")
    poison = {"status": "rejected", "message_id": "m1", "error": "bad_request: malformed JSON"}
    assert describe(poison) == "rejected message m1: bad_request: malformed JSON"
