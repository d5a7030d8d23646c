"""End to end, across real processes: imgserver workers and imgtui submit clients.

Each scenario is one test, on the local backend and on moto (standing in for AWS) where it
applies. Nothing here sleeps to synchronise: every wait is for a condition, with a timeout.
The one deliberate pause is the outage itself (the backend is gone for 10 s by design).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.engine import convert, detect_engine
from shared import keys
from shared.config import Settings
from shared.formats import EXTENSIONS, sniff_file
from shared.hashing import sha256_file
from shared.protocol import Operations
from tests import corpus
from tests.e2e.cluster import Cluster, finish, op_records
from tests.pipeline import Pipeline, make_image, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
            ) -> Iterator[Cluster]:
    moto = request.getfixturevalue("aws_env") if settings.backend == "aws" else None
    made = Cluster(settings.with_values(visibility_timeout="10"), tmp_path, moto)
    made.init()
    try:
        yield made
    finally:
        made.close()


def converting(pid: int) -> list[int]:
    """ImageMagick processes converting a job for worker ``pid`` (its children writing an
    output; the probes a worker runs at start-up do not count)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and b"engine-output" in command:
            found.append(int(stat.parent.name))
    return found


def leftovers(settings: Settings) -> dict[str, object]:
    """What is left in the store and the queues once every client is done."""
    pipeline = Pipeline(settings)
    try:
        backend = pipeline.backend
        store = pipeline.store
        found: dict[str, object] = {
            "inputs": [i.key for i in store.list(keys.INPUT_PREFIX)],
            "results": [i.key for i in store.list(keys.RESULT_PREFIX)],
            "requests": pipeline.requests.depth(),
            "dead": backend.queue(keys.dead_letter_name(settings.queue)).depth(),
        }
        if backend.name == "aws":
            urls = backend.sqs.list_queues(  # type: ignore[attr-defined]
                QueueNamePrefix=f"{settings.queue}-reply-").get("QueueUrls", [])
            found["reply_queues"] = [u for u in urls if pipeline.reply_name not in u]
        else:
            db = sqlite3.connect(settings.state_dir / "queues.sqlite3")
            names = [row[0] for row in db.execute("SELECT name FROM queues")]
            db.close()
            found["reply_queues"] = [n for n in names if "-reply-" in n
                                     and n != pipeline.reply_name]
        return found
    finally:
        pipeline.close()


CLEAN = {"inputs": [], "results": [], "requests": (0, 0), "dead": (0, 0), "reply_queues": []}


# --- 1. the happy path ------------------------------------------------------------------------

FORMATS = ("png", "jpeg", "webp", "gif", "tiff", "bmp")


