"""Pure-Python parts of the engine: text escaping, tile geometry, header parsing, argv shape and
the reading of ImageMagick's messages. No ImageMagick needed, except to make sample headers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from server.engine.command import TILE, TileGeometry, annotate_text, build_args, wants_frames
from server.engine.detect import POLICY_DIR, Engine
from server.engine.diagnose import diagnose, parse_reports
from server.engine.intake import describe
from server.engine.probe import Header, read_header
from server.engine.run import Completed
from shared.protocol import TagOptions
from tests import corpus

FAKE = Engine(argv0=["/usr/bin/convert"], version="ImageMagick 6.9.11-60 Q16",
              writable=frozenset({"png", "jpeg", "gif", "webp"}), policy_dir=POLICY_DIR,
              font="Helvetica")


@pytest.mark.parametrize(("text", "escaped"), [
    ("plain", "plain"),
    ("100%", "100%%"),
    ("%[exif:*]", "%%[exif:*]"),
    ("a\\nb", "a\\\\nb"),
    ("&lt;", "&amp;lt;"),
    ("@/etc/passwd", "\u200b@/etc/passwd"),
    ("  @x", "\u200b  @x"),
    ("mid @ sign", "mid @ sign"),
    ("tab\there", "tab here"),
])
def test_annotate_text_escapes(text: str, escaped: str) -> None:
    assert annotate_text(text) == escaped


def test_tile_geometry_reproduces_the_labs_tile_at_20_points() -> None:
    g = TileGeometry.for_text("processed by EC2", 20, 16384)
    assert (g.height, g.x, g.y, g.min_width) == (50, 10, 30, 200)
    assert g.canvas_width > 200


def test_tile_geometry_scales_and_is_capped() -> None:
    g = TileGeometry.for_text("x" * 200, 200, 16384)
    assert (g.height, g.x, g.y, g.min_width) == (500, 100, 300, 2000)
    assert g.canvas_width == 16384


def test_default_argv_shape() -> None:
    argv = build_args(FAKE, input_format="jpeg", output_format="png", tag=TagOptions(),
                      source="input", output="engine-output.png")
    assert argv[0] == "/usr/bin/convert"
    # The input is read with its coder named and only its first frame.
    assert "jpeg:input[0]" in argv
    assert argv[-1] == "png:engine-output.png"
    # The one item that carries user text comes right after -annotate's geometry.
    at = argv.index("-annotate")
    assert argv[at + 2] == "processed by imgpipe"
    assert argv.count(TILE) == 2
    assert "-strip" in argv and "-auto-orient" in argv
    assert all("\n" not in item for item in argv)


def test_no_tag_means_no_drawing() -> None:
    argv = build_args(FAKE, input_format="png", output_format="jpeg", tag=None, source="in",
                      output="out.jpg")
    assert "-annotate" not in argv and "null:" not in argv
    assert argv[argv.index("-alpha") - 2:argv.index("-alpha") + 2] == [
        "-background", "white", "-alpha", "remove"]


@pytest.mark.parametrize(("source", "target", "frames"), [
    ("gif", "gif", True), ("gif", "webp", True), ("webp", "gif", True),
    ("gif", "png", False), ("tiff", "gif", False), ("jpeg", "webp", False),
])
def test_which_conversions_keep_frames(source: str, target: str, frames: bool) -> None:
    assert wants_frames(source, target) is frames
    argv = build_args(FAKE, input_format=source, output_format=target, tag=None, source="in",
                      output="out")
    assert (f"{source}:in" in argv) is frames


@pytest.mark.skipif(not corpus.engine_available(), reason="ImageMagick not installed")
@pytest.mark.parametrize(("maker", "fmt"), [
    (corpus.jpeg, "jpeg"), (corpus.png, "png"), (corpus.gif, "gif"), (corpus.webp, "webp"),
    (corpus.tiff, "tiff"), (corpus.bmp, "bmp"),
])
def test_headers_give_the_size_of_real_files(maker, fmt: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    header = read_header(maker(tmp_path), fmt)
    assert (header.width, header.height) == corpus.SIZE
    assert header.frames == 1


@pytest.mark.skipif(not corpus.engine_available(), reason="ImageMagick not installed")
def test_headers_count_frames(tmp_path: Path) -> None:
    assert read_header(corpus.animated_gif(tmp_path, frames=4), "gif").frames == 4
    assert read_header(corpus.animated_webp(tmp_path), "webp").frames == 3
    assert read_header(corpus.gif_many_frames(tmp_path, 700), "gif", frame_cap=500).frames == 501
    assert read_header(corpus.jpeg_cmyk(tmp_path), "jpeg").components == 4


def test_headers_of_hostile_files(tmp_path: Path) -> None:
    assert read_header(corpus.png_claiming(tmp_path, 2**31 - 1, 7), "png") == Header(
        2**31 - 1, 7, 1)
    # A GIF frame larger than its logical screen counts at its own size.
    frame = b"\x2c\x00\x00\x00\x00" + struct.pack("<HH", 60000, 2) + b"\x00\x02\x02\x44\x01\x00"
    wide = corpus.write_bytes(tmp_path, "wide.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00"
                              + frame + b"\x3b")
    assert read_header(wide, "gif").width == 60000
    for name, data, fmt in [
        ("short.png", b"\x89PNG\r\n\x1a\n\x00", "png"),
        ("short.jpg", b"\xff\xd8\xff\xe0\x00", "jpeg"),
        ("short.tiff", b"II*\x00\xff\xff\x00\x00", "tiff"),
        ("short.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        ("short.bmp", b"BM" + b"\x00" * 12 + b"\x28", "bmp"),
    ]:
        assert read_header(corpus.write_bytes(tmp_path, name, data), fmt).width is None


@pytest.mark.parametrize(("head", "says"), [
    (b"%PDF-1.7\n", "PDF"), (b"%!PS-Adobe", "PostScript"), (b"<?xml version", "XML"),
    (b"  <svg xmlns=", "SVG"), (b"push graphic-context", "MVG"), (b"hello\n", "text"),
    (b"\x00\x01\x02\xfe", "unknown"),
])
def test_describe_refused_content(head: bytes, says: str) -> None:
    assert says in describe(head)


def _done(stderr: str, code: int = 1) -> Completed:
    return Completed(code, "", stderr, 0.1)


@pytest.mark.parametrize(("stderr", "code", "expected"), [
    ("convert-im6.q16: width or height exceeds limit `in' @ error/cache.c/OpenPixelCache/3928.",
     1, "too_large"),
    ("convert: time limit exceeded `Operation canceled' @ fatal/cache.c/GetImagePixelCache/1877.",
     1, "timeout"),
    ("convert: Premature end of JPEG file `in' @ warning/jpeg.c/JPEGWarningHandler/389.",
     0, "corrupt_input"),
    ("convert: attempt to perform an operation not allowed by the security policy `TIFF' "
     "@ error/constitute.c/IsCoderAuthorized/426.", 1, "unsupported_input"),
    ("convert: attempt to perform an operation not allowed by the security policy `AVIF' "
     "@ error/constitute.c/IsCoderAuthorized/426.", 1, "unsupported_output"),
    ("convert: corrupt image `in' @ error/gif.c/DecodeImage/513.", 1, "corrupt_input"),
    ("convert: no images defined `png:out' @ error/convert.c/ConvertImageCommand/3234.", 1,
     "corrupt_input"),
    ("convert: unrecognized option `-bogus' @ error/convert.c/ConvertImageCommand/2989.", 1,
     "internal"),
])
def test_diagnose_maps_imagemagick_messages(stderr: str, code: int, expected: str) -> None:
    error = diagnose(_done(stderr, code), input_coder="tiff", output_coder="avif")
    assert error is not None and error.code == expected
    assert "@ error" not in error.message and "@ warning" not in error.message


def test_harmless_warnings_do_not_fail() -> None:
    stderr = ("convert: Corrupt JPEG data: 2 extraneous bytes before marker 0xd9 `in' "
              "@ warning/jpeg.c/JPEGWarningHandler/389.\n"
              "convert: iCCP: known incorrect sRGB profile `in' "
              "@ warning/png.c/MagickPNGWarningHandler/1754.\n"
              "convert: Unknown field with tag 37706 (0x934a) encountered. `TIFFReadDirectory' "
              "@ warning/tiff.c/TIFFWarnings/985.\n")
    assert diagnose(_done(stderr, 0), input_coder="jpeg", output_coder="png") is None


def test_a_crash_is_the_inputs_fault_and_an_oom_kill_is_not() -> None:
    crash = diagnose(_done("", -6), input_coder="png", output_coder="png")
    assert crash is not None and crash.code == "corrupt_input" and "SIGABRT" in crash.message
    killed = diagnose(_done("", -9), input_coder="png", output_coder="png")
    assert killed is not None and killed.code == "internal" and not killed.permanent


def test_parse_reports_reads_subject_and_severity() -> None:
    (report,) = parse_reports("convert: half.tiff: Can not read TIFF directory count. "
                              "`TIFFFetchDirectory' @ error/tiff.c/TIFFErrors/603.")
    assert report.severity == "error" and report.module == "tiff"
    assert report.subject == "TIFFFetchDirectory"
