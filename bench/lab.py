"""The lab's command, exactly as the lab ran it: two ImageMagick processes joined by a pipe.

    convert -size 200x50 xc:none -matte -pointsize 20 \\
        -draw "text 10,30 'processed by EC2'" miff:- | composite -tile - IN OUT

The baseline is the one place a shell is used: it is the lab's own command line. It runs with
the real ``/usr/bin`` tools, the system's ImageMagick policy, and the output format chosen by
OUT's extension, as in the lab.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Final

from bench.procs import COMPOSITE, CONVERT
from bench.services import clean_environment

TAG_DRAW: Final = "text 10,30 'processed by EC2'"
#: The pipeline for one file: $1 in, $2 out.
PIPELINE: Final = (f"{CONVERT} -size 200x50 xc:none -matte -pointsize 20 "
                   f"-draw {shlex.quote(TAG_DRAW)} miff:- | {COMPOSITE} -tile - \"$1\" \"$2\"")
SHELL: Final = "/bin/sh"


def environment(threads: int | None) -> dict[str, str]:
    """The lab's environment; ``threads`` sets ``MAGICK_THREAD_LIMIT`` (None: ImageMagick's
    default, one OpenMP thread per core)."""
    env = clean_environment()
    if threads is not None:
        env["MAGICK_THREAD_LIMIT"] = str(threads)
    return env


def one(source: Path, output: Path) -> list[str]:
    """argv converting one file."""
    return [SHELL, "-c", PIPELINE, "lab", str(source), str(output)]


def parallel(ext: str, jobs: int) -> list[str]:
    """argv converting every file named on standard input (NUL-separated), ``jobs`` at a time
    with ``xargs -P``, into the folder ``$LAB_OUT``."""
    script = f'b=$(basename "$1"); set -- "$1" "$LAB_OUT/${{b%.*}}.{ext}"; {PIPELINE}'
    return ["xargs", "-0", "-n", "1", "-P", str(jobs), SHELL, "-c", script, "lab"]


def parallel_input(sources: list[Path]) -> bytes:
    return b"".join(os.fsencode(path) + b"\0" for path in sources)
