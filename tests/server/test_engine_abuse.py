"""Hostile inputs and requests: each refused with the right code, quickly, on the first try;
the tag text drawn as data; a run over its time killed with its whole process group."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import cast

import pytest

from server.engine import ConversionError, Engine, Limits, convert
from server.engine.command import build_args
from server.engine.limits import DEFAULT_LIMITS, child_environment
from server.engine.run import RunTimeout, run_magick
from shared.protocol import MAX_TAG_CHARS, Operations, TagOptions
from tests import corpus

pytestmark = pytest.mark.skipif(not corpus.engine_available(), reason="ImageMagick not installed")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return corpus.engine()


@pytest.fixture(scope="module")
def abuse_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("abuse")


def _workdir(tmp_path: Path, name: str = "job") -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def test_every_abuse_case_is_refused_with_its_code_quickly(
        engine: Engine, abuse_dir: Path, tmp_path: Path) -> None:
    cases = corpus.abuse(abuse_dir)
    assert len(cases) >= 15
    wrong = []
    for index, case in enumerate(cases):
        started = time.monotonic()
        try:
            out = convert(engine, case.path, Operations(format="png"),
                          _workdir(tmp_path, f"job{index}"), timeout=30)
        except ConversionError as error:
            elapsed = time.monotonic() - started
            # Short, one line, and without ImageMagick's source locations.
            assert error.message and "\n" not in error.message and len(error.message) < 200
            assert "@ error/" not in error.message and "@ warning/" not in error.message
            assert error.permanent, case.name  # answered once, never retried
            if error.code != case.code or elapsed > 5:
                wrong.append((case.name, error.code, error.message, round(elapsed, 2)))
        else:
            wrong.append((case.name, "converted", str(out), 0))
    assert not wrong, wrong


def test_bomb_files_are_tiny(abuse_dir: Path) -> None:
    assert corpus.png_bomb(abuse_dir, "small-bomb.png").stat().st_size < 150_000
    assert corpus.gif_many_frames(abuse_dir, name="small.gif").stat().st_size < 100_000


@pytest.mark.parametrize(("name", "message"), [
    ("bomb", "30000×30000 pixels, over the 16384 limit"),
    ("frames", "more than 500 frames"),
])
def test_limit_messages_are_human(engine: Engine, abuse_dir: Path, tmp_path: Path, name: str,
                                  message: str) -> None:
    path = (corpus.png_bomb(abuse_dir, "m-bomb.png") if name == "bomb"
            else corpus.gif_many_frames(abuse_dir, name="m-frames.gif"))
    with pytest.raises(ConversionError) as caught:
        convert(engine, path, Operations(format="png"), _workdir(tmp_path))
    assert caught.value.code == "too_large"
    assert message in caught.value.message


def test_limits_are_configurable(engine: Engine, tmp_path: Path) -> None:
    photo = corpus.jpeg(tmp_path)  # 240×160
    with pytest.raises(ConversionError) as caught:
        convert(engine, photo, Operations(format="png"), _workdir(tmp_path),
                limits=Limits(max_width=200))
    assert caught.value.code == "too_large"
    assert "over the 200 limit" in caught.value.message
    with pytest.raises(ConversionError) as caught:
        convert(engine, photo, Operations(format="png"), _workdir(tmp_path, "job2"),
                limits=Limits(max_input_bytes=100))
    assert caught.value.code == "too_large"
    frames = corpus.animated_gif(tmp_path, frames=5)
    with pytest.raises(ConversionError) as caught:
        convert(engine, frames, Operations(format="gif"), _workdir(tmp_path, "job3"),
                limits=Limits(max_frames=4))
    assert caught.value.code == "too_large"


def test_policy_refuses_the_bomb_even_without_the_header_check(
        engine: Engine, abuse_dir: Path, tmp_path: Path) -> None:
    """The second layer: ImageMagick itself, under our policy, refuses at once."""
    workdir = _workdir(tmp_path)
    bomb = corpus.png_bomb(workdir, "bomb.png")
    started = time.monotonic()
    done = run_magick([*engine.argv0, "png:bomb.png", "png:out.png"],
                      env=child_environment(engine.policy_dir, workdir, DEFAULT_LIMITS, 30),
                      cwd=workdir, timeout=30)
    assert done.returncode != 0
    assert time.monotonic() - started < 5
    assert not (workdir / "out.png").exists()
    assert bomb.exists()


def test_policy_refuses_too_many_frames_even_without_the_header_check(
        engine: Engine, tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    corpus.gif_many_frames(workdir, frames=2000, name="frames.gif")
    done = run_magick([*engine.argv0, "gif:frames.gif", "gif:out.gif"],
                      env=child_environment(engine.policy_dir, workdir, DEFAULT_LIMITS, 30),
                      cwd=workdir, timeout=30)
    assert done.returncode != 0
    assert not (workdir / "out.gif").exists()


def test_unknown_output_format_is_refused(engine: Engine, tmp_path: Path) -> None:
    photo = corpus.jpeg(tmp_path)
    with pytest.raises(ConversionError) as caught:
        convert(engine, photo, Operations(format="xyz"), _workdir(tmp_path))  # type: ignore[arg-type]
    assert caught.value.code == "unsupported_output"
    # A format the protocol knows but this build cannot write (here: pretend avif is missing).
    without_avif = dataclasses.replace(engine, writable=engine.writable - {"avif"})
    with pytest.raises(ConversionError) as caught:
        convert(without_avif, photo, Operations(format="avif"), _workdir(tmp_path, "job2"))
    assert caught.value.code == "unsupported_output"
    assert "avif" in caught.value.message


# --- the tag text is data ---------------------------------------------------------------------

HOSTILE_TEXTS = [
    "@/etc/passwd",
    "  @/etc/hostname",
    "%[exif:*]",
    "%w x %h",
    "%[fx:1+1] %[pixel:p{0,0}] %[",
    "'; rm -rf ~",
    "$(touch pwned) `touch pwned2`",
    'say "hi" \\n\\\\ back\\slash',
    "&amp; &lt;b&gt; &#65;",
    "100% -version -write x.png",
    "ünïcödé 日本",
]


def _rendered_text(engine: Engine, text: str, tmp_path: Path) -> list[str]:
    """The text ImageMagick actually draws for our argv (its annotate debug log says)."""
    workdir = tmp_path / "render"
    workdir.mkdir(exist_ok=True)
    corpus.png(workdir, "in.png", size=(64, 48))
    argv = build_args(engine, input_format="png", output_format="png",
                      tag=TagOptions(text=text), source="in.png", output="out.png")
    argv[1:1] = ["-debug", "annotate"]
    done = run_magick(argv, env=child_environment(engine.policy_dir, workdir, DEFAULT_LIMITS,
                                                  30), cwd=workdir, timeout=30)
    assert done.returncode == 0, done.stderr[-500:]
    drawn = re.findall(r"Metrics: text: (.*); width: [-\d.]+; height:", done.stderr)
    return [line.replace("\u200b", "") for line in drawn]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_tag_text_is_drawn_literally(engine: Engine, text: str, tmp_path: Path) -> None:
    # ImageMagick may drop leading blanks; everything else must arrive as typed.
    assert [line.lstrip() for line in _rendered_text(engine, text, tmp_path)] == [text.lstrip()]


def test_at_file_is_drawn_not_read(engine: Engine, tmp_path: Path) -> None:
    photo = corpus.jpeg(tmp_path)
    literal = convert(engine, photo, Operations(tag=TagOptions(text="@/etc/passwd")),
                      _workdir(tmp_path, "a"))
    contents = Path("/etc/passwd").read_text().splitlines()[0][:MAX_TAG_CHARS]
    as_file = convert(engine, photo, Operations(tag=TagOptions(text=contents)),
                      _workdir(tmp_path, "b"))
    assert corpus.pixel_difference(literal.path, as_file.path) > 100


def test_shell_syntax_in_tag_text_runs_nothing(engine: Engine, tmp_path: Path) -> None:
    photo = corpus.jpeg(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("still here")
    workdir = _workdir(tmp_path)
    text = f"'; rm -rf {victim} ; touch pwned $(touch pwned2) `touch pwned3`"
    convert(engine, photo, Operations(tag=TagOptions(text=text[:MAX_TAG_CHARS])), workdir)
    assert (victim / "keep.txt").read_text() == "still here"
    for directory in (workdir, tmp_path, Path.cwd()):
        assert not any((directory / name).exists() for name in ("pwned", "pwned2", "pwned3"))


def test_overlong_tag_text_is_refused_cleanly(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most"):
        TagOptions(text="x" * 10_000)  # the protocol refuses it on the way in

    @dataclasses.dataclass(frozen=True)
    class Unchecked:  # what a buggy caller could still hand over
        text: str
        mode: str = "tile"
        point_size: int = 20
        color: str = "black"

    for bad in (Unchecked("ok", point_size=100_000), Unchecked("ok", mode="shell")):
        with pytest.raises(ConversionError) as caught:
            convert(engine, corpus.jpeg(tmp_path), Operations(tag=cast(TagOptions, bad)),
                    tmp_path)
        assert caught.value.code == "bad_request"
    ops = Operations(tag=cast(TagOptions, Unchecked("x" * 10_000)))
    started = time.monotonic()
    with pytest.raises(ConversionError) as caught:
        convert(engine, corpus.jpeg(tmp_path), ops, _workdir(tmp_path))
    assert caught.value.code == "bad_request"
    assert str(MAX_TAG_CHARS) in caught.value.message
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("color", ["bogus", "#12345", "in", "etcpasswd"])
def test_a_colour_that_is_not_one_is_refused(engine: Engine, color: str, tmp_path: Path
                                             ) -> None:
    # ImageMagick would read such a -fill value as the file name of a fill pattern.
    with pytest.raises(ConversionError) as caught:
        convert(engine, corpus.jpeg(tmp_path), Operations(tag=TagOptions(color=color)),
                _workdir(tmp_path))
    assert caught.value.code == "bad_request"


def test_long_tag_text_at_the_largest_point_size_converts(engine: Engine, tmp_path: Path
                                                           ) -> None:
    out = convert(engine, corpus.jpeg(tmp_path),
                  Operations(tag=TagOptions(text="W" * MAX_TAG_CHARS, point_size=200)),
                  _workdir(tmp_path))
    assert (out.width, out.height) == corpus.SIZE


# --- timeout -----------------------------------------------------------------------------------

def _processes_in_group(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(directory):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_timeout_kills_the_whole_process_group(engine: Engine, tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    argv = [*engine.argv0, "-size", "4000x4000", "xc:white", "-blur", "0x40", "null:"]
    started = time.monotonic()
    with pytest.raises(RunTimeout) as caught:
        run_magick(argv, env=child_environment(engine.policy_dir, workdir, DEFAULT_LIMITS, 0.3),
                   cwd=workdir, timeout=0.3)
    assert time.monotonic() - started < 5
    assert _processes_in_group(caught.value.pgid) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_conversion_over_its_time_is_a_timeout(engine: Engine, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    corpus.magick("-size", "4000x3000", "xc:white", f"png:{big}")
    workdir = _workdir(tmp_path)
    started = time.monotonic()
    with pytest.raises(ConversionError) as caught:
        convert(engine, big, Operations(format="png"), workdir, timeout=0.2)
    assert caught.value.code == "timeout"
    assert "0.2 s" in caught.value.message
    assert time.monotonic() - started < 5
    assert _processes_in(workdir.resolve()) == []


# --- the environment, not the input --------------------------------------------------------

def test_missing_files_are_the_workers_fault(engine: Engine, tmp_path: Path) -> None:
    photo = corpus.jpeg(tmp_path)
    with pytest.raises(ConversionError) as caught:
        convert(engine, tmp_path / "gone.jpg", Operations(), _workdir(tmp_path))
    assert caught.value.code == "internal" and not caught.value.permanent
    with pytest.raises(ConversionError) as caught:
        convert(engine, photo, Operations(), tmp_path / "no-such-workdir")
    assert caught.value.code == "internal" and not caught.value.permanent
    gone = dataclasses.replace(engine, argv0=[str(tmp_path / "vanished" / "convert")])
    with pytest.raises(ConversionError) as caught:
        convert(gone, photo, Operations(), _workdir(tmp_path, "job2"))
    assert caught.value.code == "internal" and not caught.value.permanent


def test_a_fifo_is_refused_without_blocking(engine: Engine, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ConversionError) as caught:
        convert(engine, fifo, Operations(), _workdir(tmp_path))
    assert caught.value.code == "unsupported_input"


def test_an_input_named_like_the_output_survives(engine: Engine, tmp_path: Path) -> None:
    workdir = _workdir(tmp_path)
    source = corpus.png(workdir, "engine-output.png")
    out = convert(engine, source, Operations(format="png"), workdir)
    assert source.stat().st_size > 0
    assert out.path != source and out.bytes > 0
