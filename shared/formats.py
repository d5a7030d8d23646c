"""Image formats: what a client may send, what a worker may write, and content sniffing.

The format of an input is decided by its first bytes, never by its name, and only the raster
formats below are accepted. Everything else (SVG, MVG, PostScript, PDF, text, ...) is refused
before ImageMagick ever sees the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

InputFormat = Literal["jpeg", "png", "gif", "webp", "tiff", "bmp"]
OutputFormat = Literal["png", "jpeg", "webp", "gif", "tiff", "bmp", "avif"]

INPUT_FORMATS: Final[tuple[InputFormat, ...]] = ("jpeg", "png", "gif", "webp", "tiff", "bmp")
OUTPUT_FORMATS: Final[tuple[OutputFormat, ...]] = (
    "png", "jpeg", "webp", "gif", "tiff", "bmp", "avif",
)

#: Spellings users type for a format, mapped to the one name the protocol carries.
FORMAT_ALIASES: Final[dict[str, str]] = {"jpg": "jpeg", "tif": "tiff"}

#: File-name extension written for each output format.
EXTENSIONS: Final[dict[str, str]] = {
    "png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif", "tiff": "tiff", "bmp": "bmp",
    "avif": "avif",
}

#: How many leading bytes ``sniff`` needs to decide.
SNIFF_BYTES: Final = 32


def normalise_format(name: str) -> str:
    """Lower-case a user's format name and resolve aliases (``JPG`` → ``jpeg``)."""
    lowered = name.strip().lower()
    return FORMAT_ALIASES.get(lowered, lowered)


def sniff(head: bytes) -> InputFormat | None:
    """The raster format that ``head`` (the file's first bytes) starts with, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 18 and head[14] in (12, 40, 52, 56, 64, 108, 124):
        # BMP has a two-byte magic; the DIB header size that follows narrows it to real bitmaps.
        return "bmp"
    return None


def sniff_file(path: Path) -> InputFormat | None:
    """Sniff a file on disk by its first bytes; None when it is no allowed raster image."""
    with path.open("rb") as handle:
        return sniff(handle.read(SNIFF_BYTES))
