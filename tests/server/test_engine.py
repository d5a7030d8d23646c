"""The engine's happy paths, against the real ImageMagick: every input kind to every output
format this build writes, the lab's look, and what each output must (not) carry."""

from __future__ import annotations

import itertools
import shlex
import subprocess
from pathlib import Path

import pytest

from server.engine import Converted, Engine, convert
from server.engine.detect import output_signature_ok
from server.engine.probe import read_header
from shared.formats import OUTPUT_FORMATS
from shared.protocol import Operations, TagOptions
from tests import corpus

pytestmark = pytest.mark.skipif(not corpus.engine_available(), reason="ImageMagick not installed")

LAB_TEXT = "processed by EC2"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return corpus.engine()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Sample]:
    return corpus.inputs(tmp_path_factory.mktemp("inputs"))


_runs = itertools.count()


def _convert(engine: Engine, source: Path, fmt: str, tmp: Path, tag: TagOptions | None
             ) -> Converted:
    workdir = tmp / f"run{next(_runs)}-{fmt}"
    workdir.mkdir()
    return convert(engine, source, Operations(format=fmt, tag=tag), workdir)  # type: ignore[arg-type]


INPUTS = ["jpeg", "png_alpha", "gif", "animated_gif", "webp", "animated_webp", "tiff", "bmp",
          "jpeg_gray", "jpeg_cmyk", "jpeg_exif_rotated"]


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
@pytest.mark.parametrize("name", INPUTS)
def test_every_input_converts_to_every_writable_format(
        engine: Engine, samples: dict[str, corpus.Sample], name: str, fmt: str,
        tmp_path: Path) -> None:
    if fmt not in engine.writable:
        pytest.skip(f"this ImageMagick cannot write {fmt}")
    sample = samples[name]
    tagged = _convert(engine, sample.path, fmt, tmp_path, TagOptions())
    plain = _convert(engine, sample.path, fmt, tmp_path, None)

    assert tagged.format == fmt
    assert tagged.path.parent == (tmp_path / tagged.path.parent.name)
    assert output_signature_ok(tagged.path, fmt), "the output is not what its format says"
    assert tagged.bytes == tagged.path.stat().st_size > 0
    # EXIF orientation is applied: the rotated sample comes out 160×240.
    assert (tagged.width, tagged.height) == (sample.width, sample.height)
    keeps_frames = sample.frames > 1 and fmt in ("gif", "webp")
    assert tagged.frames == (sample.frames if keeps_frames else 1)
    # The tag is there: the tagged output differs visibly from a plain conversion.
    assert corpus.pixel_difference(tagged.path, plain.path) > 200


