"""Look at an input before ImageMagick does: is it an allowed raster image, and not a bomb?"""

from __future__ import annotations

import stat
from pathlib import Path

from server.engine.errors import ConversionError
from server.engine.limits import Limits
from server.engine.probe import Header, read_header
from shared.formats import SNIFF_BYTES, InputFormat, sniff

_ALLOWED = "JPEG, PNG, GIF, WebP, TIFF or BMP"


def inspect_input(source: Path, limits: Limits) -> tuple[InputFormat, Header]:
    """The sniffed format and header of ``source``; raises ``ConversionError`` for a refusal."""
    try:
        info = source.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the open below forever
            raise ConversionError("unsupported_input", "the input is not a regular file")
        with source.open("rb") as handle:
            head = handle.read(max(SNIFF_BYTES, 64))
    except FileNotFoundError:
        raise ConversionError("internal", "the downloaded input file is missing",
                              permanent=False) from None
    except OSError as error:
        raise ConversionError("internal", f"cannot read the input: {error.strerror}",
                              permanent=False) from None
    if info.st_size == 0:
        raise ConversionError("unsupported_input", "the file is empty")
    if info.st_size > limits.max_input_bytes:
        raise ConversionError("too_large", f"the file is {_mb(info.st_size)}, over the "
                              f"{_mb(limits.max_input_bytes)} limit")
    fmt = sniff(head[:SNIFF_BYTES])
    if fmt is None:
        raise ConversionError("unsupported_input", f"not a supported image ({describe(head)}); "
                              f"send {_ALLOWED}")
    header = read_header(source, fmt, frame_cap=limits.max_frames)
    check_header(header, limits)
    return fmt, header


def check_header(header: Header, limits: Limits) -> None:
    """Refuse what the header already shows to be over a limit."""
    w, h = header.width, header.height
    if w is not None and h is not None:
        if w > limits.max_width or h > limits.max_height:
            limit = limits.max_width if w > limits.max_width else limits.max_height
            raise ConversionError("too_large", f"image is {w}×{h} pixels, over the {limit} limit")
        if w * h > limits.max_pixels:
            raise ConversionError("too_large", f"image is {w}×{h} pixels ({_mp(w * h)}), over "
                                  f"the {_mp(limits.max_pixels)} limit")
    if header.frames is not None and header.frames > limits.max_frames:
        raise ConversionError("too_large", f"image has more than {limits.max_frames} frames")


def describe(head: bytes) -> str:
    """A few words on what a refused file looks like, for the error message."""
    text = head.lstrip().lower()
    if head.startswith(b"%PDF"):
        return "looks like a PDF document"
    if head.startswith((b"%!", b"\xc5\xd0\xd3\xc6")):
        return "looks like PostScript"
    if text.startswith(b"<?xml") or b"<svg" in text:
        return "looks like SVG or other XML"
    if text.startswith((b"push ", b"viewbox", b"graphic-context")) or b"viewbox" in text:
        return "looks like MVG vector graphics"
    if _is_text(head):
        return "looks like text"
    return "unknown format"


def _is_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        # The sample may end in the middle of a character: judge what decodes.
        decoded = head[:-3].decode("utf-8", errors="replace")
    return all(ch.isprintable() or ch in "\t\r\n" for ch in decoded)


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 10**6 else f"{size / 1e3:.0f} kB"


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.0f} MP"
