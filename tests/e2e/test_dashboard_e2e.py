"""The real dashboard in a real terminal (tmux), with real workers: intake and restarts."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from tests import corpus
from tests.conftest import imgserver_argv, imgtui_argv, subprocess_env
from tests.pipeline import make_image, wait_for

pytestmark = pytest.mark.e2e


class Terminal:
    """One tmux server on a private socket, holding one imgtui session."""

    def __init__(self, socket: str) -> None:
        self.binary = shutil.which("tmux") or "tmux"
        self.socket = socket

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, "-L", self.socket, *args], check=check,
                              capture_output=True, text=True, timeout=30)

    def start(self, argv: list[str], cwd: Path) -> None:
        env = subprocess_env({"TERM": "xterm-256color", "IMGPIPE_POLL_WAIT": "1"})
        env.pop("TMUX", None)
        subprocess.run([self.binary, "-L", self.socket, "new-session", "-d", "-s", "imgtui",
                        "-x", "160", "-y", "48", "-c", str(cwd), "--", *argv],
                       check=True, env=env, capture_output=True, text=True, timeout=30)

    def screen(self) -> str:
        done = self.tmux("capture-pane", "-p", "-t", "imgtui", check=False)
        return done.stdout if done.returncode == 0 else ""

    def pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "imgtui", "#{pane_pid}").stdout)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    assert shutil.which("tmux"), "tmux is missing: `make test` installs it"
    made = Terminal(f"imgpipe-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    yield made
    made.tmux("kill-server", check=False)


def journal_rows(state_dir: Path, name: str) -> list[tuple[str, str]]:
    db = sqlite3.connect(state_dir / "journal.sqlite3")
    try:
        return db.execute("SELECT job_id, state FROM jobs WHERE name = ?", (name,)).fetchall()
    finally:
        db.close()


def test_a_file_written_slowly_is_submitted_once_and_complete(
    terminal: Terminal, tmp_path: Path
) -> None:
    terminal.start(imgtui_argv("--workers", "1"), tmp_path)
    wait_for(lambda: "● reachable" in terminal.screen(), timeout=60, what="the dashboard")
    source = make_image(tmp_path / "source.png", 640, 480, extra=["+noise", "Random"])
    data = source.read_bytes()
    target = tmp_path / "input" / "slow.png"
    chunks = 30
    step = len(data) // chunks + 1
    with target.open("wb") as handle:  # one writer, open the whole time, over 3 seconds
        for index in range(chunks):
            handle.write(data[index * step:(index + 1) * step])
            handle.flush()
            time.sleep(0.1)  # the slow writer itself, not a synchronisation
    output = tmp_path / "output" / "slow.png"
    wait_for(lambda: output.is_file() and output.stat().st_size > 0, timeout=90,
             what="output/slow.png")
    wait_for(lambda: any("slow.png" in line and " done " in line
                         for line in terminal.screen().splitlines()),
             timeout=30, what="the screen to say done")
    rows = journal_rows(tmp_path / ".imgpipe", "slow.png")
    assert [state for _, state in rows] == ["done"]  # submitted once
    shown = corpus.magick(f"{output}[0]", "-format", "%w %h", "info:").stdout
    assert shown.split() == [b"640", b"480"]  # the whole image, not a prefix of it
    assert sorted(p.name for p in (tmp_path / "output").iterdir()) == ["slow.png"]


def test_dashboard_killed_with_jobs_in_flight_resumes_after_restart(
    terminal: Terminal, tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path / ".imgpipe")
    names = [f"k{i}.png" for i in range(5)]
    terminal.start(imgtui_argv("--workers", "0", "--timeout", "300"), tmp_path)
    try:
        wait_for(lambda: "● reachable" in terminal.screen(), timeout=60, what="the dashboard")
    except AssertionError:
        raise AssertionError(terminal.screen()) from None
    for index, name in enumerate(names):
        make_image(tmp_path / "staging" / name if (tmp_path / "staging").is_dir()
                   else _mkdir(tmp_path / "staging") / name, 40 + index, 30)
        (tmp_path / "staging" / name).replace(tmp_path / "input" / name)
    wait_for(lambda: all(journal_rows(settings.state_dir, n) and
                         journal_rows(settings.state_dir, n)[0][1] == "queued" for n in names),
             timeout=60, what="five queued jobs")
    os.kill(terminal.pid(), signal.SIGKILL)  # the dashboard dies with five jobs in flight
    wait_for(lambda: "imgtui" not in terminal.tmux("list-sessions", check=False).stdout,
             timeout=30, what="the session to end")

    worker = subprocess.Popen(imgserver_argv("--state-dir", str(settings.state_dir)),
                              env=subprocess_env({"IMGPIPE_POLL_WAIT": "1"}), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        terminal.start(imgtui_argv("--workers", "0", "--timeout", "300"), tmp_path)
        output = tmp_path / "output"
        wait_for(lambda: output.is_dir() and len(list(output.iterdir())) == 5
                 and "done 5" in terminal.screen(), timeout=120, what="five results")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
    assert sorted(p.name for p in output.iterdir()) == names  # none lost, none twice
    for name in names:
        assert [state for _, state in journal_rows(settings.state_dir, name)] == ["done"]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
