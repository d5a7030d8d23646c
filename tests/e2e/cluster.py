"""Real imgserver and imgtui processes on one backend, as a user and an operator run them.

Every process is started through its installed console script with a clean environment (no
IMGPIPE_* or AWS_* leaking from the developer's shell; on aws, only the moto variables), and
every process is killed when the test ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import Settings
from tests.conftest import imgserver_argv, imgtui_argv, subprocess_env
from tests.moto_server import MotoServer
from tests.pipeline import Pipeline


@dataclass
class Cluster:
    settings: Settings
    root: Path
    moto: MotoServer | None = None
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return subprocess_env({"IMGPIPE_POLL_WAIT": "1"}, self.moto)

    def flags(self, settings: Settings | None = None) -> list[str]:
        settings = settings or self.settings
        flags = ["--backend", settings.backend, "--state-dir", str(settings.state_dir),
                 "--visibility-timeout", str(settings.visibility_timeout)]
        if settings.bucket:
            flags += ["--bucket", settings.bucket, "--log-bucket", str(settings.log_bucket)]
        return flags

    def init(self) -> str:
        done = subprocess.run(imgserver_argv("init", *self.flags()), env=self.env,
                              capture_output=True, text=True, timeout=120, cwd=self.root)
        assert done.returncode == 0, done.stderr
        if self.moto is not None:
            Pipeline(self.settings).close()  # lifts the TLS-only policy moto cannot evaluate
        return done.stdout

    def server(self, *extra: str, log_file: Path | None = None, concurrency: int = 2
               ) -> subprocess.Popen[str]:
        argv = imgserver_argv("run", *self.flags(), "--concurrency", str(concurrency), *extra)
        if log_file is not None:
            argv += ["--log-file", str(log_file)]
        return self._start(argv)

    def submit(self, files: Iterable[Path], *extra: str, output: Path | None = None,
               state_dir: Path | None = None) -> subprocess.Popen[str]:
        settings = self.settings
        if state_dir is not None:
            settings = settings.with_values(state_dir=str(state_dir))
        argv = imgtui_argv("submit", *self.flags(settings), "--workers", "0",
                           "--output", str(output or settings.output), *extra,
                           *map(str, files))
        return self._start(argv)

    def _start(self, argv: list[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(argv, env=self.env, cwd=self.root, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[str], sig: int = signal.SIGTERM,
             timeout: float = 60) -> tuple[int, str, str]:
        if process.poll() is None:
            process.send_signal(sig)
        out, err = process.communicate(timeout=timeout)
        return process.returncode, out, err

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                process.communicate(timeout=30)


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    """Wait for a process that ends by itself; its exit code and output."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def op_records(*paths: Path) -> list[dict[str, object]]:
    records = []
    for path in paths:
        if path.exists():
            records += [json.loads(line) for line in path.read_text().splitlines() if line]
    return records


def wait_pid_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive")
