"""The latency probe: one client process that submits one image, waits for it, and repeats.

    python -m bench.latency_client --backend local --state-dir S --output O --repeat 20 IMAGE

It is imgtui's own client engine (``tui.client.Client``, the one behind ``imgtui submit`` and
the dashboard), started once, so each measurement is one job end to end: hash, journal,
upload, request, the worker's receive, download, conversion, upload and reply, the client's
download, verification and rename into the output folder. It prints one JSON object: per job,
the seconds to done and when each state was reached, and the worker's stage timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shared.config import load_settings
from tui.client import Client
from tui.jobs import Job, State


class Watcher:
    """Collects state changes (from the client's threads) with their time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = threading.Condition(self.lock)
        self.states: dict[int, dict[str, float]] = {}
        self.final: dict[int, Job] = {}

    def on_change(self, job: Job) -> None:
        now = time.perf_counter()
        with self.lock:
            seen = self.states.setdefault(job.row, {})
            seen.setdefault(job.state.value, now)
            if job.final and job.row not in self.final:
                self.final[job.row] = job
                self.finished.notify_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_client")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--tag", default="processed by EC2")
    parser.add_argument("--format", default="png")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("image")
    args = parser.parse_args(argv)
    settings = load_settings({"backend": args.backend, "state_dir": args.state_dir,
                              "output": args.output, "tag": args.tag, "format": args.format,
                              "workers": "0", "timeout": "120"})
    watcher = Watcher()
    client = Client(settings, on_change=watcher.on_change)
    image = Path(args.image)
    jobs: list[dict[str, Any]] = []
    try:
        client.start()
        if not client.wait_connected(60):
            print(json.dumps({"error": "the client did not connect"}))
            return 1
        for number in range(args.warmup + args.repeat):
            before = set(client.jobs)
            started = time.perf_counter()
            client.add_paths([image], origin="added")
            with watcher.lock:
                ok = watcher.finished.wait_for(
                    lambda before=before: any(r not in before for r in watcher.final),  # type: ignore[misc]
                    timeout=120)
                row = next((r for r in watcher.final if r not in before), None)
            if not ok or row is None:
                print(json.dumps({"error": f"job {number} did not finish"}))
                return 1
            job = watcher.final[row]
            with watcher.lock:
                states = {k: round(v - started, 5) for k, v in watcher.states[row].items()}
            jobs.append({
                "warmup": number < args.warmup, "state": job.state.value,
                "seconds": states.get(job.state.value), "states": states,
                "worker_timings": dict(job.timings or {}), "reason": job.reason,
            })
            if job.state is not State.DONE:
                print(json.dumps({"error": f"job {number}: {job.state.value}: {job.reason}",
                                  "jobs": jobs}))
                return 1
    finally:
        client.close()
    print(json.dumps({"jobs": jobs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
