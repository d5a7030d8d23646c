"""Test images and the abuse corpus, written on demand into a directory of the caller's.

Good images are made by the real ImageMagick (found like the engine finds it, and run with
the system's policy, not ours, since they use generators such as plasma: that ours refuses);
hostile files are written byte by byte in pure Python, so each is exactly what it claims to be
and tiny. Every function returns the path it wrote; nothing here knows about pytest.

    from tests import corpus
    photo = corpus.jpeg(tmp_path)
    for case in corpus.abuse(tmp_path): ...
"""

from __future__ import annotations

import functools
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from server.engine.detect import Engine, detect_engine
from server.engine.errors import EngineMissing

#: Small on purpose: the engine is tested for behaviour, and a 240×160 image converts in
#: milliseconds. Large enough for a 200×50 tag tile to show.
SIZE = (240, 160)


@functools.cache
def engine() -> Engine:
    """The engine of this machine, detected once per test session."""
    return detect_engine()


def engine_available() -> bool:
    """Whether a real ImageMagick is installed here."""
    try:
        engine()
    except EngineMissing:
        return False
    return True


def lab_tools() -> tuple[str, str]:
    """The lab's two commands, ``convert`` and ``composite``, as shell words for this install."""
    argv0 = engine().argv0[0]
    if Path(argv0).name == "magick":
        return f"{argv0} convert", f"{argv0} composite"
    return argv0, str(Path(argv0).with_name("composite"))


def magick_argv0() -> tuple[str, ...]:
    """The real ImageMagick binary, as the engine detects it."""
    return tuple(engine().argv0)


def magick(*args: str, cwd: Path | None = None, check: bool = True
           ) -> subprocess.CompletedProcess[bytes]:
    """Run ImageMagick with the system's policy (for generating and measuring, not converting)."""
    return subprocess.run([*magick_argv0(), *args], cwd=cwd, capture_output=True, check=check,
                          timeout=120)


def _photo(out: str, *extra: str, size: tuple[int, int] = SIZE, seed: int = 1) -> list[str]:
    # plasma: gives a photo-like colour field; the seed keeps it the same on every run.
    return ["-seed", str(seed), "-size", f"{size[0]}x{size[1]}", "plasma:fractal",
            "-depth", "8", *extra, out]


# --- good inputs -------------------------------------------------------------------------------

def jpeg(directory: Path, name: str = "photo.jpg", size: tuple[int, int] = SIZE) -> Path:
    path = directory / name
    magick(*_photo(f"jpeg:{path}", "-quality", "90", size=size))
    return path


def png(directory: Path, name: str = "photo.png", size: tuple[int, int] = SIZE) -> Path:
    """An opaque RGB PNG."""
    path = directory / name
    magick(*_photo(f"png24:{path}", size=size))
    return path


def png_alpha(directory: Path, name: str = "alpha.png") -> Path:
    """RGBA: a half-transparent red disc on a fully transparent background (corners clear)."""
    path = directory / name
    w, h = SIZE
    magick("-size", f"{w}x{h}", "xc:none", "-fill", "rgba(255,0,0,0.6)",
           "-draw", f"circle {w // 2},{h // 2} {w // 2},{h // 6}", f"png32:{path}")
    return path


def gif(directory: Path, name: str = "still.gif") -> Path:
    path = directory / name
    magick(*_photo(f"gif:{path}", seed=2))
    return path


def animated_gif(directory: Path, name: str = "animated.gif", frames: int = 3) -> Path:
    """A looping GIF whose later frames are smaller patches at offsets (coalescing matters)."""
    path = directory / name
    w, h = SIZE
    colors = ["blue", "green", "yellow", "purple", "orange"]
    args = ["-size", f"{w}x{h}", "xc:red"]
    for index in range(frames - 1):
        color = colors[index % len(colors)]
        args += ["(", "-size", f"{w // 2}x{h // 2}", f"xc:{color}", "-set", "page",
                 f"+{10 * (index + 1)}+{5 * (index + 1)}", ")"]
    magick(*args, "-set", "delay", "10", "-loop", "0", f"gif:{path}")
    return path


def webp(directory: Path, name: str = "photo.webp") -> Path:
    path = directory / name
    magick(*_photo(f"webp:{path}", "-quality", "80", seed=3))
    return path


def animated_webp(directory: Path, name: str = "animated.webp") -> Path:
    path = directory / name
    source = animated_gif(directory, name + ".source.gif")
    magick(f"gif:{source}", "-coalesce", f"webp:{path}")
    source.unlink()
    return path


def tiff(directory: Path, name: str = "photo.tiff") -> Path:
    path = directory / name
    magick(*_photo(f"tiff:{path}", "-compress", "lzw", seed=4))
    return path


def bmp(directory: Path, name: str = "photo.bmp") -> Path:
    path = directory / name
    magick(*_photo(f"bmp:{path}", seed=5))
    return path


def jpeg_gray(directory: Path, name: str = "gray.jpg") -> Path:
    path = directory / name
    magick(*_photo(f"jpeg:{path}", "-colorspace", "Gray", "-quality", "90", seed=6))
    return path