def test_happy_path_mixed_inputs_to_mixed_formats(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    samples = corpus.inputs(tmp_path / "corpus")
    extra_sizes = [corpus.jpeg(tmp_path / "corpus", f"big-{i}.jpg", (320 + 40 * i, 200 + 20 * i))
                   for i in range(9)]
    files: list[tuple[Path, int, int]] = [(s.path, s.width, s.height) for s in samples.values()]
    files += [(path, 320 + 40 * i, 200 + 20 * i) for i, path in enumerate(extra_sizes)]
    assert len(files) == 20
    jobs: dict[str, list[tuple[Path, int, int]]] = {fmt: [] for fmt in FORMATS}
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for index, (path, width, height) in enumerate(files):
        unique = inputs / f"{index:02d}-{path.name}"  # distinct stems: one output each
        unique.write_bytes(path.read_bytes())
        jobs[FORMATS[index % len(FORMATS)]].append((unique, width, height))

    log = tmp_path / "ops.jsonl"
    server = cluster.server(log_file=log)
    clients = {fmt: cluster.submit([p for p, _, _ in batch], "--format", fmt)
               for fmt, batch in jobs.items()}
    for fmt, client in clients.items():
        code, out, err = finish(client)
        assert code == 0, f"{fmt}: {out}{err}"
    assert cluster.stop(server)[0] == 0

    lines = op_records(log)
    records = {str(r["input_name"]): r for r in lines}
    assert len(lines) == len(records) == 20  # one line per job
    output_dir = cluster.settings.output
    engine = detect_engine()
    for fmt, batch in jobs.items():
        for path, width, height in batch:
            output = output_dir / f"{path.stem}.{EXTENSIONS[fmt]}"
            assert sniff_file(output) == fmt, output
            shown = corpus.magick(f"{output}[0]", "-format", "%w %h", "info:").stdout
            assert shown.split() == [str(width).encode(), str(height).encode()], output
            record = records[path.name]
            assert record["status"] == "done", json.dumps(record)
            assert record["output_sha256"] == sha256_file(output)  # what its result reported
            plain_dir = tmp_path / "plain" / path.stem
            plain_dir.mkdir(parents=True)
            plain = convert(engine, path, Operations(format=fmt, tag=None), plain_dir)
            assert corpus.pixel_difference(output, plain.path) > 0, f"{output} is not tagged"
    assert sorted(p.name for p in output_dir.iterdir()) == sorted(
        f"{p.stem}.{EXTENSIONS[fmt]}" for fmt, batch in jobs.items() for p, _, _ in batch)
    assert leftovers(cluster.settings) == CLEAN


# --- 2. two workers, two clients -------------------------------------------------------------


def test_two_workers_two_clients_hundred_jobs(cluster: Cluster, tmp_path: Path) -> None:
    sources = {}
    for client in ("a", "b"):
        folder = tmp_path / f"src-{client}"
        folder.mkdir()
        sources[client] = [make_image(folder / f"{client}{i:02d}.png", 24 + i % 7, 16)
                           for i in range(50)]
    logs = [tmp_path / "w1.jsonl", tmp_path / "w2.jsonl"]
    workers = [cluster.server(log_file=log, concurrency=2) for log in logs]
    clients = {name: cluster.submit(files, "--format", "jpeg", output=tmp_path / f"out-{name}")
               for name, files in sources.items()}
    for name, client in clients.items():
        code, out, err = finish(client, timeout=600)
        assert code == 0, f"client {name}: {out[-2000:]}{err[-2000:]}"
    for worker in workers:
        assert cluster.stop(worker)[0] == 0

    done = Counter(str(r["job_id"]) for r in op_records(*logs) if r["status"] == "done")
    assert len(done) == 100 and set(done.values()) == {1}  # each job done exactly once
    for name, files in sources.items():
        outputs = sorted(p.name for p in (tmp_path / f"out-{name}").iterdir())
        assert outputs == sorted(f"{p.stem}.jpg" for p in files)  # its own, all of them
    assert all(op_records(log) for log in logs)  # both workers took a share
    assert leftovers(cluster.settings) == CLEAN


# --- 3. SIGKILL a worker mid-job -------------------------------------------------------------


def test_sigkill_worker_mid_job_then_another_finishes_it(
    cluster: Cluster, tmp_path: Path, big_jpeg: Path
) -> None:
    first_log, second_log = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first = cluster.server(log_file=first_log, concurrency=1)
    client = cluster.submit([big_jpeg], "--format", "png", "--timeout", "300")
    wait_for(lambda: converting(first.pid), timeout=120, what="the conversion to start")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    second = cluster.server(log_file=second_log, concurrency=1)
    code, out, err = finish(client)
    assert code == 0, out + err
    assert cluster.stop(second)[0] == 0
    assert [p.name for p in cluster.settings.output.iterdir()] == ["big.png"]
    assert op_records(first_log) == []
    (record,) = op_records(second_log)
    assert (record["status"], record["receive_count"]) == ("done", 2)
    assert leftovers(cluster.settings) == CLEAN


# --- 4. SIGTERM drain ------------------------------------------------------------------------


def test_sigterm_drains_then_the_next_worker_takes_the_rest(
    cluster: Cluster, tmp_path: Path, medium_jpeg: Path
) -> None:
    log = tmp_path / "ops.jsonl"
    worker = cluster.server(log_file=log, concurrency=1)
    small = [make_image(tmp_path / f"s{i}.png") for i in range(3)]
    busy = cluster.submit([medium_jpeg], "--timeout", "300")
    wait_for(lambda: converting(worker.pid), timeout=120, what="the first conversion")
    queued = cluster.submit(small, "--timeout", "300")
    code, _, err = cluster.stop(worker, signal.SIGTERM, timeout=45)
    assert code == 0 and "Traceback" not in err
    assert finish(busy)[0] == 0  # the in-flight job finished before the worker left
    assert queued.poll() is None  # the others wait for the next worker
    later = cluster.server(log_file=log)
    assert finish(queued)[0] == 0
    assert cluster.stop(later)[0] == 0
    assert sorted(p.name for p in cluster.settings.output.iterdir()) == [
        "medium.png", "s0.png", "s1.png", "s2.png"]


# --- 5. kill the client, start it again ----------------------------------------------------------


def test_client_killed_with_jobs_in_flight_restarts_without_loss_or_duplicates(
    cluster: Cluster, tmp_path: Path, medium_jpeg: Path
) -> None:
    files = []
    for index in range(6):
        path = tmp_path / f"m{index}.jpg"
        path.write_bytes(medium_jpeg.read_bytes() + bytes([index]))  # distinct contents
        files.append(path)
    worker = cluster.server(concurrency=1)
    client = cluster.submit(files, "--format", "webp", "--timeout", "600")
    output = cluster.settings.output
    wait_for(lambda: output.exists() and any(p.suffix == ".webp" for p in output.iterdir()),
             timeout=120, what="the first result")
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    again = cluster.submit(files, "--format", "webp", "--timeout", "600")
    code, out, err = finish(again)
    assert code == 0, out + err
    assert cluster.stop(worker)[0] == 0
    journal = sqlite3.connect(cluster.settings.state_dir / "journal.sqlite3")
    rows = journal.execute("SELECT client_id, name, state, output_path, attempts, job_id "
                           "FROM jobs ORDER BY row").fetchall()
    journal.close()
    assert sorted(p.name for p in output.iterdir()) == [f"m{i}.webp" for i in range(6)], (
        rows, out)
    assert leftovers(cluster.settings) == CLEAN


# --- 6. the backend goes away for 10 s ----------------------------------------------------------


@pytest.mark.parametrize("backend_kind", ["aws"], indirect=True)  # a local disk has no outage
def test_backend_outage_then_everyone_recovers(cluster: Cluster, tmp_path: Path) -> None:
    assert cluster.moto is not None
    files = [make_image(tmp_path / f"o{i:02d}.png", 400, 300, extra=["+noise", "Random"])
             for i in range(16)]
    worker = cluster.server(concurrency=1)
    client = cluster.submit(files, "--timeout", "600")
    output = cluster.settings.output
    wait_for(lambda: output.exists() and len(list(output.iterdir())) >= 3, timeout=120,
             what="a few results before the outage")
    cluster.moto.stop()
    time.sleep(10)  # the outage itself: the endpoint refuses connections for 10 s
    cluster.moto.start()
    code, out, err = finish(client, timeout=600)
    assert code == 0, out[-2000:] + err[-2000:]
    assert worker.poll() is None  # the worker rode it out
    assert cluster.stop(worker)[0] == 0
    assert sorted(p.name for p in output.iterdir()) == [f"o{i:02d}.png" for i in range(16)]


# --- 7. abuse ----------------------------------------------------------------------------------


def _tree(root: Path, skip: tuple[Path, ...]) -> set[str]:
    found = set()
    for path in root.rglob("*"):
        if not any(path == s or s in path.parents for s in skip):
            found.add(str(path.relative_to(root)))
    return found


def test_abuse_corpus_hostile_names_and_tags(cluster: Cluster, tmp_path: Path) -> None:
    settings = cluster.settings
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    bad = corpus.abuse(hostile)
    names = ["with space.png", "quote'\"s.png", "new\nline.png", "ünï©ødé 画像.png",
             "-leading-dash.png", "..dots.png", "$(touch pwned).png"]
    good = [make_image(hostile / name) for name in names]
    before = _tree(tmp_path, (settings.output, settings.state_dir, hostile))

    log = tmp_path / "ops.jsonl"
    worker = cluster.server(log_file=log)
    # Bad inputs go straight to the queue (imgtui would refuse most before upload).
    pipeline = Pipeline(settings)
    try:
        requests = {case.name: pipeline.submit(case.path) for case in bad}
        results = pipeline.results_for([r.job_id for r in requests.values()], timeout=180)
    finally:
        pipeline.close()
    for case in bad:
        result = results[requests[case.name].job_id]
        assert (result.status, result.error.code if result.error else None) == (
            "failed", case.code), case.name
    # Hostile names and tags through the real client.
    code, out, err = finish(cluster.submit(good))
    assert code == 0, out + err
    tags = ["@/etc/passwd", "%[exif:*]", "'; rm -rf ~", "$(touch pwned)", "%w%h%[fx:1]"]
    for index, tag in enumerate(tags):
        code, out, err = finish(cluster.submit([good[0]], "--tag", tag, "--output",
                                               str(tmp_path / f"tagged-{index}")))
        assert code == 0, f"{tag}: {out}{err}"
    code, out, err = finish(cluster.submit([good[0]], "--tag", "x" * 10_000))
    assert code == 2 and "tag text must be at most 200 characters" in err
    assert worker.poll() is None  # no input killed it
    assert cluster.stop(worker)[0] == 0

    assert len(list(settings.output.iterdir())) == len(names)
    assert all(p.parent == settings.output for p in settings.output.iterdir())
    after = _tree(tmp_path, (settings.output, settings.state_dir, hostile))
    # Beside output/ and the state dir, only what the test asked for: the op log it named
    # (with its lock and outbox) and the output folders of the tag runs.
    expected = {"ops.jsonl", "ops.jsonl.lock", "outbox"}
    new = {p for p in after - before if not p.startswith("tagged-") and p not in expected}
    assert new == set()  # nothing written outside output/ and the state dir
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    statuses = Counter(str(r["status"]) for r in op_records(log))
    assert statuses["failed"] == len(bad)


# --- 8. log rotation under load ------------------------------------------------------------------


def test_log_rotation_under_concurrent_load(cluster: Cluster, tmp_path: Path) -> None:
    log = tmp_path / "shared-ops.jsonl"
    flags = ("--log-max-bytes", "2048")
    workers = [cluster.server(*flags, log_file=log, concurrency=2) for _ in range(2)]
    sources = [make_image(tmp_path / f"r{i:02d}.png", 20 + i, 20) for i in range(40)]
    code, out, err = finish(cluster.submit(sources, "--format", "jpeg"), timeout=600)
    assert code == 0, out + err
    for worker in workers:
        assert cluster.stop(worker)[0] == 0  # stopping ships what is left to ship

    pipeline = Pipeline(cluster.settings)
    try:
        logs = pipeline.backend.store(pipeline.backend.log_bucket)
        shipped = []
        for info in logs.list(keys.LOG_PREFIX):
            target = tmp_path / "shipped" / info.key.replace("/", "_")
            target.parent.mkdir(exist_ok=True)
            logs.get_file(info.key, target)
            shipped.append(target)
    finally:
        pipeline.close()
    assert len(shipped) >= 4  # the limit was crossed several times
    assert not list((log.parent / "outbox").glob("*.jsonl"))  # nothing left unshipped
    counts = Counter(str(r["job_id"]) for r in op_records(*shipped, log))
    assert len(counts) == 40 and set(counts.values()) == {1}


# --- 9. poison messages ------------------------------------------------------------------------


def test_poison_messages_are_dead_lettered_and_the_worker_keeps_serving(
    cluster: Cluster, tmp_path: Path
) -> None:
    poison = ["{this is not json", json.dumps({"v": 7, "kind": "request", "job_id": "x"}),
              "A" * 250_000, json.dumps({"v": 1, "kind": "request"}), "null"]
    pipeline = Pipeline(cluster.settings)
    try:
        for body in poison:
            pipeline.requests.send(body)
    finally:
        pipeline.close()
    log = tmp_path / "ops.jsonl"
    worker = cluster.server(log_file=log)
    code, out, err = finish(cluster.submit([make_image(tmp_path / "after.png")]))
    assert code == 0, out + err
    wait_for(lambda: sum(r["event"] == "poison" for r in op_records(log)) == len(poison),
             what="a log line per poison message")
    assert worker.poll() is None
    assert cluster.stop(worker)[0] == 0
    pipeline = Pipeline(cluster.settings)
    try:
        dead = pipeline.backend.queue(keys.dead_letter_name(cluster.settings.queue))
        parked: list[str] = []
        wait_for(lambda: (parked.extend(m.body for m in dead.receive(10, wait_seconds=1)),
                          len(parked) >= len(poison))[1], what="every poison message parked")
        assert sorted(parked) == sorted(poison)
    finally:
        pipeline.close()
