"""Prove that our security policy is the one in force (for ``imgserver check`` and the tests).

Looking at the file is not enough: ImageMagick merges it with the system's policy, where the
last matching rule wins, so a system file can re-allow a coder we deny or deny one we need.
So the check asks ImageMagick itself, under exactly the environment a conversion gets:
is our file loaded, are dangerous coders and ``@file`` reads refused, are the resource limits
ours, and does a real tagged conversion still work.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from server.engine.detect import Engine
from server.engine.errors import ConversionError
from server.engine.limits import DEFAULT_LIMITS, Limits, child_environment
from server.engine.run import RunTimeout, run_magick

POLICY_FILE = "policy.xml"
#: Coders that read scripts, vectors, documents, URLs or other files: each must be refused.
FORBIDDEN_CODERS = ("TEXT", "MVG", "SVG", "MSVG", "MSL", "PS", "EPS", "PDF", "XPS", "EPHEMERAL",
                    "URL", "HTTPS", "LABEL", "CAPTION", "PANGO", "INLINE", "SHOW", "X", "MIFF")


def check_policy(engine: Engine, limits: Limits = DEFAULT_LIMITS) -> tuple[bool, str]:
    """``(True, summary)`` when our policy is in force, else ``(False, what is wrong)``."""
    with tempfile.TemporaryDirectory(prefix="imgpipe-policy-") as scratch:
        workdir = Path(scratch)
        for step in (_loaded, _refuses_coders, _refuses_at_files, _limits_in_force,
                     _converts):
            problem = step(engine, workdir, limits)
            if problem:
                return False, problem
    return True, (f"{engine.policy_dir / POLICY_FILE} in force: refuses "
                  f"{len(FORBIDDEN_CODERS)} non-raster coders and @files, limits "
                  f"{limits.max_width}×{limits.max_height} px, {limits.max_frames} frames")


def run_under_policy(engine: Engine, args: list[str], workdir: Path,
                     limits: Limits = DEFAULT_LIMITS, timeout: float = 30.0
                     ) -> tuple[int, str, str]:
    """Run ImageMagick with ``args`` in the environment of a conversion: (status, out, err)."""
    env = child_environment(engine.policy_dir, workdir, limits, timeout)
    try:
        done = run_magick([*engine.argv0, *args], env=env, cwd=workdir, timeout=timeout)
    except (OSError, RunTimeout) as error:
        return -1, "", str(error)
    return done.returncode, done.stdout, done.stderr


def _loaded(engine: Engine, workdir: Path, limits: Limits) -> str | None:
    _, out, _ = run_under_policy(engine, ["-list", "policy"], workdir, limits)
    expected = f"Path: {engine.policy_dir / POLICY_FILE}"
    if expected not in out:
        return f"ImageMagick does not load {engine.policy_dir / POLICY_FILE}"
    return None


def refused_coders(engine: Engine, workdir: Path, coders: tuple[str, ...],
                   limits: Limits = DEFAULT_LIMITS) -> set[str]:
    """Which of ``coders`` fail to read a small script-like file under the policy.

    One run per coder, judged by its result (was an image written?) rather than by its
    message: a refused pseudo-coder such as ``ephemeral:`` is reported under another name.
    """
    probe = workdir / "probe.txt"
    probe.write_text("push graphic-context\nviewbox 0 0 8 8\npop graphic-context\n")
    refused = set()
    for coder in coders:
        out = workdir / f"probe-{coder.lower()}.png"
        run_under_policy(engine, [f"{coder.lower()}:{probe.name}", f"png:{out.name}"], workdir,
                         limits)
        if not out.exists() or out.stat().st_size == 0:
            refused.add(coder)
    return refused


def _refuses_coders(engine: Engine, workdir: Path, limits: Limits) -> str | None:
    allowed = set(FORBIDDEN_CODERS) - refused_coders(engine, workdir, FORBIDDEN_CODERS, limits)
    if allowed:
        return f"the policy in force allows {', '.join(sorted(allowed))} (a system policy may " \
               "re-allow what ours denies)"
    return None


def _refuses_at_files(engine: Engine, workdir: Path, limits: Limits) -> str | None:
    secret = workdir / "secret.txt"
    secret.write_text("secret\n")
    _, _, err = run_under_policy(engine, ["-size", "8x8", "xc:white", "-annotate", "+0+0",
                                          f"@{secret}", "null:"], workdir, limits)
    if "security policy" not in err:
        return "the policy in force lets text be read from @files"
    return None


def _limits_in_force(engine: Engine, workdir: Path, limits: Limits) -> str | None:
    # Judged by behaviour: an image one pixel over the limit must be refused.
    for name, size in (("width", f"{limits.max_width + 1}x1"),
                       ("height", f"1x{limits.max_height + 1}")):
        _, _, err = run_under_policy(engine, ["-size", size, "xc:none", "null:"], workdir,
                                     limits)
        if "exceeds limit" not in err:
            return f"ImageMagick accepts an image of {size} pixels: the {name} limit is not set"
    _, out, _ = run_under_policy(engine, ["-list", "resource"], workdir, limits)
    if re.search(r"List length:\s*unlimited", out):
        return "ImageMagick's list-length (frames) limit is not set"
    return None


def _converts(engine: Engine, workdir: Path, limits: Limits) -> str | None:
    # Imported here: conversion imports this package's other modules, not the reverse.
    from server.engine.conversion import convert
    from shared.protocol import Operations

    sample = workdir / "sample.png"
    run_under_policy(engine, ["-size", "64x48", "xc:white", f"png:{sample.name}"], workdir,
                     limits)
    try:
        convert(engine, sample, Operations(format="png"), workdir, timeout=30, limits=limits)
    except ConversionError as error:
        return f"a test conversion fails under the policy: {error.message}"
    return None
