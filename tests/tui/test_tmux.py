"""The real ``imgtui`` console script in a real terminal (tmux), on the local backend.

It starts the dashboard as a user would (in a fresh working dir, embedded worker, defaults),
drops an image into input/, waits for the converted file in output/, reads the screen with
``tmux capture-pane`` and checks it says done for that file, then quits with ``q``. tmux runs
on a private socket, killed by a finalizer whatever happens. The Makefile installs tmux, so
this test never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .helpers import make_png

TIMEOUT = 90.0


def _until(predicate: Callable[[], bool], what: str, screen: Callable[[], str],
           timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen()}")
        time.sleep(0.2)  # polling a separate process: nothing to await


class Tmux:
    def __init__(self, socket: str) -> None:
        self.binary = shutil.which("tmux") or "tmux"
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, "-L", self.socket, *args], check=check,
                              capture_output=True, text=True, timeout=30)

    def screen(self) -> str:
        result = self.run("capture-pane", "-p", "-t", "imgtui", check=False)
        return result.stdout if result.returncode == 0 else f"(no pane: {result.stderr})"

    def alive(self) -> bool:
        return self.run("has-session", "-t", "imgtui", check=False).returncode == 0


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    assert shutil.which("tmux"), "tmux is missing: `make test` installs it (scripts/ensure-deps)"
    server = Tmux(f"imgpipe-test-{os.getpid()}")
    yield server
    server.run("kill-server", check=False)


def test_real_imgtui_in_tmux_converts_a_dropped_image(tmux: Tmux, tmp_path: Path) -> None:
    imgtui = Path(sys.executable).with_name("imgtui")
    assert imgtui.is_file(), f"no console script at {imgtui}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
    env |= {"TERM": "xterm-256color", "IMGPIPE_POLL_WAIT": "1"}
    env.pop("TMUX", None)
    subprocess.run([tmux.binary, "-L", tmux.socket, "new-session", "-d", "-s", "imgtui",
                    "-x", "160", "-y", "48", "-c", str(tmp_path), "--",
                    str(imgtui), "--workers", "1"],
                   check=True, env=env, capture_output=True, text=True, timeout=30)

    _until(lambda: "● reachable" in tmux.screen() and "local worker" in tmux.screen(),
           "the dashboard to come up", tmux.screen)
    make_png(tmp_path / "staging" / "photo.png", 120, 90, "orange")
    (tmp_path / "staging" / "photo.png").replace(tmp_path / "input" / "photo.png")

    output = tmp_path / "output" / "photo.png"
    _until(lambda: output.is_file() and output.stat().st_size > 0,
           "output/photo.png", tmux.screen)

    def says_done() -> bool:
        return any("photo.png" in line and " done " in line
                   for line in tmux.screen().splitlines())

    _until(says_done, "the screen to say photo.png is done", tmux.screen)
    assert "1 job ·" in tmux.screen() and "done 1" in tmux.screen()

    tmux.run("send-keys", "-t", "imgtui", "q")  # nothing in flight: quits without asking
    _until(lambda: not tmux.alive(), "imgtui to quit", tmux.screen, timeout=30)
