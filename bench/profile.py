"""Where the pipeline's own CPU goes: one throughput run with py-spy on both processes.

    uv run --with py-spy python -m bench.profile [--backend moto|local] [--images 32]

Not part of ``make bench``. It starts a worker and ``imgtui submit`` exactly as the throughput
section does and reports, per image:

- CPU seconds of each process, from ``/proc`` (ImageMagick children apart);
- what the Python code holding the GIL was doing: py-spy samples with ``--gil`` (so waiting
  threads do not count), grouped by kind of work and by function;
- on moto, every AWS API call each process made, counted by ``bench/calls/sitecustomize.py``.

py-spy runs with ``--nonblocking`` so it does not stop the processes it samples.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from bench import corpus
from bench.procs import Child
from bench.services import (
    Stack,
    Worker,
    local_stack,
    moto_stack,
    submit_argv,
    use_bytecode_cache,
)

RATE: Final = 250
CALLS_DIR: Final = Path(__file__).resolve().parent / "calls"
#: Kinds of work, by the first frame (innermost first) that holds one of the needles.
KINDS: Final = (
    ("sha256 hashing", ("hashlib", "file_digest", "_VerifyingReader", "_HashingWriter",
                        "copy_hashing", "sha256_file")),
    ("request signing (SigV4)", ("botocore/auth.py", "botocore/signers.py")),
    ("checksums (botocore)", ("botocore/httpchecksum.py",)),
    ("HTTP (urllib3, http.client, sockets)", ("urllib3/", "http/client.py", "socket.py",
                                               "botocore/httpsession.py", "awsrequest.py")),
    ("botocore request/response (parse, serialize, hooks)", ("botocore/",)),
    ("s3transfer", ("s3transfer/",)),
    ("sqlite (journal, local queue)", ("sqlite3", "journal.py", "local_queue.py")),
    ("file copies (local store)", ("local_store.py",)),
    ("ImageMagick child (spawn, wait)", ("subprocess.py", "engine/run.py")),
    ("engine input checks (sniff, header)", ("engine/intake.py", "engine/probe.py")),
    ("imgpipe protocol / JSON", ("msgspec", "protocol.py", "json/")),
    ("logging / op log", ("logging/", "oplog.py")),
    ("rich progress", ("rich/",)),
    ("thread pools, locks, waits", ("threading.py", "concurrent/futures", "queue.py")),
)


def kind_of(frames: list[str]) -> str:
    for frame in reversed(frames):  # the innermost frame decides
        for name, needles in KINDS:
            if any(needle in frame for needle in needles):
                return name
    return "other Python"


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(errors="replace").splitlines():
            frames, _, count = line.rpartition(" ")
            if frames and count.isdigit():
                stacks.append((frames.split(";"), int(count)))
    return stacks


def summarise(label: str, path: Path, cpu: float | None, images: int, top: int = 15) -> None:
    stacks = read_raw(path)
    total = sum(count for _, count in stacks)
    gil_seconds = total / RATE
    print(f"\n== {label}: CPU {cpu or 0:.2f} s ({1000 * (cpu or 0) / images:.1f} ms per image); "
          f"holding the GIL {gil_seconds:.2f} s ({1000 * gil_seconds / images:.1f} ms per image)")
    if not total:
        return
    kinds: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        kinds[kind_of(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count
    print("-- GIL-holding samples by kind of work (ms per image)")
    for name, count in kinds.most_common():
        print(f"{100 * count / total:6.1f} %  {1000 * count / RATE / images:6.1f}  {name}")
    print("-- functions, inclusive")
    for frame, count in inclusive.most_common(top):
        if frame.startswith(("thread (", "process ")) or "threading.py" in frame:
            continue
        print(f"{100 * count / total:6.1f} %  {frame[:140]}")


def print_calls(label: str, files: list[Path], images: int) -> None:
    counts: collections.Counter[str] = collections.Counter()
    for path in files:
        counts.update(json.loads(path.read_text()))
    if not counts:
        return
    total = sum(counts.values())
    print(f"\n-- {label}: {total} AWS calls, {total / images:.1f} per image")
    for name, count in counts.most_common():
        print(f"{count / images:6.2f}  {name}")


@contextlib.contextmanager
def sampling(pid: int, out: Path) -> Iterator[None]:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is missing: run 'uv run --with py-spy python -m bench.profile'")
    recorder = subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", str(RATE),
                                 "--format", "raw", "--output", str(out), "--gil",
                                 "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()


def profile(stack: Stack, files: list[Path], work: Path) -> None:
    state = work / "state"
    counting = stack.env | {"PYTHONPATH": os.pathsep.join((str(CALLS_DIR),
                                                            stack.env.get("PYTHONPATH", "")))}
    measured = Stack(stack.name, stack.backend,
                     counting | {"IMGPIPE_BENCH_CALLS": str(work / "calls-worker")},
                     moto=stack.moto)
    moto_before = stack.service_cpu()
    with Worker(measured, state, work / "worker") as worker, \
            sampling(worker.pid, work / "worker.txt"):
        before = worker.cpu()
        client_state = state if stack.backend == "local" else work / "client"
        with Child(submit_argv(stack, client_state, work / "out", files),
                   env=counting | {"IMGPIPE_BENCH_CALLS": str(work / "calls-client")},
                   cwd=work, log=work / "submit.log") as child, \
                sampling(child.pid, work / "client.txt"):
            code = child.wait(600)
        after = worker.cpu()
    moto_after = stack.service_cpu()
    n = len(files)
    print(f"{stack.name}: {n} images in {child.seconds:.1f} s (exit {code}) under py-spy")
    if before and after:
        used = after - before
        print(f"ImageMagick children: {used.children:.2f} s CPU "
              f"({1000 * used.children / n:.0f} ms per image)")
    summarise(f"imgserver ({stack.name})", work / "worker.txt",
              (after - before).own if before and after else None, n)
    print_calls("imgserver", sorted(work.glob("calls-worker.*")), n)
    usage = child.rusage
    summarise(f"imgtui submit ({stack.name})", work / "client.txt",
              usage.ru_utime + usage.ru_stime if usage else None, n)
    print_calls("imgtui submit", sorted(work.glob("calls-client.*")), n)
    if moto_before and moto_after:
        moto_used = (moto_after - moto_before).own
        print(f"\n== moto_server: CPU {moto_used:.2f} s ({1000 * moto_used / n:.1f} ms per image)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--backend", choices=("moto", "local"), default="moto")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="imgpipe-profile-"))
    try:
        use_bytecode_cache(root / "pycache")
        images = corpus.generate(root / "corpus", throughput_files=args.images, scale_files=0,
                                 huge=False)
        if args.backend == "local":
            profile(local_stack(), images.throughput, root / "run")
        else:
            with moto_stack(root / "moto") as stack:
                profile(stack, images.throughput, root / "run")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
