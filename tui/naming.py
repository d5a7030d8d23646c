"""Output file names: a sanitised stem, the format's extension, never an overwrite.

Names come from users (and, through results, from the network), so the stem keeps only
characters that are safe in a file name, and the final path must sit directly in the output
folder. A name is reserved with an exclusive create (``O_EXCL``), which fails if the name
exists, so an existing file is never overwritten, even by another process racing for the same
name; the verified download then replaces the empty placeholder in one atomic rename.
"""

from __future__ import annotations

import os
import re
import unicodedata
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


def reserve(folder: Path, name: str, fmt: str) -> Path:
    """Create an empty ``<stem>.<ext>`` (or ``<stem>-1.<ext>``, ...) that did not exist."""
    stem, ext = safe_stem(name), EXTENSIONS[fmt]
    root = folder.resolve()
    for attempt in range(10_000):
        candidate = root / (f"{stem}.{ext}" if attempt == 0 else f"{stem}-{attempt}.{ext}")
        if candidate.parent != root:  # cannot happen after safe_stem; checked all the same
            raise ValueError(f"refusing to write outside {root}: {candidate}")
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free name for {stem}.{ext} in {root}")


def is_placeholder(path: Path | None) -> bool:
    """A name this client reserved and has not filled yet (missing or still empty)."""
    if path is None:
        return False
    try:
        return path.stat().st_size == 0
    except FileNotFoundError:
        return True
