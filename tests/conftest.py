"""Fixtures shared by every test folder: the moto server, per-backend settings, test images.

``moto_server`` is one moto server per session on a free loopback port; ``aws_env`` points
boto3 at it (through boto3's own ``AWS_ENDPOINT_URL``) and resets its state before the test.
``backend_kind`` parametrises a test over ``local`` and ``aws``; ``settings`` gives matching
Settings with the test's own state dir, queue and buckets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from tests.moto_server import MotoServer


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """Point boto3 at a freshly reset moto server, and at nothing else (no profile leaks)."""
    if not moto_server.running:
        moto_server.start()  # an outage test may have left it stopped
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    moto_server.reset()
    return moto_server


@pytest.fixture(params=["local", "aws"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "aws":
        request.getfixturevalue("aws_env")
    return kind


@pytest.fixture
def settings(backend_kind: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own state dir, folders and (on aws) buckets."""
    values: dict[str, object] = {
        "backend": backend_kind,
        "state_dir": tmp_path / "state",
        "input": tmp_path / "input",
        "output": tmp_path / "output",
        "visibility_timeout": 30,
        "concurrency": 2,
        "workers": 2,
    }
    if backend_kind == "aws":
        values.update(bucket="imgpipe-test-data", log_bucket="imgpipe-test-logs")
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 MP photo-like JPEG: about a second of work to PNG."""
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    subprocess.run(["/usr/bin/convert", "-size", "4000x3000", "plasma:fractal", "-quality", "90",
                    str(path)], check=True, capture_output=True, timeout=300)
    return path


@pytest.fixture(scope="session")
def big_png(big_jpeg: Path) -> Path:
    """The same 12 MP photo as PNG: decoding and re-encoding it takes seconds (3.4 s here)."""
    path = big_jpeg.with_suffix(".png")
    subprocess.run(["/usr/bin/convert", str(big_jpeg), str(path)], check=True,
                   capture_output=True, timeout=300)
    return path


@pytest.fixture(scope="session")
def medium_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 MP photo-like JPEG: a fraction of a second of work, enough to be caught mid-job."""
    path = tmp_path_factory.mktemp("medium") / "medium.jpg"
    subprocess.run(["/usr/bin/convert", "-size", "2000x1500", "plasma:fractal", "-quality", "90",
                    str(path)], check=True, capture_output=True, timeout=300)
    return path


def imgserver_argv(*args: str) -> list[str]:
    """The installed ``imgserver`` console script, as a user runs it."""
    return [str(Path(sys.executable).with_name("imgserver")), *args]


def imgtui_argv(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("imgtui")), *args]


def subprocess_env(extra: dict[str, str] | None = None,
                   moto: MotoServer | None = None) -> dict[str, str]:
    """Environment for a child imgserver/imgtui: no IMGPIPE_* leaks, moto when asked."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IMGPIPE_", "AWS_"))}
    if moto is not None:
        base |= moto.env()
    base["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return base | (extra or {})
