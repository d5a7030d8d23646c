"""Engine: the lab's two-process command against imgserver's one process, image by image.

Per output format (png, jpeg, webp) and size (1 MP, 12 MP): seconds per image (best of a few
runs, interleaved so that both sides see the same machine load) and output bytes. Both run
with ``MAGICK_THREAD_LIMIT=1``, as a worker runs one ImageMagick process per core; ours is the
whole ``server.engine.convert`` call (sniffing, header checks and the child), the lab's the
whole shell pipeline.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench import lab
from bench.procs import Child
from bench.report import Figure, check_at_most, ratio
from bench.services import TAG
from server.engine import Engine, convert, detect_engine
from shared.protocol import Operations, TagOptions

FORMATS: Final = ("png", "jpeg", "webp")
EXTENSIONS: Final = {"png": "png", "jpeg": "jpg", "webp": "webp"}
#: Output bytes may differ from the lab's by this much (the issue's target).
BYTES_TOLERANCE: Final = 0.10


@dataclass
class Sample:
    seconds: float
    cpu: float
    bytes: int


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_lab(source: Path, fmt: str, work: Path) -> Sample:
    output = work / f"lab.{EXTENSIONS[fmt]}"
    output.unlink(missing_ok=True)
    with Child(lab.one(source, output), env=lab.environment(threads=1), cwd=work) as child:
        code = child.wait(timeout=300)
    if code:
        raise RuntimeError(f"the lab's command failed on {source.name} → {fmt} ({code})")
    usage = child.rusage
    cpu = usage.ru_utime + usage.ru_stime if usage is not None else float("nan")
    return Sample(child.seconds, cpu, output.stat().st_size)


def run_ours(engine: Engine, source: Path, fmt: str, work: Path) -> Sample:
    workdir = Path(tempfile.mkdtemp(prefix="ours-", dir=work))
    try:
        ops = Operations(format=fmt, tag=TagOptions(text=TAG))  # type: ignore[arg-type]
        cpu0, self0, started = _children_cpu(), _self_cpu(), time.perf_counter()
        result = convert(engine, source, ops, workdir, timeout=300)
        seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu0 + _self_cpu() - self0
        return Sample(seconds, cpu, result.bytes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(images: dict[str, Path], work: Path, reps: dict[str, int]
            ) -> tuple[dict[str, Any], list[Figure]]:
    engine = detect_engine()
    work.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {"imagemagick": engine.version, "thread_limit": 1, "cases": {}}
    figures: list[Figure] = []
    for size, source in images.items():
        for fmt in FORMATS:
            labs: list[Sample] = []
            ours: list[Sample] = []
            for _ in range(reps[size]):
                labs.append(run_lab(source, fmt, work))
                ours.append(run_ours(engine, source, fmt, work))
            lab_best = min(labs, key=lambda s: s.seconds)
            our_best = min(ours, key=lambda s: s.seconds)
            byte_change = (our_best.bytes - lab_best.bytes) / lab_best.bytes
            raw["cases"][f"{size} jpeg→{fmt}"] = {
                "source": source.name, "source_bytes": source.stat().st_size,
                "lab": {"best_s": lab_best.seconds, "median_s": _median(labs),
                        "cpu_s": lab_best.cpu, "bytes": lab_best.bytes,
                        "runs_s": [s.seconds for s in labs]},
                "imgpipe": {"best_s": our_best.seconds, "median_s": _median(ours),
                            "cpu_s": our_best.cpu, "bytes": our_best.bytes,
                            "runs_s": [s.seconds for s in ours]},
                "speedup": lab_best.seconds / our_best.seconds,
                "bytes_change": byte_change,
            }
            section = f"engine {size}"
            figures.append(Figure(
                section, f"jpeg→{fmt} s/image", our_best.seconds, "s", lab=lab_best.seconds,
                ratio=ratio(lab_best.seconds, our_best.seconds), target="speed-up (info)",
                note=f"best of {reps[size]}"))
            figures.append(Figure(
                section, f"jpeg→{fmt} output", our_best.bytes, "bytes", lab=lab_best.bytes,
                ratio=ratio(our_best.bytes, lab_best.bytes), target="within ±10 % of lab",
                passed=check_at_most(abs(byte_change), BYTES_TOLERANCE)))
    return raw, figures


def _median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)
