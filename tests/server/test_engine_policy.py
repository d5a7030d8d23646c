"""Detection of the real binary, the security policy in force, and the child's environment."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path

import pytest

from server.engine import ConversionError, Engine, EngineMissing, Limits, check_policy, convert
from server.engine.detect import POLICY_DIR, detect_engine
from server.engine.limits import DEFAULT_LIMITS, child_environment
from server.engine.policy import FORBIDDEN_CODERS, refused_coders, run_under_policy
from server.engine.run import run_magick
from shared.formats import OUTPUT_FORMATS
from shared.protocol import Operations
from tests import corpus

pytestmark = pytest.mark.skipif(not corpus.engine_available(), reason="ImageMagick not installed")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return corpus.engine()


def _script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_detects_a_real_imagemagick(engine: Engine) -> None:
    assert engine.version.startswith("ImageMagick ")
    assert Path(engine.argv0[0]).is_absolute()
    with Path(engine.argv0[0]).resolve().open("rb") as handle:
        assert handle.read(4) == b"\x7fELF"
    assert engine.policy_dir == POLICY_DIR
    assert (engine.policy_dir / "policy.xml").is_file()
    assert {"png", "jpeg", "gif"} <= engine.writable <= set(OUTPUT_FORMATS)
    assert "black" in engine.colors and "red" in engine.colors


def test_a_stand_in_script_is_never_taken_for_imagemagick(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    # A script that prints what ImageMagick prints, first on PATH under both names.
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("magick", "convert"):
        _script(fake, name, 'echo "Version: ImageMagick 7.1.1-1 Q16 x86_64 (stand-in)"\n')
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    found = detect_engine()
    assert not found.argv0[0].startswith(str(fake))
    with pytest.raises(EngineMissing) as caught:
        detect_engine(search_dirs=[str(fake)])
    message = str(caught.value)
    assert "apt-get install imagemagick" in message and "\n" not in message
    assert str(fake / "convert") in message


def test_a_native_binary_that_is_not_imagemagick_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "convert").symlink_to("/bin/echo")  # native, but says nothing like ImageMagick
    with pytest.raises(EngineMissing):
        detect_engine(search_dirs=[str(fake)])
    with pytest.raises(EngineMissing, match="imagemagick"):
        detect_engine(search_dirs=[str(tmp_path / "nowhere")])


def test_check_policy_proves_our_policy_is_in_force(engine: Engine) -> None:
    ok, detail = check_policy(engine)
    assert ok, detail
    assert "policy.xml" in detail


def test_our_policy_file_is_loaded_before_the_systems(engine: Engine, tmp_path: Path) -> None:
    _, out, _ = run_under_policy(engine, ["-list", "policy"], tmp_path)
    paths = [line.split("Path: ", 1)[1] for line in out.splitlines() if line.startswith("Path: ")]
    assert str(POLICY_DIR / "policy.xml") in paths
    assert not any(".config" in path or ".magick" in path for path in paths)  # no HOME


def test_forbidden_coders_are_refused_when_invoked_directly(engine: Engine, tmp_path: Path
                                                            ) -> None:
    assert refused_coders(engine, tmp_path, FORBIDDEN_CODERS) == set(FORBIDDEN_CODERS)


def test_mvg_is_refused_by_our_policy_and_not_by_chance(engine: Engine, tmp_path: Path) -> None:
    """The same MVG that draws without our policy is refused with it."""
    (tmp_path / "drawing.mvg").write_bytes(b"viewbox 0 0 8 8 fill red rectangle 0,0 7,7\n")
    system = corpus.magick("mvg:drawing.mvg", "png:system.png", cwd=tmp_path, check=False)
    ours_status, _, ours_err = run_under_policy(engine, ["mvg:drawing.mvg", "png:ours.png"],
                                                tmp_path)
    assert ours_status != 0 and "security policy" in ours_err
    assert not (tmp_path / "ours.png").exists()
    if system.returncode == 0:  # the system policy allows MVG: our refusal is our policy's
        assert (tmp_path / "system.png").stat().st_size > 0


def test_at_file_reads_are_refused(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    status, _, err = run_under_policy(engine, ["-size", "8x8", "xc:white", "-annotate", "+0+0",
                                               "@secret.txt", "null:"], tmp_path)
    assert status != 0 and "security policy" in err


def test_a_system_denial_of_a_needed_coder_is_reported(engine: Engine, tmp_path: Path) -> None:
    """When the merged policy refuses what the command itself needs, convert says so (and
    imgserver check would): simulated by a policy folder of ours that also denies MPR."""
    strict = tmp_path / "policy"
    strict.mkdir()
    text = (POLICY_DIR / "policy.xml").read_text()
    (strict / "policy.xml").write_text(text.replace(
        "</policymap>", '  <policy domain="coder" rights="none" pattern="MPR"/>\n</policymap>'))
    broken = dataclasses.replace(engine, policy_dir=strict)
    ok, detail = check_policy(broken)
    assert not ok and "MPR" in detail
    workdir = tmp_path / "job"
    workdir.mkdir()
    with pytest.raises(ConversionError) as caught:
        convert(broken, corpus.jpeg(tmp_path), Operations(), workdir)
    assert caught.value.code == "internal"
    assert not caught.value.permanent  # this worker's fault: another may succeed


def test_the_child_environment_is_minimal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                                          ) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("MAGICK_CONFIGURE_PATH", "/somewhere/else")
    env = child_environment(POLICY_DIR, tmp_path, DEFAULT_LIMITS, 60)
    assert not any(key.startswith("AWS_") for key in env)
    assert "HOME" not in env
    assert env["MAGICK_CONFIGURE_PATH"] == str(POLICY_DIR)
    assert env["MAGICK_TEMPORARY_PATH"] == str(tmp_path)
    assert env["MAGICK_THREAD_LIMIT"] == "1"
    assert env["LANG"] == "C"


def test_the_child_sees_only_that_environment(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    env = child_environment(POLICY_DIR, tmp_path, DEFAULT_LIMITS, 60)
    done = run_magick(["/usr/bin/env"], env=env, cwd=tmp_path, timeout=10)
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert seen == env


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_limit_is_configurable(engine: Engine, threads: int, tmp_path: Path) -> None:
    _, out, _ = run_under_policy(engine, ["-list", "resource"], tmp_path,
                                 limits=Limits(threads=threads))
    assert f"Thread: {threads}" in out


def test_limits_can_lower_but_not_raise_the_policy(engine: Engine, tmp_path: Path) -> None:
    _, out, _ = run_under_policy(engine, ["-list", "resource"], tmp_path,
                                 limits=Limits(max_frames=10_000, threads=64))
    assert re.search(r"List length: 1024B?\n", out), out
    threads = re.search(r"Thread: (\d+)", out)
    assert threads is not None and 1 <= int(threads.group(1)) <= 16


def test_an_explicit_coder_is_not_overridden_by_content(engine: Engine, tmp_path: Path) -> None:
    """Inputs are read as `png:in`: content that ImageMagick would recognise as something
    else (here MVG, which could name mpr:/xc: images the policy allows) is decoded as PNG and
    fails, instead of being interpreted."""
    (tmp_path / "in").write_bytes(b"push graphic-context\nviewbox 0 0 8 8\n"
                                  b"image over 0,0 0,0 'mpr:imgpipe-tile'\npop graphic-context\n")
    status, _, err = run_under_policy(engine, ["png:in", "png:out.png"], tmp_path)
    assert status != 0
    assert "security policy" not in err  # not even attempted as MVG
    assert not (tmp_path / "out.png").exists()