def jpeg_cmyk(directory: Path, name: str = "cmyk.jpg") -> Path:
    path = directory / name
    magick(*_photo(f"jpeg:{path}", "-colorspace", "CMYK", "-quality", "90", seed=7))
    return path


def jpeg_exif_rotated(directory: Path, name: str = "rotated.jpg", orientation: int = 6) -> Path:
    """A JPEG stored 240×160 whose EXIF says "rotate 90° clockwise" (shown 160×240), with a
    GPS position in its EXIF, as phones write them (the output must not keep it)."""
    path = directory / name
    plain = jpeg(directory, name + ".plain.jpg")
    data = plain.read_bytes()
    plain.unlink()
    path.write_bytes(data[:2] + exif_segment(orientation) + data[2:])
    return path


def exif_segment(orientation: int) -> bytes:
    """An APP1 Exif segment: IFD0 with Orientation and a GPS IFD with a latitude reference."""
    entries = 2
    ifd0_size = 2 + 12 * entries + 4
    gps_offset = 8 + ifd0_size
    ifd0 = struct.pack("<H", entries)
    ifd0 += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)  # Orientation, SHORT
    ifd0 += struct.pack("<HHII", 0x8825, 4, 1, gps_offset)  # GPSInfo IFD pointer, LONG
    ifd0 += struct.pack("<I", 0)
    gps = struct.pack("<H", 1) + struct.pack("<HHI4s", 0x0001, 2, 2, b"N\x00\x00\x00")
    gps += struct.pack("<I", 0)
    tiff_data = b"II*\x00" + struct.pack("<I", 8) + ifd0 + gps
    payload = b"Exif\x00\x00" + tiff_data
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


@dataclass(frozen=True)
class Sample:
    """A good input and what a conversion of it must show."""

    name: str
    path: Path
    format: str
    width: int  # after EXIF orientation
    height: int
    frames: int = 1
    alpha: bool = False


def inputs(directory: Path) -> dict[str, Sample]:
    """Every kind of good input, by name."""
    w, h = SIZE
    return {sample.name: sample for sample in (
        Sample("jpeg", jpeg(directory), "jpeg", w, h),
        Sample("png_alpha", png_alpha(directory), "png", w, h, alpha=True),
        Sample("gif", gif(directory), "gif", w, h),
        Sample("animated_gif", animated_gif(directory), "gif", w, h, frames=3),
        Sample("webp", webp(directory), "webp", w, h),
        Sample("animated_webp", animated_webp(directory), "webp", w, h, frames=3),
        Sample("tiff", tiff(directory), "tiff", w, h),
        Sample("bmp", bmp(directory), "bmp", w, h),
        Sample("jpeg_gray", jpeg_gray(directory), "jpeg", w, h),
        Sample("jpeg_cmyk", jpeg_cmyk(directory), "jpeg", w, h),
        Sample("jpeg_exif_rotated", jpeg_exif_rotated(directory), "jpeg", h, w),
    )}


# --- hostile inputs, byte by byte --------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(directory: Path, name: str = "bomb.png", side: int = 30000) -> Path:
    """A complete, valid 1-bit PNG of side×side black pixels: ~110 kB on disk, 900 MP decoded
    (3.6 GB as 8-bit RGBA). Compressed row by row so the test never holds the raw data."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte "none", then packed zero bits
    compressor = zlib.compressobj(9)
    chunks = []
    rows_per_block = max(1, (1 << 20) // len(row))
    block = row * rows_per_block
    done = 0
    while done < side:
        count = min(rows_per_block, side - done)
        chunks.append(compressor.compress(block if count == rows_per_block else row * count))
        done += count
    chunks.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", b"".join(chunks)) + _png_chunk(b"IEND", b""))
    path = directory / name
    path.write_bytes(data)
    return path


def png_claiming(directory: Path, width: int, height: int, name: str = "claims.png") -> Path:
    """A PNG whose header claims width×height but that carries a single row of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + min(width, 4096)))
    path = directory / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                     + _png_chunk(b"IEND", b""))
    return path


