"""Processes the benchmark starts: where the programs are, how to stop them, what they used.

Every child runs in a session of its own, so stopping it takes its whole process group (an
``imgserver``'s ImageMagick children, a shell pipeline's ``convert`` and ``composite``).
Memory and CPU are read from ``/proc``: ``VmHWM`` is one process's own peak resident set,
which is exactly "imgserver's own process, ImageMagick children aside".
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The virtualenv's bin folder: console scripts (imgserver, imgtui, moto_server) live there.
VENV_BIN: Final = Path(sys.executable).parent
#: The real ImageMagick 6 tools; /usr/local/bin/convert on this machine is a stand-in script.
CONVERT: Final = "/usr/bin/convert"
COMPOSITE: Final = "/usr/bin/composite"
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
KIB: Final = 1024


def program(name: str) -> str:
    """A console script of this project's virtualenv."""
    path = VENV_BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run 'make setup' first")
    return str(path)


def status_kib(pid: int, field: str) -> int | None:
    """A ``/proc/<pid>/status`` memory field (``VmHWM``, ``VmRSS``) in KiB, None if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def reset_peak(pid: int) -> bool:
    """Reset the process's ``VmHWM`` to its current RSS (Linux ≥ 4.0); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds of a process (``own``) and of its children it has reaped (``children``)."""

    own: float
    children: float

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.own - other.own, self.children - other.children)


def cpu_times(pid: int) -> CpuTimes | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(v) / CLOCK_TICKS for v in fields[11:15])
    return CpuTimes(utime + stime, cutime + cstime)


class PeakSampler:
    """Samples a process's ``VmHWM`` (and ``VmRSS``) until stopped; keeps the highest seen.

    ``VmHWM`` only grows, so the last sample before the process exits is its peak; sampling
    also catches the peak of a process that exits on its own before anyone asks.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"peak-{pid}", daemon=True)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        for field in ("VmHWM", "VmRSS"):
            value = status_kib(self.pid, field)
            if value is not None:
                self.peak_kib = max(self.peak_kib, value)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self.sample()
        self._stop.set()
        self._thread.join(timeout=2)
        return self.peak_kib

    @property
    def peak_mb(self) -> float:
        return self.peak_kib * KIB / 1e6


class Child:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, log: Path | None = None,
                 stdin: Path | None = None) -> None:
        self.argv = list(argv)
        self.log = log
        self._log_handle = log.open("wb") if log is not None else None
        out = self._log_handle if self._log_handle is not None else subprocess.DEVNULL
        self.started = time.perf_counter()
        source = stdin.open("rb") if stdin is not None else None
        try:
            self.process = subprocess.Popen(
                self.argv, env=dict(env) if env is not None else None, cwd=cwd,
                stdin=source if source is not None else subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT if self._log_handle is not None else subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )
        finally:
            if source is not None:
                source.close()
        self.pid = self.process.pid
        self.rusage: resource.struct_rusage | None = None
        self.ended: float | None = None

    def log_text(self) -> str:
        if self.log is None:
            return ""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, needle: str, timeout: float) -> bool:
        """Wait until ``needle`` appears in the log (False on timeout or exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            if self.exited():
                return False
            time.sleep(0.02)
        return False

    def exited(self) -> bool:
        """Whether it has exited (without reaping it)."""
        if self.process.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit, then reap it with ``wait4`` (keeping its resource usage).

        Before reaping, whatever else is left in its process group is killed: while the exited
        leader is a zombie its pid, and so the group id, cannot belong to anyone else.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.process.returncode is None:
            if self.exited():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                _, status, usage = os.wait4(self.pid, 0)
                self.ended = time.perf_counter()
                self.rusage = usage
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.argv, timeout or 0)
            time.sleep(0.005)
        return self.process.returncode

    @property
    def seconds(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Signal the process; after ``timeout`` kill its whole group. Reaps it, closes the log."""
        try:
            if self.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)
                try:
                    self.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.pid, signal.SIGKILL)
                    self.wait(10)
        finally:
            if self._log_handle is not None:
                self._log_handle.close()
                self._log_handle = None
        return self.process.returncode

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
