"""Memory: imgserver's own peak RSS does not grow with the image (images stream to disk).

One worker per backend converts a small image, then a 12 MP and a ~50 MP photo to PNG, each
sent with ``imgtui submit``. Before each job the worker's ``VmHWM`` is reset (Linux's
``clear_refs``), so each figure is that job's own peak; ImageMagick's memory is its child's,
not the worker's, and is not counted. The client's peak (``wait4``) is recorded too.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.procs import Child, PeakSampler, reset_peak, status_kib
from bench.report import Figure, check_at_most
from bench.services import Stack, Worker, submit_argv

TARGET_WORKER_MB: Final = 120.0


def measure(images: dict[str, Path], work: Path, stacks: dict[str, Stack],
            progress: Callable[[str], None] = print) -> tuple[dict[str, Any], list[Figure]]:
    raw: dict[str, Any] = {}
    figures: list[Figure] = []
    for name, stack in stacks.items():
        base = work / name
        shutil.rmtree(base, ignore_errors=True)
        state = base / "state"
        client_state = state if stack.backend == "local" else base / "client"
        cases: dict[str, Any] = {}
        with Worker(stack, state, base / "worker") as worker:
            for label, image in images.items():
                resettable = reset_peak(worker.pid)
                sampler = PeakSampler(worker.pid).start()
                with Child(submit_argv(stack, client_state, base / "out" / label, [image]),
                           env=stack.env, cwd=base, log=base / f"submit-{label}.log") as child:
                    code = child.wait(600)
                    peak = sampler.stop()
                usage = child.rusage
                cases[label] = {
                    "ok": code == 0, "seconds": child.seconds,
                    "input_bytes": image.stat().st_size,
                    "output_bytes": sum(p.stat().st_size for p in (base / "out" / label).glob("*")),
                    "imgserver_peak_rss_mb": peak * 1024 / 1e6,
                    "peak_reset_before": resettable,
                    "imgserver_rss_after_mb": (status_kib(worker.pid, "VmRSS") or 0) * 1024 / 1e6,
                    "imgtui_submit_peak_rss_mb": usage.ru_maxrss * 1024 / 1e6 if usage else None,
                }
                if code:
                    cases[label]["error"] = child.log_text()[-1000:]
        raw[name] = cases
        progress(f"memory {name}: " + ", ".join(
            f"{label} {case['imgserver_peak_rss_mb']:.0f} MB" for label, case in cases.items()))
        for label, case in cases.items():
            if label == "warm-up":
                continue
            figures.append(Figure(
                "memory", f"imgserver peak RSS, {label} on {name}",
                case["imgserver_peak_rss_mb"], "MB", target=f"≤ {TARGET_WORKER_MB:.0f} MB",
                passed=check_at_most(case["imgserver_peak_rss_mb"], TARGET_WORKER_MB)
                if case["ok"] else False,
                note=f"imgtui submit {case['imgtui_submit_peak_rss_mb']:.0f} MB"
                if case["imgtui_submit_peak_rss_mb"] else ""))
    return raw, figures
