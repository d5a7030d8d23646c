"""imgserver as a real process: SIGKILL mid-job, SIGTERM drain, bad configuration, check."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from tests.conftest import imgserver_argv, subprocess_env
from tests.moto_server import MotoServer
from tests.pipeline import Pipeline, make_image, wait_for


def server_flags(settings: Settings) -> list[str]:
    flags = ["--backend", settings.backend, "--state-dir", str(settings.state_dir),
             "--visibility-timeout", str(settings.visibility_timeout), "--concurrency", "1"]
    if settings.bucket:
        flags += ["--bucket", settings.bucket, "--log-bucket", str(settings.log_bucket)]
    return flags


@pytest.fixture
def spawn(settings: Settings, request: pytest.FixtureRequest
          ) -> Iterator[object]:
    """Start imgserver processes on the test's backend; all are killed at the end."""
    started: list[subprocess.Popen[str]] = []
    moto = request.getfixturevalue("aws_env") if settings.backend == "aws" else None

    def start(*extra: str, log_file: Path | None = None, using: Settings | None = None
              ) -> subprocess.Popen[str]:
        argv = imgserver_argv("run", *server_flags(using or settings), *extra)
        if log_file is not None:
            argv += ["--log-file", str(log_file)]
        env = subprocess_env({"IMGPIPE_POLL_WAIT": "1"}, moto if isinstance(moto, MotoServer)
                             else None)
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=30)
        if stderr:
            print(f"--- imgserver {process.pid} stderr ---\n{stderr}")


def records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_a_worker_killed_mid_job_loses_nothing(
    settings: Settings, spawn: object, medium_jpeg: Path, tmp_path: Path
) -> None:
    settings = settings.with_values(visibility_timeout="5")
    pipeline = Pipeline(settings)
    try:
        request = pipeline.submit(medium_jpeg, fmt="png")
        first = spawn(log_file=tmp_path / "first.jsonl", using=settings)  # type: ignore[operator]
        wait_for(lambda: (pipeline.collect(0.2), request.job_id in pipeline.collected.progress)[1],
                 timeout=120, what="the first worker to start the job")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        second = spawn(log_file=tmp_path / "second.jsonl", using=settings)  # type: ignore[operator]
        result = pipeline.results_for([request.job_id], timeout=120)[request.job_id]
        assert result.status == "done"
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        pipeline.collect(0.5)
        assert len(pipeline.collected.results[request.job_id]) == 1  # done once
        assert records(tmp_path / "first.jsonl") == []  # killed before it finished
        (record,) = records(tmp_path / "second.jsonl")
        assert record["receive_count"] == 2  # the redelivery after the visibility timeout
        outputs = list(pipeline.store.list("out/"))
        assert [o.key for o in outputs if not o.key.endswith(".json")] == [result.output.key]
        assert pipeline.requests.depth() == (0, 0)
    finally:
        pipeline.close()


def test_sigterm_drains_in_flight_and_leaves_the_queue(
    settings: Settings, spawn: object, big_jpeg: Path, tmp_path: Path
) -> None:
    pipeline = Pipeline(settings)
    try:
        busy = pipeline.submit(big_jpeg, fmt="png")
        worker = spawn(log_file=tmp_path / "log.jsonl")  # type: ignore[operator]
        wait_for(lambda: (pipeline.collect(0.2), busy.job_id in pipeline.collected.progress)[1],
                 timeout=120, what="the worker to start the job")
        queued = [pipeline.submit(make_image(tmp_path / f"q{i}.png")) for i in range(3)]
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert worker.wait(timeout=60) == 0
        assert time.monotonic() - started < 35  # within the 30 s grace period
        _, stderr = worker.communicate()
        assert "Traceback" not in stderr
        result = pipeline.results_for([busy.job_id], timeout=10)[busy.job_id]
        assert result.status == "done"  # the in-flight job finished
        visible, in_flight = pipeline.requests.depth()
        assert visible + in_flight == len(queued)  # the rest waits for the next worker
        assert all(q.job_id not in pipeline.collected.results for q in queued)
    finally:
        pipeline.close()


def test_bad_configuration_and_unreachable_backend(tmp_path: Path) -> None:
    env = subprocess_env()
    done = subprocess.run(imgserver_argv("--concurrency", "0"), env=env, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("imgserver: invalid concurrency from --concurrency: must be "
                                   "from 1 to 256 (got 0)")
    # An AWS endpoint where nothing listens: a clear line, no traceback, exit 3.
    env |= {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": "/dev/null"}
    done = subprocess.run(imgserver_argv("--backend", "aws"), env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "unreachable" in done.stderr.lower()


def test_init_twice_then_check(settings: Settings, tmp_path: Path,
                               request: pytest.FixtureRequest) -> None:
    moto = request.getfixturevalue("aws_env") if settings.backend == "aws" else None
    env = subprocess_env(moto=moto)
    flags = server_flags(settings)
    first = subprocess.run(imgserver_argv("init", *flags), env=env, capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    second = subprocess.run(imgserver_argv("init", *flags), env=env, capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    states = [line.split()[2] for line in second.stdout.splitlines()]
    assert states == ["exists"] * 3, second.stdout  # queue, data bucket, log bucket
    if settings.backend == "aws":
        # moto refuses everything under the TLS-only policy (it cannot evaluate `Bool`).
        backend = Pipeline(settings)  # lifts it, as the other tests do
        backend.close()
    check = subprocess.run(imgserver_argv("check", *flags), env=env, capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    lines = check.stdout.splitlines()
    assert all(line.startswith("PASS") for line in lines), check.stdout
    names = " ".join(lines)
    for item in ("backend reachable", "store", "queue", "ImageMagick", "security policy",
                 "output formats"):
        assert item in names


def test_check_fails_with_exit_1_when_the_queue_is_missing(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    moto = request.getfixturevalue("aws_env") if settings.backend == "aws" else None
    done = subprocess.run(imgserver_argv("check", *server_flags(settings), "--queue", "nope"),
                          env=subprocess_env(moto=moto), capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0].startswith("FAIL  backend reachable")
    assert "nope" in done.stdout


def test_once_drains_the_queue_and_exits(settings: Settings, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:
    pipeline = Pipeline(settings)
    try:
        jobs = [pipeline.submit(make_image(tmp_path / f"o{i}.png")) for i in range(5)]
        moto = request.getfixturevalue("aws_env") if settings.backend == "aws" else None
        done = subprocess.run(imgserver_argv("run", *server_flags(settings), "--once"),
                              env=subprocess_env({"IMGPIPE_POLL_WAIT": "1"}, moto),
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert pipeline.requests.depth() == (0, 0)
        results = pipeline.results_for([j.job_id for j in jobs], timeout=10)
        assert {r.status for r in results.values()} == {"done"}
    finally:
        pipeline.close()