def test_default_tile_matches_the_labs_two_process_pipeline(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    source = samples["jpeg"].path
    lab = tmp_path / "lab.png"
    convert_bin, composite_bin = corpus.lab_tools()
    # The lab's command, verbatim but for the binaries' paths: a shell pipe of two processes.
    pipeline = (f"{convert_bin} -size 200x50 xc:none -matte -pointsize 20 "
                f"-draw \"text 10,30 '{LAB_TEXT}'\" miff:- | "
                f"{composite_bin} -tile - {shlex.quote(str(source))} {shlex.quote(str(lab))}")
    subprocess.run(pipeline, shell=True, check=True, capture_output=True, timeout=60)

    ours = _convert(engine, source, "png", tmp_path, TagOptions(text=LAB_TEXT))
    differing = corpus.pixel_difference(ours.path, lab)
    if engine.font == "Helvetica":  # ImageMagick's own default, as the lab used it
        assert differing == 0
    else:  # another font draws other glyphs, in the same places
        assert differing <= 0.15 * ours.width * ours.height, differing


def test_png_with_alpha_flattens_onto_white_for_jpeg(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    out = _convert(engine, samples["png_alpha"].path, "jpeg", tmp_path, None)
    assert min(corpus.pixel_rgb(out.path, 1, 1)) >= 245  # a transparent corner: white, not black


def test_png_keeps_its_alpha_and_a_jpeg_gains_none(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    alpha = _convert(engine, samples["png_alpha"].path, "png", tmp_path, TagOptions())
    opaque = _convert(engine, samples["jpeg"].path, "png", tmp_path, TagOptions())
    assert _png_color_type(alpha.path) in (4, 6)
    # Tagging must not add an alpha channel to an opaque image (a quarter more bytes).
    assert _png_color_type(opaque.path) in (0, 2, 3)
    opaque_corner = _convert(engine, samples["jpeg"].path, "png", tmp_path,
                             TagOptions(mode="corner"))
    assert _png_color_type(opaque_corner.path) in (0, 2, 3)


def _png_color_type(path: Path) -> int:
    return path.read_bytes()[25]


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "tiff"])
def test_metadata_is_stripped(engine: Engine, samples: dict[str, corpus.Sample], fmt: str,
                              tmp_path: Path) -> None:
    source = samples["jpeg_exif_rotated"].path
    assert b"Exif\x00\x00" in source.read_bytes()
    out = _convert(engine, source, fmt, tmp_path, TagOptions())
    data = out.path.read_bytes()
    assert b"Exif" not in data and b"eXIf" not in data
    assert b"GPS" not in data


def test_cmyk_jpeg_comes_out_rgb(engine: Engine, samples: dict[str, corpus.Sample],
                                 tmp_path: Path) -> None:
    assert read_header(samples["jpeg_cmyk"].path, "jpeg").components == 4
    out = _convert(engine, samples["jpeg_cmyk"].path, "jpeg", tmp_path, TagOptions())
    assert read_header(out.path, "jpeg").components == 3


def test_corner_mode_tags_only_the_bottom_right(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    source = samples["jpeg"].path
    corner = _convert(engine, source, "png", tmp_path,
                      TagOptions(text="corner", mode="corner", color="red"))
    plain = _convert(engine, source, "png", tmp_path, None)
    w, h = corner.width, corner.height
    top_left = corpus.pixel_difference_in(corner.path, plain.path, f"{w // 2}x{h // 2}+0+0")
    bottom_right = corpus.pixel_difference_in(corner.path, plain.path,
                                              f"{w // 2}x{h // 2}+{w // 2}+{h // 2}")
    assert top_left == 0
    assert bottom_right > 50


def test_colour_and_point_size_change_the_tag(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    source = samples["png_alpha"].path
    black = _convert(engine, source, "png", tmp_path, TagOptions())
    red = _convert(engine, source, "png", tmp_path, TagOptions(color="#ff0000"))
    big = _convert(engine, source, "png", tmp_path, TagOptions(point_size=40))
    assert corpus.pixel_difference(black.path, red.path) > 200
    assert corpus.pixel_difference(black.path, big.path) > 200


@pytest.mark.parametrize("text", ["", "   "])
def test_blank_tag_text_is_a_plain_conversion(
        engine: Engine, samples: dict[str, corpus.Sample], text: str, tmp_path: Path) -> None:
    source = samples["jpeg"].path
    blank = _convert(engine, source, "png", tmp_path, TagOptions(text=text))
    plain = _convert(engine, source, "png", tmp_path, None)
    assert corpus.pixel_difference(blank.path, plain.path) == 0


def test_repeating_a_conversion_in_the_same_workdir_is_safe(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    source = samples["gif"].path  # outside the workdir: it is linked in, twice
    workdir = tmp_path / "job"
    workdir.mkdir()
    ops = Operations(format="webp")
    first = convert(engine, source, ops, workdir)
    first_bytes = first.path.read_bytes()
    second = convert(engine, source, ops, workdir)
    assert second.path == first.path
    assert second.path.read_bytes() == first_bytes


def test_a_hostile_source_name_is_never_parsed(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    # Brackets select frames, a colon names a coder, a percent makes a sequence: none of
    # that may happen to a file name.
    odd = tmp_path / "msl:x[0]%d @me.gif"
    odd.write_bytes(samples["animated_gif"].path.read_bytes())
    workdir = tmp_path / "job"
    workdir.mkdir()
    out = convert(engine, odd, Operations(format="gif"), workdir)
    assert out.frames == 3
    inside = tmp_path / "job2"
    inside.mkdir()
    in_workdir = inside / "input[1].gif"
    in_workdir.write_bytes(odd.read_bytes())
    assert convert(engine, in_workdir, Operations(format="gif"), inside).frames == 3


def test_output_is_written_inside_the_workdir_only(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    workdir = tmp_path / "job"
    workdir.mkdir()
    before = set(tmp_path.iterdir())
    out = convert(engine, samples["tiff"].path, Operations(format="png"), workdir)
    assert out.path.parent == workdir.resolve()
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize(("name", "fmt"), [
    ("animated_gif", "gif"), ("animated_webp", "webp"), ("png_alpha", "webp"),
    ("jpeg_exif_rotated", "jpeg"), ("jpeg_gray", "png"), ("tiff", "bmp"),
])
def test_corner_mode_across_formats(engine: Engine, samples: dict[str, corpus.Sample],
                                    name: str, fmt: str, tmp_path: Path) -> None:
    sample = samples[name]
    tag = TagOptions(text="© imgpipe", mode="corner", color="white", point_size=14)
    tagged = _convert(engine, sample.path, fmt, tmp_path, tag)
    plain = _convert(engine, sample.path, fmt, tmp_path, None)
    assert (tagged.width, tagged.height) == (sample.width, sample.height)
    assert tagged.frames == (sample.frames if fmt in ("gif", "webp") else 1)
    assert corpus.pixel_difference(tagged.path, plain.path) > 20


def test_every_frame_of_an_animation_is_tagged(
        engine: Engine, samples: dict[str, corpus.Sample], tmp_path: Path) -> None:
    tagged = _convert(engine, samples["animated_gif"].path, "gif", tmp_path, TagOptions())
    plain = _convert(engine, samples["animated_gif"].path, "gif", tmp_path, None)
    tagged_frames = corpus.coalesced_frames(tagged.path, tmp_path / "tagged")
    plain_frames = corpus.coalesced_frames(plain.path, tmp_path / "plain")
    assert len(tagged_frames) == len(plain_frames) == 3
    for ours, theirs in zip(tagged_frames, plain_frames, strict=True):
        assert corpus.pixel_difference(ours, theirs) > 200, ours.name
