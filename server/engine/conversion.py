"""convert(): one input file, one ImageMagick run, one output file in the caller's workdir."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from server.engine.command import build_args, looks_like_photo, tag_layer_size, wants_frames
from server.engine.detect import Engine, output_signature_ok
from server.engine.diagnose import diagnose
from server.engine.errors import ConversionError
from server.engine.intake import inspect_input
from server.engine.limits import DEFAULT_LIMITS, Limits, child_environment
from server.engine.run import RunTimeout, run_magick
from shared.formats import EXTENSIONS
from shared.protocol import COLOR_PATTERN, MAX_TAG_CHARS, Operations, TagOptions

#: Names that ImageMagick reads as plain file names: no brackets (a frame selector), no colon
#: (a coder prefix), no percent (a sequence pattern).
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
_LINKED_INPUT = "engine-input"
_OUTPUT_STEMS = ("engine-output", "engine-result")
_RESULT = re.compile(r"imgpipe-result (\d+) (\d+) (\d+)")
_HEX_LENGTHS = frozenset({3, 4, 6, 8})


@dataclass(frozen=True)
class Converted:
    """The written output: where, which format, its size in pixels and bytes, its frames."""

    path: Path
    format: str
    width: int
    height: int
    bytes: int
    frames: int


def convert(engine: Engine, source: Path, ops: Operations, workdir: Path, *,
            timeout: float = 60.0, limits: Limits | None = None) -> Converted:
    """Convert ``source`` as ``ops`` says, writing the result inside ``workdir``.

    Raises ``ConversionError`` and nothing else for anything the input or the request causes.
    Safe to repeat: a previous output of the same call is replaced.
    """
    limits = limits or DEFAULT_LIMITS
    out_format = ops.format
    if out_format not in engine.writable:
        can = ", ".join(sorted(engine.writable)) or "nothing"
        raise ConversionError("unsupported_output",
                              f"this worker cannot write {out_format} (it writes {can})")
    tag = ops.tag
    if tag is not None:
        check_tag(engine, tag)
    in_format, header = inspect_input(source, limits)

    try:
        workdir = workdir.resolve(strict=True)
        # Never the input's own name: a repeated run deletes its old output first.
        output_name = next(f"{stem}.{EXTENSIONS[out_format]}" for stem in _OUTPUT_STEMS
                           if (workdir / f"{stem}.{EXTENSIONS[out_format]}") != source.resolve())
        name = _input_name(source, workdir)
        output = workdir / output_name
        output.unlink(missing_ok=True)
    except OSError as error:
        raise ConversionError("internal", f"cannot prepare the workdir ({error.strerror})",
                              permanent=False) from None
    try:
        input_bytes = source.stat().st_size
    except OSError:
        input_bytes = 0
    argv = build_args(engine, input_format=in_format, output_format=out_format, tag=tag,
                      source=name, output=output_name, max_width=limits.max_width,
                      layer=tag_layer_size(header.width, header.height, header.may_rotate,
                                           limits.max_pixels),
                      photo=looks_like_photo(in_format, input_bytes, header.width,
                                             header.height))
    env = child_environment(engine.policy_dir, workdir, limits, timeout)
    try:
        done = run_magick(argv, env=env, cwd=workdir, timeout=timeout)
    except RunTimeout:
        raise ConversionError("timeout", f"conversion took longer than {timeout:g} s") from None
    except OSError as error:
        raise ConversionError("internal", f"cannot run ImageMagick ({error.strerror})",
                              permanent=False) from None
    failure = diagnose(done, input_coder=in_format, output_coder=out_format)
    if failure is not None:
        output.unlink(missing_ok=True)  # e.g. the grey-filled image of a truncated JPEG
        raise failure
    return _result(output, out_format, done.stdout, wants_frames(in_format, out_format))


def check_tag(engine: Engine, tag: TagOptions) -> None:
    """Refuse tag options the protocol should already have refused (defence in depth)."""
    if len(tag.text) > MAX_TAG_CHARS:
        raise ConversionError("bad_request", f"tag text is {len(tag.text)} characters, over "
                              f"the {MAX_TAG_CHARS} limit")
    if tag.mode not in ("tile", "corner"):
        raise ConversionError("bad_request", f"unknown tag mode {str(tag.mode)[:20]!r}")
    if not isinstance(tag.point_size, int) or not 6 <= tag.point_size <= 200:
        raise ConversionError("bad_request", "tag point size must be 6 to 200")
    color = tag.color
    # ImageMagick reads a -fill value that is not a colour as an image file name (a fill
    # pattern), so only well-formed hex colours and the names this build knows get through.
    valid = (re.match(COLOR_PATTERN, color) is not None and (
        (color.startswith("#") and len(color) - 1 in _HEX_LENGTHS)
        or (not color.startswith("#") and (not engine.colors or color.lower() in engine.colors))))
    if not valid:
        raise ConversionError("bad_request", f"unknown tag colour {color[:40]!r}")


def _input_name(source: Path, workdir: Path) -> str:
    """A name for the input, relative to ``workdir``, that ImageMagick reads literally."""
    source = source.resolve()
    if source.parent == workdir and _SAFE_NAME.match(source.name):
        return source.name
    link = workdir / _LINKED_INPUT
    link.unlink(missing_ok=True)
    link.symlink_to(source)
    return link.name


def _result(output: Path, fmt: str, stdout: str, frames_kept: bool) -> Converted:
    try:
        size = output.stat().st_size
    except FileNotFoundError:
        size = 0
    if size == 0 or not output_signature_ok(output, fmt):
        raise ConversionError("internal", f"ImageMagick wrote no valid {fmt} output")
    found = _RESULT.findall(stdout)
    if not found:
        raise ConversionError("internal", "ImageMagick did not report the output size")
    width, height, frames = (int(v) for v in found[-1])
    return Converted(path=output, format=fmt, width=width, height=height, bytes=size,
                     frames=frames if frames_kept else 1)
