"""The two backends as the benchmark runs them: real ``imgserver`` and ``imgtui`` processes.

- local: one state dir (SQLite queue + directory store) shared by the worker and the client.
- moto: ``moto_server`` (moto's own HTTP server) as a child process on a free loopback port,
  provisioned by ``imgserver init``; the TLS-only bucket policies that init sets are then
  removed, as in the tests, because moto cannot evaluate their ``Bool`` condition and would
  refuse every request. boto3 finds moto only through ``AWS_ENDPOINT_URL``, as in production.

Children get a clean environment (no ``AWS_*``, no ``IMGPIPE_*`` from the caller) and run in
their own folder, so no ``imgpipe.toml`` of the caller's can change what is measured.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

from bench.procs import Child, CpuTimes, cpu_times, program

LOOPBACK: Final = "127.0.0.1"
REGION: Final = "us-east-1"
#: The lab's own tag text: outputs are then comparable pixel for pixel with the lab's.
TAG: Final = "processed by EC2"
READY_TIMEOUT: Final = 60.0
REPO: Final = Path(__file__).resolve().parent.parent


#: Modules every measured process imports, compiled once before anything is timed.
WARM_IMPORTS: Final = ("server.commands", "server.engine", "shared.backends.aws", "tui.client",
                       "tui.submit", "tui.app", "bench.latency_client", "boto3", "botocore.client")


def use_bytecode_cache(folder: Path) -> None:
    """Let the processes measured here keep compiled bytecode, in ``folder``.

    This machine sets ``PYTHONDONTWRITEBYTECODE=1`` and the virtualenv holds no ``.pyc``
    (uv installs without compiling by default), so every process would compile boto3,
    botocore, rich and textual from source at each start: 0.3 s more per start, which no
    installed deployment pays. The cache goes to a folder of the benchmark's own
    (``PYTHONPYCACHEPREFIX``), so neither the tree nor the virtualenv is touched.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    code = f"import importlib\nfor name in {WARM_IMPORTS!r}: importlib.import_module(name)"
    subprocess.run([sys.executable, "-c", code], env=clean_environment(), cwd=REPO, check=True,
                   capture_output=True, timeout=300)


def clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IMGPIPE_", "MAGICK_", "OMP_"))}
    env["IMGPIPE_LOG_LEVEL"] = "INFO"
    # bench.latency_client runs from the repository, wherever the child's folder is (after
    # any PYTHONPATH given, so that a copy of the tree can be measured with the same bench).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (env.get("PYTHONPATH"), str(REPO))))
    return env


@dataclass
class Stack:
    """How to reach one backend: the environment and flags of every process on it."""

    name: str  # "local" or "moto"
    backend: str  # imgpipe's name for it: "local" or "aws"
    env: dict[str, str]
    moto: Child | None = None

    def flags(self, state_dir: Path) -> list[str]:
        return ["--backend", self.backend, "--state-dir", str(state_dir)]

    def service_cpu(self) -> CpuTimes | None:
        """CPU used so far by the backend's own server process (moto), if it has one."""
        return cpu_times(self.moto.pid) if self.moto is not None else None


def local_stack() -> Stack:
    return Stack("local", "local", clean_environment())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
                answer.read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def moto_stack(work: Path) -> Iterator[Stack]:
    """A provisioned moto server for the duration of the block."""
    port = _free_port()
    endpoint = f"http://{LOOPBACK}:{port}"
    env = clean_environment() | {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    work.mkdir(parents=True, exist_ok=True)
    server = Child([program("moto_server"), "-H", LOOPBACK, "-p", str(port)], env=env,
                   cwd=work, log=work / "moto.log")
    try:
        _wait_http(f"{endpoint}/moto-api/data.json", READY_TIMEOUT)
        stack = Stack("moto", "aws", env, moto=server)
        init = subprocess.run([program("imgserver"), "init", *stack.flags(work / "init")],
                              env=env, cwd=work, capture_output=True, text=True, timeout=120,
                              check=False)
        if init.returncode:
            raise RuntimeError(f"imgserver init on moto failed: {init.stdout}{init.stderr}")
        _lift_tls_policies(endpoint)
        yield stack
    finally:
        server.stop()


def _lift_tls_policies(endpoint: str) -> None:
    """See the module docstring: moto cannot evaluate the TLS-only policy's condition."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
    try:
        for bucket in s3.list_buckets().get("Buckets", ()):
            s3.delete_bucket_policy(Bucket=bucket["Name"])
    finally:
        s3.close()


class Worker:
    """One ``imgserver run`` process, started and ready. ``OPTIONS`` go on every worker's
    command line (``python -m bench --worker-option=--concurrency=3``); none by default, so
    the worker runs with its own defaults."""

    OPTIONS: ClassVar[list[str]] = []

    def __init__(self, stack: Stack, state_dir: Path, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.child = Child([program("imgserver"), "run", *stack.flags(state_dir),
                            *self.OPTIONS],
                           env=stack.env, cwd=run_dir, log=run_dir / "imgserver.log")
        if not self.child.wait_for_log(" converters", READY_TIMEOUT):
            log = self.child.log_text()
            self.child.stop()
            raise RuntimeError(f"imgserver did not start:\n{log[-2000:]}")
        self.pid = self.child.pid
        self.converters = _converters(self.child.log_text())

    def cpu(self) -> CpuTimes | None:
        """Its own CPU (``own``) and that of the ImageMagick runs it has reaped (``children``)."""
        return cpu_times(self.pid)

    def stop(self) -> None:
        self.child.stop()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _converters(log: str) -> int | None:
    for part in log.split(","):
        words = part.split()
        if len(words) == 2 and words[1] == "converters" and words[0].isdigit():
            return int(words[0])
    return None


def submit_argv(stack: Stack, state_dir: Path, output: Path, files: list[Path],
                fmt: str = "png") -> list[str]:
    """``imgtui submit`` of ``files`` beside a separate worker (``--workers 0``)."""
    return [program("imgtui"), "submit", *stack.flags(state_dir), "--workers", "0",
            "--output", str(output), "--format", fmt, "--tag", TAG, "--timeout", "600",
            *map(str, files)]
