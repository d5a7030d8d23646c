"""Scale: 1,000 small files dropped into input/ at once, with the dashboard running.

The dashboard is the real ``imgtui`` (Textual) in a detached tmux session on a private socket,
with ``--workers 0`` beside a separate ``imgserver`` process, both on one local state dir.
One file goes through first (proving intake, client and worker are up); then the 1,000 are
renamed into input/ in one burst, and the clock runs until output/ holds all of them. Peak
RSS is each process's own ``VmHWM``: the dashboard's, and imgserver's without its
ImageMagick children.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.procs import PeakSampler, cpu_times, program, status_kib
from bench.report import Figure, check_at_most
from bench.services import TAG, Stack, Worker

SCALE_TIMEOUT: Final = 420.0
TARGET_CLIENT_MB: Final = 250.0
TARGET_WORKER_MB: Final = 120.0


class Dashboard:
    """imgtui in a detached tmux session on a socket of its own."""

    def __init__(self, stack: Stack, state: Path, input_dir: Path, output: Path,
                 work: Path) -> None:
        self.socket = f"imgpipe-bench-{os.getpid()}"
        command = shlex.join([program("imgtui"), "dashboard", *stack.flags(state),
                              "--input", str(input_dir), "--output", str(output),
                              "--workers", "0", "--format", "png", "--tag", TAG,
                              "--timeout", "900"])
        self.env = stack.env | {"TERM": "xterm-256color"}
        self.tmux = shutil.which("tmux") or "tmux-is-missing"
        self._tmux("new-session", "-d", "-s", "bench", "-x", "200", "-y", "50",
                   "-c", str(work), f"exec {command}")
        self.pid = int(self._tmux("list-panes", "-t", "bench", "-F", "#{pane_pid}").split()[0])
        self.socket_path = Path(self._tmux("display-message", "-p", "#{socket_path}").strip())

    def _tmux(self, *args: str) -> str:
        done = subprocess.run([self.tmux, "-L", self.socket, "-f", os.devnull, *args],
                              env=self.env, capture_output=True, text=True, timeout=30,
                              check=True)
        return done.stdout

    def screen(self) -> str:
        try:
            return self._tmux("capture-pane", "-p", "-t", "bench")
        except subprocess.SubprocessError:
            return ""

    def alive(self) -> bool:
        return status_kib(self.pid, "VmRSS") is not None

    def close(self) -> None:
        """Quit with its own key (q), then make sure the session and its server are gone."""
        with contextlib.suppress(subprocess.SubprocessError):
            self._tmux("send-keys", "-t", "bench", "q")
        deadline = time.monotonic() + 15
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(subprocess.SubprocessError):
            self._tmux("kill-server")
        # tmux leaves its socket behind when its server is killed.
        self.socket_path.unlink(missing_ok=True)


def _count(folder: Path) -> int:
    try:
        return sum(1 for entry in os.scandir(folder) if not entry.name.startswith("."))
    except FileNotFoundError:
        return 0


def _wait_count(folder: Path, count: int, timeout: float, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count(folder) >= count:
            return True
        if not alive():
            return False
        time.sleep(0.05)
    return False


def measure(files: list[Path], warmup: Path, work: Path, stack: Stack,
            progress: Callable[[str], None] = print) -> tuple[dict[str, Any], list[Figure]]:
    shutil.rmtree(work, ignore_errors=True)
    state, input_dir, output, staging = (work / name for name in
                                         ("state", "input", "output", "staging"))
    for folder in (input_dir, output, staging):
        folder.mkdir(parents=True)
    # Staged on the same file system, so that dropping them is one rename each.
    for number, path in enumerate(files):
        shutil.copyfile(path, staging / f"drop-{number:04d}{path.suffix}")
    dropped = sorted(staging.iterdir())
    raw: dict[str, Any] = {"files": len(files), "image": "128×96 JPEG → PNG",
                           "dashboard": "imgtui in tmux, --workers 0, beside imgserver"}
    with Worker(stack, state, work / "worker") as worker:
        worker_peak = PeakSampler(worker.pid).start()
        dashboard = Dashboard(stack, state, input_dir, output, work)
        try:
            client_peak = PeakSampler(dashboard.pid).start()
            shutil.copyfile(warmup, input_dir / f"warmup{warmup.suffix}")
            if not _wait_count(output, 1, 60, dashboard.alive):
                raise RuntimeError(f"the dashboard did not convert a first file:\n"
                                   f"{dashboard.screen()}")
            time.sleep(0.5)  # let the first job's clean-up finish
            idle_client_kib = status_kib(dashboard.pid, "VmRSS")
            worker_cpu0, client_cpu0 = worker.cpu(), cpu_times(dashboard.pid)
            started = time.perf_counter()
            for path in dropped:
                path.rename(input_dir / path.name)
            dropped_s = time.perf_counter() - started
            complete = _wait_count(output, len(files) + 1, SCALE_TIMEOUT, dashboard.alive)
            seconds = time.perf_counter() - started
            worker_cpu1, client_cpu1 = worker.cpu(), cpu_times(dashboard.pid)
            screen = dashboard.screen()
            client_mb = client_peak.stop() * 1024 / 1e6
        finally:
            dashboard.close()
        worker_mb = worker_peak.stop() * 1024 / 1e6
    done = _count(output) - 1
    n = max(1, done)
    raw.update({
        "complete": complete, "done": done, "seconds": seconds, "drop_seconds": dropped_s,
        "images_per_s": done / seconds if seconds else None,
        "imgtui_peak_rss_mb": client_mb,
        "imgtui_idle_rss_mb": (idle_client_kib or 0) * 1024 / 1e6,
        "imgserver_peak_rss_mb": worker_mb,
        "cpu_per_image_s": {
            "imagemagick": (worker_cpu1.children - worker_cpu0.children) / n
            if worker_cpu0 and worker_cpu1 else None,
            "imgserver": (worker_cpu1.own - worker_cpu0.own) / n
            if worker_cpu0 and worker_cpu1 else None,
            "imgtui": (client_cpu1.own - client_cpu0.own) / n
            if client_cpu0 and client_cpu1 else None,
        },
        "final_screen": screen.rstrip().splitlines()[:6],
    })
    progress(f"scale: {done} of {len(files)} in {seconds:.1f} s, imgtui {client_mb:.0f} MB, "
             f"imgserver {worker_mb:.0f} MB")
    figures = [
        Figure("scale", f"{len(files)} files dropped at once, until all done", seconds, "s",
               passed=complete if not complete else None,
               note=f"{done / seconds:.1f} img/s" if complete else f"only {done} done"),
        Figure("scale", f"imgtui (dashboard) peak RSS, {len(files)} jobs", client_mb, "MB",
               target=f"≤ {TARGET_CLIENT_MB:.0f} MB",
               passed=check_at_most(client_mb, TARGET_CLIENT_MB)),
        Figure("scale", "imgserver peak RSS (own process)", worker_mb, "MB",
               target=f"≤ {TARGET_WORKER_MB:.0f} MB",
               passed=check_at_most(worker_mb, TARGET_WORKER_MB)),
    ]
    return raw, figures
