"""Latency: one small image end to end, 20 times, minus the engine's own time for it.

A worker process is already running; one client process (bench.latency_client) submits the
image, waits until the result is verified in the output folder, and repeats. The engine's own
time is ``server.engine.convert`` on the same image, median of 20. The difference is the
pipeline's overhead: queue, store, hashing, journal, polling and both processes' Python.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.procs import Child
from bench.report import Figure, check_at_most
from bench.services import TAG, Stack, Worker
from server.engine import convert, detect_engine
from shared.protocol import Operations, TagOptions

REPEAT: Final = 20
TARGETS_MS: Final = {"local": 100.0, "moto": 250.0}


def engine_seconds(image: Path, work: Path, repeat: int = REPEAT) -> list[float]:
    engine = detect_engine()
    ops = Operations(format="png", tag=TagOptions(text=TAG))
    times: list[float] = []
    for number in range(repeat + 1):
        workdir = Path(tempfile.mkdtemp(prefix="engine-", dir=work))
        try:
            started = time.perf_counter()
            convert(engine, image, ops, workdir)
            if number:  # the first run warms the page cache
                times.append(time.perf_counter() - started)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return times


def client_jobs(stack: Stack, image: Path, work: Path, repeat: int) -> list[dict[str, Any]]:
    shutil.rmtree(work, ignore_errors=True)
    state = work / "state"
    argv = [sys.executable, "-m", "bench.latency_client", "--backend", stack.backend,
            "--state-dir", str(state if stack.backend == "local" else work / "client"),
            "--output", str(work / "out"), "--tag", TAG, "--repeat", str(repeat), str(image)]
    with Worker(stack, state, work / "worker"), \
            Child(argv, env=stack.env, cwd=work, log=work / "client.log") as child:
        code = child.wait(300)
    lines = [line for line in child.log_text().splitlines() if line.startswith("{")]
    result: dict[str, Any] = (json.loads(lines[-1]) if lines
                              else {"error": child.log_text()[-1500:]})
    if code or "error" in result:
        raise RuntimeError(f"latency client on {stack.name} failed: {result.get('error')}")
    jobs: list[dict[str, Any]] = result["jobs"]
    return [job for job in jobs if not job["warmup"]]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _median_stage(jobs: list[dict[str, Any]], start: str | None, end: str) -> float | None:
    spans = []
    for job in jobs:
        states = job["states"]
        if end in states and (start is None or start in states):
            spans.append(states[end] - (states[start] if start else 0.0))
    return statistics.median(spans) * 1000 if spans else None


def measure(image: Path, work: Path, stacks: dict[str, Stack],
            progress: Callable[[str], None] = print) -> tuple[dict[str, Any], list[Figure]]:
    work.mkdir(parents=True, exist_ok=True)
    engine = engine_seconds(image, work)
    engine_ms = statistics.median(engine) * 1000
    raw: dict[str, Any] = {"image": image.name, "repeat": REPEAT,
                           "engine_ms": {"median": engine_ms,
                                         "runs": [t * 1000 for t in engine]}}
    figures = [Figure("latency", "engine alone (convert())", engine_ms, "ms",
                      note=f"{image.name}, median of {REPEAT}")]
    for name, stack in stacks.items():
        jobs = client_jobs(stack, image, work / name, REPEAT)
        total = [job["seconds"] * 1000 for job in jobs]
        median, p90 = statistics.median(total), _percentile(total, 0.9)
        overhead = median - engine_ms
        worker_stages = {
            stage: statistics.median(job["worker_timings"].get(stage, 0.0) for job in jobs) * 1000
            for stage in ("queue_wait", "download", "convert", "upload")}
        raw[name] = {
            "end_to_end_ms": {"median": median, "p90": p90, "runs": total},
            "overhead_ms": overhead,
            "client_stages_ms": {  # medians, from the client's state changes
                "hash_and_journal": _median_stage(jobs, None, "waiting"),
                "upload_and_send": _median_stage(jobs, "waiting", "queued"),
                "until_worker_starts": _median_stage(jobs, "queued", "processing"),
                "until_result_reply": _median_stage(jobs, "processing", "downloading"),
                "download_verify_place": _median_stage(jobs, "downloading", "done"),
            },
            "worker_stages_ms": worker_stages,
            "jobs": jobs,
        }
        progress(f"latency {name}: median {median:.0f} ms, p90 {p90:.0f} ms, "
                 f"overhead {overhead:.0f} ms")
        figures.append(Figure("latency", f"end to end on {name}", median, "ms",
                              note=f"p90 {p90:.0f} ms"))
        figures.append(Figure("latency", f"overhead on {name} (end to end − engine)", overhead,
                              "ms", target=f"≤ {TARGETS_MS[name]:.0f} ms",
                              passed=check_at_most(overhead, TARGETS_MS[name])))
    return raw, figures