def gif_many_frames(directory: Path, frames: int = 5000, name: str = "frames.gif") -> Path:
    """A GIF of ``frames`` 1×1 frames: ~15 bytes each, so 5000 frames is about 75 kB."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    # Image descriptor at 0,0 of 1×1, no local table; LZW minimum code size 2; one sub-block
    # holding clear code, index 0, end code; block terminator.
    frame = b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00"
    path = directory / name
    path.write_bytes(header + loop + frame * frames + b"\x3b")
    return path


def truncated_jpeg(directory: Path, name: str = "truncated.jpg") -> Path:
    source = jpeg(directory, name + ".full.jpg")
    data = source.read_bytes()
    source.unlink()
    path = directory / name
    path.write_bytes(data[: len(data) // 2])
    return path


def write_bytes(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


MVG = b"push graphic-context\nviewbox 0 0 64 64\nimage over 0,0 0,0 'text:/etc/passwd'\n" \
      b"pop graphic-context\n"
SVG = (b'<?xml version="1.0" standalone="no"?>\n<svg width="64" height="64" '
       b'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
       b'<image xlink:href="text:/etc/passwd" width="64" height="64"/></svg>\n')
POSTSCRIPT = b"%!PS-Adobe-3.0\n%%BoundingBox: 0 0 64 64\n(/etc/passwd) (r) file\nshowpage\n"
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
MSL = (b'<?xml version="1.0" encoding="UTF-8"?>\n<image>\n<read filename="/etc/passwd"/>\n'
       b'<write filename="/tmp/imgpipe-msl-pwned"/>\n</image>\n')


@dataclass(frozen=True)
class Abuse:
    """A hostile input and the error code that must answer it."""

    name: str
    path: Path
    code: str


def abuse(directory: Path) -> list[Abuse]:
    """The abuse corpus: each file with the ConversionError code it must be refused with."""
    cases = [
        ("zero_byte", write_bytes(directory, "empty.jpg", b""), "unsupported_input"),
        ("truncated_jpeg", truncated_jpeg(directory), "corrupt_input"),
        ("text_named_jpg", write_bytes(directory, "notes.jpg", b"hello, this is a text file\n"),
         "unsupported_input"),
        ("png_bomb_30000", png_bomb(directory), "too_large"),
        ("png_claims_huge", png_claiming(directory, 2_000_000_000, 1), "too_large"),
        ("png_claims_area", png_claiming(directory, 16000, 16000, "area.png"), "too_large"),
        ("mvg_named_jpg", write_bytes(directory, "vector.jpg", MVG), "unsupported_input"),
        ("svg_named_png", write_bytes(directory, "vector.png", SVG), "unsupported_input"),
        ("postscript_named_jpg", write_bytes(directory, "doc.jpg", POSTSCRIPT),
         "unsupported_input"),
        ("pdf_named_png", write_bytes(directory, "doc.png", PDF), "unsupported_input"),
        ("msl_named_jpg", write_bytes(directory, "script.jpg", MSL), "unsupported_input"),
        ("ephemeral_text", write_bytes(directory, "ephemeral.gif", b"ephemeral:/etc/passwd\n"),
         "unsupported_input"),
        ("msl_coder_text", write_bytes(directory, "coder.png", b"msl:/tmp/script.msl\n"),
         "unsupported_input"),
        ("gif_5000_frames", gif_many_frames(directory), "too_large"),
        ("jpeg_magic_then_garbage",
         write_bytes(directory, "garbage.jpg", b"\xff\xd8\xff" + bytes(range(256)) * 8),
         "corrupt_input"),
        ("png_magic_then_garbage",
         write_bytes(directory, "garbage.png", b"\x89PNG\r\n\x1a\n" + b"\x13\x37" * 300),
         "corrupt_input"),
        ("gif_header_then_garbage",
         write_bytes(directory, "garbage.gif",
                     b"GIF89a\x10\x00\x10\x00\x00\x00\x00" + b"\x99" * 64),
         "corrupt_input"),
    ]
    return [Abuse(name, path, code) for name, path, code in cases]


# --- measuring outputs -------------------------------------------------------------------------

def pixel_difference(a: Path, b: Path) -> int:
    """How many pixels of the first frames of ``a`` and ``b`` differ (ImageMagick's AE)."""
    done = magick_compare(f"{a}[0]", f"{b}[0]")
    return int(float(done.split()[0]))


def pixel_difference_in(a: Path, b: Path, region: str) -> int:
    """Like ``pixel_difference``, within ``region`` (WxH+X+Y) of the first frames."""
    done = magick_compare(f"{a}[{region}]", f"{b}[{region}]")
    return int(float(done.split()[0]))


def magick_compare(a: str, b: str) -> str:
    compare = list(magick_argv0())
    # ImageMagick 6 has a separate compare tool beside convert; 7 has "magick compare".
    if compare[0].endswith("magick"):
        compare.append("compare")
    else:
        compare[0] = str(Path(compare[0]).with_name("compare"))
    done = subprocess.run([*compare, "-metric", "AE", a, b, "null:"], capture_output=True,
                          timeout=60, check=False)
    if done.returncode not in (0, 1):  # 1 means "images differ"
        raise RuntimeError(done.stderr.decode(errors="replace"))
    return done.stderr.decode()


def coalesced_frames(path: Path, directory: Path) -> list[Path]:
    """Every frame of an animation as a full-size PNG (optimised GIF frames are patches)."""
    directory.mkdir(parents=True, exist_ok=True)
    magick(str(path), "-coalesce", "+adjoin", f"png:{directory}/frame-%03d.png")
    return sorted(directory.glob("frame-*.png"))


def pixel_rgb(path: Path, x: int, y: int) -> tuple[int, int, int]:
    """The 8-bit sRGB colour of one pixel of the first frame."""
    out = magick(f"{path}[0]", "-colorspace", "sRGB", "-crop", f"1x1+{x}+{y}", "-depth", "8",
                 "rgb:-").stdout
    return out[0], out[1], out[2]
