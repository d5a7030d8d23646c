"""Run one ImageMagick process: no shell, own process group, wall-clock timeout.

The child gets a session of its own (start_new_session) so that on timeout the whole group
(ImageMagick and anything it might have spawned) is killed with one signal, and so that a
Ctrl-C meant for the worker does not reach it half-way through a write.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Completed:
    """A finished run: exit status (negative: killed by that signal), output, duration."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


class RunTimeout(Exception):
    """The run exceeded its wall-clock limit; its process group has been killed and reaped."""

    def __init__(self, seconds: float, pgid: int) -> None:
        super().__init__(f"timed out after {seconds:.1f} s")
        self.seconds = seconds
        self.pgid = pgid


def run_magick(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float
               ) -> Completed:
    """Run ``argv`` to completion or kill its process group after ``timeout`` seconds.

    Raises ``RunTimeout`` on timeout and ``OSError`` when the binary cannot be started.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise RunTimeout(time.monotonic() - started, process.pid) from None
    except BaseException:
        _kill_group(process)  # KeyboardInterrupt, SystemExit: leave no orphan behind
        raise
    return Completed(process.returncode, _text(stdout), _text(stderr),
                     time.monotonic() - started)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # The group id is the child's pid (new session). It is safe to signal until the child is
    # reaped: before that its pid, and so the group id, cannot be reused by anyone else.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=5)  # reap it and close the pipes
    except subprocess.TimeoutExpired:  # a descendant escaped the group and holds a pipe
        process.kill()
        process.wait()


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
