"""Output file names: a sanitised stem, the format's extension, never an overwrite.

Names come from users (and, through results, from the network), so the stem keeps only
characters that are safe in a file name, and the final path must sit directly in the output
folder. A name is reserved with an exclusive create (``O_EXCL``), which fails if the name
exists, so an existing file is never overwritten, even by another process racing for the same
name; the verified download then replaces the placeholder in one atomic rename.

A placeholder holds a token naming its job, so a client killed between reserving a name and
recording it finds its own placeholder again on restart instead of taking a second name.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from shared.formats import EXTENSIONS

MAX_STEM: Final = 120
_UNSAFE = re.compile(r"[^\w .,()+=@#&'\[\]-]", re.UNICODE)


def safe_stem(name: str) -> str:
    """A file stem from a user's file name: no separators, no controls, no leading dots."""
    stem = Path(name.replace("\\", "/").rsplit("/", 1)[-1]).stem
    stem = unicodedata.normalize("NFC", stem)
    stem = "".join(c if unicodedata.category(c)[0] != "C" else "_" for c in stem)
    stem = _UNSAFE.sub("_", stem).strip(" .-")
    return stem[:MAX_STEM] or "image"


def _candidates(folder: Path, name: str, fmt: str) -> Iterator[Path]:
    stem, ext = safe_stem(name), EXTENSIONS[fmt]
    root = folder.resolve()
    for attempt in range(10_000):
        candidate = root / (f"{stem}.{ext}" if attempt == 0 else f"{stem}-{attempt}.{ext}")
        if candidate.parent != root:  # cannot happen after safe_stem; checked all the same
            raise ValueError(f"refusing to write outside {root}: {candidate}")
        yield candidate
    raise FileExistsError(f"no free name for {stem}.{ext} in {root}")


def placeholder_token(job_id: str) -> bytes:
    return f"imgpipe placeholder {job_id}\n".encode()


def reserve(folder: Path, name: str, fmt: str, token: bytes) -> Path:
    """Create ``<stem>.<ext>`` (or ``<stem>-1.<ext>``, ...), which did not exist, holding
    ``token`` until the real file replaces it."""
    for candidate in _candidates(folder, name, fmt):
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        try:
            os.write(fd, token)
        finally:
            os.close(fd)
        return candidate
    raise AssertionError("unreachable")  # pragma: no cover - _candidates raises first


def holds_token(path: Path | None, token: bytes) -> bool:
    """Is ``path`` a placeholder this job reserved (and has not filled yet)?"""
    if path is None:
        return False
    try:
        if path.stat().st_size != len(token):
            return False
        return path.read_bytes() == token
    except OSError:
        return False


def find_reserved(folder: Path, name: str, fmt: str, token: bytes) -> Path | None:
    """The placeholder this job reserved before a crash, if any, among the names it tries."""
    for candidate in _candidates(folder, name, fmt):
        if not candidate.exists():
            return None
        if holds_token(candidate, token):
            return candidate
    return None
