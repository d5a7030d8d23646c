"""Find ImageMagick once at worker start: the real binary, its version, font and formats.

The binary is found by content, not by name: a ``convert`` early on PATH may be a script that
stands in for ImageMagick (this project's own machines have one in /usr/local/bin). Only a
native executable whose ``-version`` begins with ``Version: ImageMagick`` is accepted.
ImageMagick 7's ``magick`` is preferred; ImageMagick 6's ``convert`` is the fallback.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.engine.errors import EngineMissing
from server.engine.limits import DEFAULT_LIMITS, child_environment
from server.engine.run import RunTimeout, run_magick
from shared.formats import OUTPUT_FORMATS

#: The folder put in MAGICK_CONFIGURE_PATH; it holds our policy.xml and nothing else.
POLICY_DIR = Path(__file__).resolve().parent / "config"

_SEARCH_DIRS = ("/usr/local/bin", "/usr/bin", "/bin", "/opt/homebrew/bin", "/opt/local/bin")
#: Native executables: ELF, and Mach-O in its four byte orders and the universal wrapper.
_NATIVE_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf",
                 b"\xfe\xed\xfa\xce", b"\xca\xfe\xba\xbe")
_VERSION = re.compile(r"^Version: (ImageMagick (\d+)\.\S+ Q\d+\S*)")
#: Fonts to tag with, best first. Helvetica is what ImageMagick itself picks when no font is
#: named (the lab's command named none), so it reproduces the lab's look exactly.
_FONT_PREFERENCE = ("Helvetica", "DejaVu-Sans", "Liberation-Sans", "Arial", "FreeSans")
_INSTALL_HINT = "install the imagemagick package (apt-get install imagemagick)"


@dataclass(frozen=True)
class Engine:
    """The ImageMagick found on this machine and what it can do; detected once per worker."""

    argv0: list[str] = field(hash=False)  # a list (the worker's API); kept out of the hash
    version: str
    writable: frozenset[str]
    policy_dir: Path
    #: The font the tag is drawn with (a name from ``-list font``), or None for the default.
    font: str | None = None
    #: That font's glyph file. ``-font`` is given the file, not the name: a name makes every
    #: run load ImageMagick's font list and fontconfig first (9 ms of a 1 MP conversion's
    #: ~100, half the time of a small image's), a file is opened directly. Same glyphs.
    font_file: str | None = None
    #: Colour names this build knows (lower case); a tag colour is checked against them.
    colors: frozenset[str] = field(default=frozenset(), repr=False)
    major: int = 6
    #: Whether the ``tile:`` coder works under the policy in force: it builds the tag layer
    #: by copying rows (fast); without it the layer is filled pixel by pixel (``-draw``).
    tile_coder: bool = False


def detect_engine(*, search_dirs: Sequence[str] | None = None) -> Engine:
    """Find the real ImageMagick binary; raises ``EngineMissing`` naming the package.

    ``search_dirs`` replaces PATH and the usual places (for tests and odd installs).
    """
    candidates, rejected = _candidates(search_dirs)
    for path in candidates:
        version = _version_of(path)
        if version is None:
            rejected.append(str(path))
            continue
        text, major = version
        argv0 = [str(path)]
        with tempfile.TemporaryDirectory(prefix="imgpipe-detect-") as scratch:
            workdir = Path(scratch)
            writable = _writable_formats(argv0, workdir)
            font, font_file = _pick_font(argv0, workdir)
            colors = _color_names(argv0, workdir)
            tile_coder = _tile_coder_works(argv0, workdir)
        return Engine(argv0=argv0, version=text, writable=writable, policy_dir=POLICY_DIR,
                      font=font, font_file=font_file, colors=colors, major=major,
                      tile_coder=tile_coder)
    detail = f" (not ImageMagick: {', '.join(rejected)})" if rejected else ""
    raise EngineMissing(f"ImageMagick not found{detail}: {_INSTALL_HINT}")


def _candidates(search_dirs: Sequence[str] | None = None) -> tuple[list[Path], list[str]]:
    """Native executables named magick, then convert, on PATH and in the usual places
    (deduplicated), and the scripts of those names that were passed over."""
    if search_dirs is not None:
        dirs = list(search_dirs)
    else:
        dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
        dirs += [d for d in _SEARCH_DIRS if d not in dirs]
    found: list[Path] = []
    rejected: list[str] = []
    seen: set[Path] = set()
    for name in ("magick", "convert"):
        for directory in dirs:
            path = Path(directory) / name
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if real in seen or not os.access(real, os.X_OK):
                continue
            if not _is_native(real):
                rejected.append(str(path))
                continue
            seen.add(real)
            found.append(path.absolute())
    return found, rejected


def _is_native(path: Path) -> bool:
    # A script (a stand-in, a wrapper) starts with "#!"; only native binaries are ImageMagick.
    try:
        with path.open("rb") as handle:
            return handle.read(4) in _NATIVE_MAGIC
    except OSError:
        return False


def _probe(argv: list[str], workdir: Path, timeout: float = 20.0) -> tuple[int, str, str]:
    env = child_environment(POLICY_DIR, workdir, DEFAULT_LIMITS, timeout)
    try:
        done = run_magick(argv, env=env, cwd=workdir, timeout=timeout)
    except (OSError, RunTimeout):
        return -1, "", ""
    return done.returncode, done.stdout, done.stderr


def _version_of(path: Path) -> tuple[str, int] | None:
    with tempfile.TemporaryDirectory(prefix="imgpipe-detect-") as scratch:
        code, out, _ = _probe([str(path), "-version"], Path(scratch))
    match = _VERSION.match(out)
    if code != 0 or match is None:
        return None
    return match.group(1), int(match.group(2))


def _writable_formats(argv0: list[str], workdir: Path) -> frozenset[str]:
    """Formats this build writes under our policy, found by writing a tiny image in each.

    A failed -write leaves an empty file and the run goes on, so one process tests them all;
    this catches what ``-list format`` does not: a policy that denies a coder, or an AVIF
    coder whose libheif has no AV1 encoder.
    """
    args = [*argv0, "-size", "16x16", "xc:#3366cc"]
    for fmt in OUTPUT_FORMATS:
        args += ["-write", f"{fmt}:probe.{fmt}"]
    _probe([*args, "null:"], workdir)
    return frozenset(fmt for fmt in OUTPUT_FORMATS
                     if output_signature_ok(workdir / f"probe.{fmt}", fmt))


def _tile_coder_works(argv0: list[str], workdir: Path) -> bool:
    """Whether a transparent tile can be tiled with ``tile:`` (a stricter system policy may
    deny that coder; the engine then falls back to drawing the layer)."""
    code, out, _ = _probe([*argv0, "-size", "2x1", "xc:none", "-write", "mpr:probe", "+delete",
                           "-compose", "copy", "-size", "5x3", "tile:mpr:probe",
                           "-print", "%w %h %A", "null:"], workdir)
    return code == 0 and out.split()[:2] == ["5", "3"] and out.split()[2:3] != ["False"]


def output_signature_ok(path: Path, fmt: str) -> bool:
    """Whether ``path`` starts like a file of output format ``fmt``."""
    try:
        with path.open("rb") as handle:
            head = handle.read(32)
    except OSError:
        return False
    if fmt == "avif":
        return head[4:8] == b"ftyp" and b"avi" in head[8:32]
    from shared.formats import sniff

    return sniff(head) == fmt


def _pick_font(argv0: list[str], workdir: Path) -> tuple[str | None, str | None]:
    """The preferred usable font: its name and its glyph file."""
    code, out, _ = _probe([*argv0, "-list", "font"], workdir)
    if code != 0:
        return None, None
    fonts: dict[str, str] = {}
    name: str | None = None
    for line in out.splitlines():
        stripped = line.strip()
        if stripped.startswith("Font: "):
            name = stripped[len("Font: "):]
        elif stripped.startswith("glyphs: ") and name is not None:
            fonts[name] = stripped[len("glyphs: "):]
    usable = [font for font, glyphs in fonts.items() if Path(glyphs).is_file()]
    for font in (*(f for f in _FONT_PREFERENCE if f in usable), *usable):
        return font, (fonts[font] if _plain_path(fonts[font]) else None)
    return None, None


def _plain_path(path: str) -> bool:
    """An absolute path ImageMagick takes as a file name and nothing else."""
    return path.startswith("/") and re.fullmatch(r"[A-Za-z0-9/._+-]+", path) is not None


def _color_names(argv0: list[str], workdir: Path) -> frozenset[str]:
    code, out, _ = _probe([*argv0, "-list", "color"], workdir)
    if code != 0:
        return frozenset()
    names = set()
    for line in out.splitlines():
        match = re.match(r"^([A-Za-z][A-Za-z0-9]*)\s+(?:s?rgba?|gray|cmyk)", line)
        if match:
            names.add(match.group(1).lower())
    return frozenset(names)
