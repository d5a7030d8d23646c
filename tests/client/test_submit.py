"""``imgtui submit`` as a user runs it, on both backends, and the client engine under it."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.engine import detect_engine
from shared.config import Settings
from shared.formats import sniff_file
from shared.hashing import sha256_file
from tests.conftest import imgtui_argv, subprocess_env
from tests.moto_server import MotoServer
from tests.pipeline import Pipeline, RunningWorker, make_image, wait_for
from tui.client import Client
from tui.jobs import Job, State


def client_flags(settings: Settings, *, workers: int) -> list[str]:
    flags = ["--backend", settings.backend, "--state-dir", str(settings.state_dir),
             "--output", str(settings.output), "--workers", str(workers)]
    if settings.bucket:
        flags += ["--bucket", settings.bucket, "--log-bucket", str(settings.log_bucket)]
    return flags


@pytest.fixture
def worker_for(settings: Settings, request: pytest.FixtureRequest) -> Iterator[object]:
    """On aws a separate worker serves the client (the dashboard hosts one only locally)."""
    if settings.backend == "local":
        yield None
        return
    Pipeline(settings).close()  # provision, and lift moto's TLS-only policy
    with RunningWorker(settings, detect_engine()) as running:
        yield running


def run_submit(settings: Settings, *files: Path, timeout: float = 120, extra: tuple[str, ...]
               = (), request: pytest.FixtureRequest) -> subprocess.CompletedProcess[str]:
    moto = request.getfixturevalue("aws_env") if settings.backend == "aws" else None
    workers = 2 if settings.backend == "local" else 0
    argv = imgtui_argv("submit", *client_flags(settings, workers=workers), *extra,
                       *map(str, files))
    return subprocess.run(argv, env=subprocess_env(moto=moto if isinstance(moto, MotoServer)
                                                   else None),
                          capture_output=True, text=True, timeout=timeout,
                          cwd=settings.state_dir.parent)


def test_submit_converts_every_file_and_exits_0(
    settings: Settings, worker_for: object, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    files = [make_image(tmp_path / "holiday photo.jpg", 120, 80),
             make_image(tmp_path / "logo.png", 40, 40),
             make_image(tmp_path / "anim.gif", 30, 20)]
    done = run_submit(settings, *files, extra=("--format", "webp"), request=request)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    for source in files:
        output = settings.output / f"{source.stem}.webp"
        assert f"{source}: done -> {output}" in lines
        assert sniff_file(output) == "webp"
    assert sorted(p.name for p in settings.output.iterdir()) == sorted(
        f"{f.stem}.webp" for f in files)  # no temp files left behind


def test_submit_reports_each_failure_and_exits_1(
    settings: Settings, worker_for: object, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    good = make_image(tmp_path / "good.png")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    missing = tmp_path / "missing.png"
    done = run_submit(settings, good, text, missing, request=request)
    assert done.returncode == 1
    out = done.stdout
    assert f"{good}: done -> " in out
    assert f"{text}: rejected: not a supported image" in out
    assert f"{missing}: rejected: no such file" in out
    assert "Traceback" not in done.stderr


def test_existing_outputs_are_never_overwritten(
    settings: Settings, worker_for: object, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings.output.mkdir(parents=True)
    precious = settings.output / "cat.png"
    precious.write_bytes(b"the user's own file")
    source = make_image(tmp_path / "cat.jpg")
    first = run_submit(settings, source, request=request)
    assert first.returncode == 0
    # The same command again: already converted, output in place: nothing converted twice.
    rerun = run_submit(settings, source, request=request)
    assert rerun.returncode == 0
    assert rerun.stdout.strip().endswith("cat-1.png (already converted)")
    forced = run_submit(settings, source, extra=("--again",), request=request)
    assert forced.returncode == 0
    assert precious.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in settings.output.iterdir()) == ["cat-1.png", "cat-2.png",
                                                                 "cat.png"]


def test_hostile_names_stay_in_the_output_folder(
    settings: Settings, worker_for: object, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    names = ["-rf --help.png", "quote'\"name.png", "üñí çødé 画像.png", "..weird.png",
             "new\nline.png", "a;b|c&d$(x).png"]
    sources = [make_image(tmp_path / name) for name in names]
    done = run_submit(settings, *sources, request=request)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(done.stdout.splitlines()) == len(names)  # one line each, newline escaped
    assert "new\\nline.png: done -> " in done.stdout
    outputs = sorted(p.name for p in settings.output.iterdir())
    assert len(outputs) == len(names)
    assert all("/" not in name and "\n" not in name for name in outputs)
    assert all(p.parent == settings.output for p in settings.output.iterdir())
    assert not any(name.startswith(".") for name in outputs)


def test_a_job_without_a_worker_times_out(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if settings.backend == "aws":
        Pipeline(settings).close()
    source = make_image(tmp_path / "lonely.png")
    moto = request.getfixturevalue("aws_env") if settings.backend == "aws" else None
    argv = imgtui_argv("submit", *client_flags(settings, workers=0), "--timeout", "2",
                       str(source))
    started = time.monotonic()
    done = subprocess.run(argv, env=subprocess_env(moto=moto), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert f"{source}: timed out: no result within 2 s" in done.stdout
    assert time.monotonic() - started < 30


# --- the client engine, in process -----------------------------------------------------


class Recorder:
    """Every state each job passed through, as the client reported it."""

    def __init__(self) -> None:
        self.states: dict[int, list[State]] = {}
        self.lock = threading.Lock()

    def __call__(self, job: Job) -> None:
        with self.lock:
            seen = self.states.setdefault(job.row, [])
            if not seen or seen[-1] is not job.state:
                seen.append(job.state)


def open_client(settings: Settings, recorder: Recorder | None = None) -> Client:
    client = Client(settings, on_change=recorder, poll_wait=0.5)
    client.start()
    assert client.wait_connected(30)
    return client


def test_two_clients_on_one_state_dir_never_share_replies(
    settings: Settings, tmp_path: Path
) -> None:
    engine = detect_engine()
    Pipeline(settings).close()
    first = open_client(settings.with_values(output=str(tmp_path / "out-a")))
    second = open_client(settings.with_values(output=str(tmp_path / "out-b")))
    try:
        assert first.client_id != second.client_id
        assert first.reply_queue_name != second.reply_queue_name
        a = [make_image(tmp_path / f"a{i}.png", 20 + i, 20) for i in range(4)]
        b = [make_image(tmp_path / f"b{i}.png", 30 + i, 30) for i in range(4)]
        first.add_paths(a)
        second.add_paths(b)
        with RunningWorker(settings, engine):
            wait_for(lambda: len(first.jobs) == 4 and all(j.final for j in first.jobs.values())
                     and len(second.jobs) == 4
                     and all(j.final for j in second.jobs.values()), timeout=120,
                     what="both clients' jobs")
        assert sorted(p.name for p in (tmp_path / "out-a").iterdir()) == [
            f"a{i}.png" for i in range(4)]
        assert sorted(p.name for p in (tmp_path / "out-b").iterdir()) == [
            f"b{i}.png" for i in range(4)]
        assert all(j.state is State.DONE for j in (*first.jobs.values(), *second.jobs.values()))
    finally:
        first.close()
        second.close()


def test_every_state_in_order_and_the_output_verified(settings: Settings, tmp_path: Path
                                                      ) -> None:
    Pipeline(settings).close()
    recorder = Recorder()
    client = open_client(settings, recorder)
    try:
        source = make_image(tmp_path / "pic.jpg", 200, 100)
        with RunningWorker(settings, detect_engine()):
            client.add_paths([source])
            wait_for(lambda: client.jobs and all(j.final for j in client.jobs.values()),
                     timeout=60, what="the job")
        (job,) = client.jobs.values()
        assert recorder.states[job.row] == [State.WAITING, State.UPLOADING, State.QUEUED,
                                            State.PROCESSING, State.DOWNLOADING, State.DONE]
        assert job.output_path == (settings.output / "pic.png").resolve()
        assert sha256_file(job.output_path) == job.output_sha256
        assert (job.width, job.height) == (200, 100)
        assert job.latency is not None and job.latency > 0
        assert job.worker_id and {"convert", "download"} <= set(job.timings)
    finally:
        client.close()
    # After the download, the result objects and every message are gone.
    check = Pipeline(settings)
    try:
        assert list(check.store.list("out/")) == []
        assert list(check.store.list("in/")) == []
        assert check.requests.depth() == (0, 0)
    finally:
        check.close()


def test_a_restarted_client_resumes_with_its_original_deadlines(
    settings: Settings, tmp_path: Path
) -> None:
    Pipeline(settings).close()
    first = open_client(settings.with_values(timeout="120"))
    sources = [make_image(tmp_path / f"r{i}.png") for i in range(3)]
    first.add_paths(sources)
    wait_for(lambda: len(first.jobs) == 3
             and all(j.state is State.QUEUED for j in first.jobs.values()),
             what="three queued jobs")
    deadlines = {j.job_id: j.deadline for j in first.jobs.values()}
    identity = first.client_id
    first.close()  # quits with jobs in flight: they stay in the journal, as does the queue

    second = open_client(settings)
    try:
        assert second.client_id == identity  # took over the identity and its reply queue
        assert {j.job_id: j.deadline for j in second.jobs.values()} == deadlines
        with RunningWorker(settings, detect_engine()):
            wait_for(lambda: all(j.state is State.DONE for j in second.jobs.values()),
                     timeout=120, what="the resumed jobs")
        assert sorted(p.name for p in settings.output.iterdir()) == [f"r{i}.png"
                                                                     for i in range(3)]
    finally:
        second.close()


def test_cancel_withdraws_the_request_and_a_late_result_is_deleted(
    settings: Settings, tmp_path: Path
) -> None:
    Pipeline(settings).close()
    client = open_client(settings)
    try:
        client.add_paths([make_image(tmp_path / "c.png")])
        wait_for(lambda: client.jobs and next(iter(client.jobs.values())).state is State.QUEUED,
                 what="queued")
        (job,) = client.jobs.values()
        assert client.cancel(job.row)
        assert job.state is State.CANCELLED
        with RunningWorker(settings, detect_engine()) as running:
            wait_for(lambda: running.worker.processed >= 1, what="the worker to answer")
        check = Pipeline(settings)
        try:
            wait_for(lambda: list(check.store.list("out/")) == [], what="no result left")
            assert list(check.store.list("in/")) == []
        finally:
            check.close()
        assert not settings.output.exists() or list(settings.output.iterdir()) == []
        assert client.retry(job.row)
        with RunningWorker(settings, detect_engine()):
            wait_for(lambda: job.state is State.DONE, timeout=60, what="the retried job")
    finally:
        client.close()
