"""Read an image's dimensions and frame count from its header, without decoding it.

This runs before ImageMagick sees the file, so that a decompression bomb (a few KB of PNG that
claims 30000×30000 pixels, a GIF with thousands of frames) is refused in microseconds with a
clear reason instead of by an allocation failure half-way through a decode. It is a first
layer only: the policy limits stay in force for anything these parsers do not see.

Every parser is defensive: a header that is cut short or malformed gives ``None`` fields (or
stops counting), never an exception; ImageMagick then decides whether the file decodes.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

#: How much of the file the header parsers may read. GIF and animated WebP are walked block by
#: block to count frames, so they are read whole up to this cap (inputs are bounded anyway).
_MAX_READ = 64 * 1024 * 1024


@dataclass(frozen=True)
class Header:
    """What the header says; ``None`` where it does not say or could not be read."""

    width: int | None = None
    height: int | None = None
    frames: int | None = None
    #: JPEG only: colour components (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK).
    components: int | None = None
    #: Whether ``-auto-orient`` might turn the image a quarter (swapping width and height):
    #: False only where the header shows it cannot (no EXIF in a JPEG; GIF and BMP have no
    #: orientation at all), True when it may or the parser cannot tell.
    may_rotate: bool = True


def read_header(path: Path, fmt: str, *, frame_cap: int = 100_000) -> Header:
    """The header of ``path``, already sniffed as ``fmt``; counting stops after ``frame_cap``.

    The file is mapped, not read: a parser touches only the pages it looks at, so a 50 MP
    JPEG costs the worker a few kB of memory, not its size.
    """
    parser = _PARSERS.get(fmt)
    if parser is None:
        return Header()
    with path.open("rb") as handle:
        try:
            size = min(os.fstat(handle.fileno()).st_size, _MAX_READ)
            data = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # empty, or not mappable: nothing to parse
            return Header()
        with data:
            try:
                return parser(data, frame_cap)  # type: ignore[arg-type]
            except (struct.error, IndexError, ValueError):
                return Header()


def _png(data: bytes, _cap: int) -> Header:
    # The IHDR chunk must come first: length(4) "IHDR"(4) width(4) height(4).
    if data[12:16] != b"IHDR":
        return Header()
    width, height = struct.unpack_from(">II", data, 16)
    return Header(width, height, 1)


def _gif(data: bytes, cap: int) -> Header:
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    pos = 13
    if flags & 0x80:
        pos += 3 * (2 << (flags & 7))
    frames = 0
    # A frame may claim to be larger than the logical screen; ImageMagick allocates for it.
    max_w, max_h = width, height
    size = len(data)
    while pos < size and frames <= cap:
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor
            _, _, frame_w, frame_h, frame_flags = struct.unpack_from("<HHHHB", data, pos + 1)
            max_w, max_h = max(max_w, frame_w), max(max_h, frame_h)
            pos += 10
            if frame_flags & 0x80:
                pos += 3 * (2 << (frame_flags & 7))
            pos = _skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size
            frames += 1
        else:
            break  # garbage: stop counting, let the decoder judge
    return Header(max_w, max_h, frames or None, may_rotate=False)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    size = len(data)
    while pos < size:
        length = data[pos]
        pos += 1 + length
        if length == 0:
            break
    return pos


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF})


def _jpeg(data: bytes, _cap: int) -> Header:
    """Size from the frame header; whether an EXIF segment (which may hold an orientation)
    comes before the scan, where the decoder reads markers."""
    pos = 2
    size = len(data)
    frame: tuple[int, int, int] | None = None
    exif = scan = False
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        if marker == 0xDA:  # start of scan: the decoder has read every marker that counts
            scan = True
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF_MARKERS and frame is None:
            height, width, components = struct.unpack_from(">HHB", data, pos + 5)
            frame = (width, height, components)
        elif marker == 0xE1 and data[pos + 4:pos + 10] == b"Exif\x00\x00":
            exif = True
        pos += 2 + length
    if frame is None:
        return Header()
    width, height, components = frame
    # Garbage or a cut before the scan: what else the decoder finds is unknown.
    return Header(width, height, 1, components, may_rotate=exif or not scan)


def _bmp(data: bytes, _cap: int) -> Header:
    (dib_size,) = struct.unpack_from("<I", data, 14)
    if dib_size == 12:
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    # A negative height means rows stored top-down; BMP has no orientation tag.
    return Header(abs(width), abs(height), 1, may_rotate=False)


def _webp(data: bytes, cap: int) -> Header:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        frames = 0
        pos = 12
        size = len(data)
        while pos + 8 <= size and frames <= cap:
            name = data[pos:pos + 4]
            (length,) = struct.unpack_from("<I", data, pos + 4)
            if name == b"ANMF":
                frames += 1
            pos += 8 + length + (length & 1)
        return Header(width, height, frames or 1)
    if chunk == b"VP8 ":
        # Key frame: 3-byte tag, start code 9d 01 2a, then 14-bit width and height.
        if data[23:26] != b"\x9d\x01\x2a":
            return Header()
        width, height = struct.unpack_from("<HH", data, 26)
        return Header(width & 0x3FFF, height & 0x3FFF, 1)
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return Header()
        (bits,) = struct.unpack_from("<I", data, 21)
        return Header((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1)
    return Header()


def _tiff(data: bytes, cap: int) -> Header:
    endian = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(endian + "I", data, 4)
    width = height = None
    pages = 0
    seen: set[int] = set()
    while offset and offset not in seen and pages <= cap:
        seen.add(offset)
        try:
            (count,) = struct.unpack_from(endian + "H", data, offset)
            if pages == 0:
                width, height = _tiff_size(data, endian, offset, count)
            pages += 1
            (offset,) = struct.unpack_from(endian + "I", data, offset + 2 + 12 * count)
        except struct.error:
            break  # a chain cut short: keep what was read
    return Header(width, height, pages or None)


def _tiff_size(data: bytes, endian: str, offset: int, count: int) -> tuple[int | None, int | None]:
    found: dict[int, int] = {}
    for index in range(count):
        tag, kind, _, value = struct.unpack_from(endian + "HHI4s", data, offset + 2 + 12 * index)
        if tag in (256, 257):
            found[tag] = (struct.unpack(endian + "H", value[:2])[0] if kind == 3
                          else struct.unpack(endian + "I", value)[0])
    return found.get(256), found.get(257)


_PARSERS = {"png": _png, "gif": _gif, "jpeg": _jpeg, "bmp": _bmp, "webp": _webp, "tiff": _tiff}
