"""``python -m bench`` (``make bench``): every figure of issue 6 in one run.

Sections, in order: corpus, engine, throughput, latency, scale, memory. Each prints a line as
it goes; the table and ``bench/results.json`` come at the end. Exit status 0 when every section
ran (whether or not each target was met: the table says), 1 when one could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from rich.console import Console

from bench import corpus, engine, latency, machine, memory, scale, throughput
from bench.report import Figure, print_table, write_json
from bench.services import Stack, Worker, local_stack, moto_stack, use_bytecode_cache

SECTIONS: Final = ("engine", "throughput", "latency", "scale", "memory")
RESULTS: Final = Path(__file__).resolve().parent / "results.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default: all of {', '.join(SECTIONS)})")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (median)")
    parser.add_argument("--images", type=int, default=32, help="throughput corpus size")
    parser.add_argument("--scale-files", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (debugging)")
    parser.add_argument("--worker-option", action="append", default=[], metavar="OPTION",
                        help="pass an option to every imgserver (e.g. --worker-option="
                             "--concurrency=3); for tuning runs, not the recorded results")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    Worker.OPTIONS = list(args.worker_option)
    console = Console(width=max(120, Console().width))
    started = time.perf_counter()

    def say(text: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f} s[/] {text}", markup=True,
                      highlight=False)

    info = machine.describe()
    info["worker_options"] = Worker.OPTIONS
    say(f"{info['cpu_model']} × {info['nproc']}, {info['imagemagick']}, Python "
        f"{info['python']}, load {info['load_average_at_start']}")
    root = Path(tempfile.mkdtemp(prefix="imgpipe-bench-"))
    sections: dict[str, Any] = {}
    figures: list[Figure] = []
    durations: dict[str, float] = {}
    failed: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            use_bytecode_cache(root / "pycache")
            images = timed("corpus", durations, say, lambda: corpus.generate(
                root / "corpus", throughput_files=args.images,
                scale_files=args.scale_files if "scale" in args.only else 0,
                huge="memory" in args.only))
            say(f"corpus: {len(images.throughput)} × 1 MP, 12 MP, 50 MP, "
                f"{len(images.scale)} small files")
            stacks: dict[str, Stack] = {"local": local_stack()}
            if {"throughput", "latency", "memory"} & set(args.only):
                stacks["moto"] = stack.enter_context(moto_stack(root / "moto"))
            plan: dict[str, Callable[[], tuple[dict[str, Any], list[Figure]]]] = {
                "engine": lambda: engine.measure(images.engine, root / "engine",
                                                 {"1MP": 5, "12MP": 2}),
                "throughput": lambda: throughput.measure(images.throughput, root / "throughput",
                                                         stacks, args.rounds, progress=say),
                "latency": lambda: latency.measure(images.small, root / "latency", stacks,
                                                   progress=say),
                "scale": lambda: scale.measure(images.scale, images.small, root / "scale",
                                               stacks["local"], progress=say),
                "memory": lambda: memory.measure(
                    {"warm-up": images.small, "12 MP": images.engine["12MP"],
                     "50 MP": images.huge}, root / "memory", stacks, progress=say),
            }
            for name in SECTIONS:
                if name not in args.only:
                    continue
                try:
                    raw, found = timed(name, durations, say, plan[name])
                except Exception as error:  # report it, and go on with the other sections
                    failed.append(name)
                    sections[name] = {"error": f"{type(error).__name__}: {error}",
                                      "traceback": traceback.format_exc()}
                    say(f"[red]{name} failed: {error}[/]")
                    continue
                sections[name] = raw
                figures += found
    finally:
        if args.keep:
            say(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - started
    info["load_average_at_end"] = machine.load_average()
    title = (f"imgpipe bench — {info['date']} — {info['cpu_model']} × {info['nproc']} — "
             f"load {info['load_average_at_start'][0]} → {info['load_average_at_end'][0]} — "
             f"{total:.0f} s")
    print_table(figures, title, console)
    targets = [f for f in figures if f.passed is not None]
    met = sum(1 for f in targets if f.passed)
    say(f"{met} of {len(targets)} targets met; total {total:.0f} s"
        + (f"; sections that failed: {', '.join(failed)}" if failed else ""))
    write_json(args.json, info, sections, figures,
               {"seconds": {"total": total, **durations}, "sections_failed": failed})
    say(f"wrote {os.path.relpath(args.json)}")
    return 1 if failed else 0


def timed(name: str, durations: dict[str, float], say: Callable[[str], None],
          step: Callable[[], Any]) -> Any:
    say(f"{name} …")
    began = time.perf_counter()
    try:
        return step()
    finally:
        durations[name] = round(time.perf_counter() - began, 1)
        say(f"{name} done in {durations[name]:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
