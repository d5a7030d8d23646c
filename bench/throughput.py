"""Throughput: images per second through the whole pipeline against the lab in parallel.

imgpipe: a separate ``imgserver run`` (default concurrency) and ``imgtui submit --workers 0``
of every file, timed from the submit's start to its exit (every result verified and in the
output folder). The lab: its command over the same files with ``xargs -P <cores>``. Rounds
alternate lab, local and moto so that all three see the same machine load; the median round
counts. CPU seconds per image are split by process (ImageMagick, worker, client, moto) from
``/proc`` and ``wait4``: that is where the time goes.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from bench import lab
from bench.procs import Child, PeakSampler
from bench.report import Figure, check_at_least, ratio
from bench.services import Stack, Worker, submit_argv

#: The issue's targets: the ratio of imgpipe's images per second to the lab's.
TARGETS: Final = {"local": 1.0, "moto": 0.9}
SUBMIT_TIMEOUT: Final = 600.0


@dataclass
class Run:
    seconds: float
    images: int
    ok: bool
    #: CPU seconds per image by process.
    cpu_engine: float = 0.0
    cpu_worker: float = 0.0
    cpu_client: float = 0.0
    cpu_service: float = 0.0
    worker_peak_mb: float = 0.0
    client_peak_mb: float = 0.0
    #: Wall clock: start to the first result in the folder, and the last result to the exit.
    first_result_s: float | None = None
    exit_after_last_s: float | None = None
    converters: int | None = None
    detail: str = ""

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.ok and self.seconds > 0 else 0.0


def run_lab(files: list[Path], work: Path, jobs: int, threads: int | None) -> Run:
    output = work / "out"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    names = work / "files.nul"
    names.write_bytes(lab.parallel_input(files))
    env = lab.environment(threads) | {"LAB_OUT": str(output)}
    began = time.time()
    with Child(lab.parallel("png", jobs), env=env, cwd=work, stdin=names,
               log=work / "lab.log") as child:
        code = child.wait(SUBMIT_TIMEOUT)
        ended = time.time()
    results = list(output.glob("*.png"))
    done = len(results)
    usage = child.rusage
    cpu = (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0
    first, tail = _edges(results, began, ended)
    return Run(child.seconds, done, code == 0 and done == len(files),
               cpu_engine=cpu / max(1, done), detail=child.log_text()[-500:] if code else "",
               first_result_s=first, exit_after_last_s=tail)


def _edges(results: list[Path], began: float, ended: float) -> tuple[float | None, float | None]:
    """When the first result appeared and how long after the last one the run ended."""
    times = [path.stat().st_mtime for path in results]
    if not times:
        return None, None
    return min(times) - began, ended - max(times)


def run_pipeline(stack: Stack, files: list[Path], work: Path) -> Run:
    shutil.rmtree(work, ignore_errors=True)
    state = work / "state"
    output = work / "out"
    with Worker(stack, state, work / "worker") as worker:
        sampler = PeakSampler(worker.pid).start()
        cpu0 = worker.cpu()
        service0 = stack.service_cpu()
        with Child(submit_argv(stack, state if stack.backend == "local" else work / "client",
                               output, files),
                   env=stack.env, cwd=work, log=work / "submit.log") as child:
            client = PeakSampler(child.pid).start()
            began = time.time() - child.seconds
            code = child.wait(SUBMIT_TIMEOUT)
            ended = time.time()
            client_peak = client.stop()
        cpu1 = worker.cpu()
        service1 = stack.service_cpu()
        worker_peak = sampler.stop()
        converters = worker.converters
    results = [p for p in output.glob("*.png") if not p.name.startswith(".")]
    done = len(results)
    n = max(1, done)
    usage = child.rusage
    first, tail = _edges(results, began, ended)
    result = Run(child.seconds, done, code == 0 and done == len(files),
                 first_result_s=first, exit_after_last_s=tail,
                 worker_peak_mb=worker_peak * 1024 / 1e6,
                 client_peak_mb=client_peak * 1024 / 1e6,
                 converters=converters,
                 detail="" if code == 0 else child.log_text()[-1500:])
    if cpu0 is not None and cpu1 is not None:
        used = cpu1 - cpu0
        result.cpu_engine, result.cpu_worker = used.children / n, used.own / n
    if usage is not None:
        result.cpu_client = (usage.ru_utime + usage.ru_stime) / n
    if service0 is not None and service1 is not None:
        result.cpu_service = (service1 - service0).own / n
    return result


def measure(files: list[Path], work: Path, stacks: dict[str, Stack], rounds: int,
            progress: Callable[[str], None] = print) -> tuple[dict[str, Any], list[Figure]]:
    """Rounds of: the lab with one ImageMagick thread per process, the lab with its default
    threads (one per core), then imgpipe on each backend. The lab's better setting is the
    baseline."""
    jobs = len(os.sched_getaffinity(0))
    labs = {"lab, MAGICK_THREAD_LIMIT=1": 1, "lab, default threads": None}
    runs: dict[str, list[Run]] = {**{name: [] for name in labs}, **{name: [] for name in stacks}}
    for number in range(rounds):
        for name, threads in labs.items():
            runs[name].append(run_lab(files, work / "lab", jobs, threads))
        for name, stack in stacks.items():
            runs[name].append(run_pipeline(stack, files, work / name))
        progress("throughput round {}: {}".format(number + 1, ", ".join(
            f"{name} {r[-1].rate:.2f} img/s" for name, r in runs.items())))
    medians = {name: statistics.median(r.rate for r in rs) for name, rs in runs.items()}
    best_lab = max(labs, key=lambda name: medians[name])
    baseline = medians[best_lab]
    raw: dict[str, Any] = {
        "images": len(files), "image": "1 MP JPEG q90 → PNG", "rounds": rounds,
        "lab_parallel_jobs": jobs, "lab_baseline": best_lab,
        "median_images_per_s": medians,
        "ratios": {name: ratio(medians[name], baseline) for name in stacks},
        "runs": {name: [asdict(r) | {"rate": r.rate} for r in rs] for name, rs in runs.items()},
    }
    figures = [Figure("throughput", f"{name}, xargs -P {jobs}", medians[name], "img/s",
                      note=(f"baseline; {len(files)} × 1 MP JPEG→PNG, median of {rounds}"
                            if name == best_lab else ""))
               for name in labs]
    for name in stacks:
        failed = [r.detail for r in runs[name] if not r.ok]
        share = ratio(medians[name], baseline)
        figures.append(Figure(
            "throughput", f"imgpipe on {name} (imgtui submit → imgserver)", medians[name],
            "img/s", lab=baseline, ratio=share, target=f"≥ {TARGETS[name]:.1f}× lab",
            passed=False if failed else check_at_least(share, TARGETS[name]),
            note="FAILED RUNS" if failed else _edges_note(runs[name])))
    return raw, figures


def _edges_note(runs: list[Run]) -> str:
    first = [r.first_result_s for r in runs if r.first_result_s is not None]
    last = [r.exit_after_last_s for r in runs if r.exit_after_last_s is not None]
    if not first or not last:
        return ""
    return (f"first result after {statistics.median(first):.2f} s, exit "
            f"{statistics.median(last):.2f} s after the last")
