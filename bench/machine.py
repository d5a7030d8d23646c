"""What the numbers were measured on: CPU, cores, memory, versions, load."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.procs import CONVERT


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    return None


def _imagemagick() -> str:
    try:
        out = subprocess.run([CONVERT, "-version"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except OSError:
        return "missing"
    first = out.splitlines()[0] if out else ""
    return first.removeprefix("Version: ").split(" https")[0].strip()


def _git_revision() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run([git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
        dirty = subprocess.run([git, "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10, check=False)
    except OSError:
        return None
    if done.returncode:
        return None
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def describe() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "imagemagick": _imagemagick(),
        "git": _git_revision(),
        "load_average_at_start": load_average(),
    }
