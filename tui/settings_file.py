"""Saving the dashboard's settings to imgpipe.toml without losing the user's comments.

tomlkit edits the document in place: comments, key order and formatting of everything else
stay as the user wrote them; only the saved keys change (or are appended). The file is written
to a temporary file beside it and renamed over it, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import tomlkit

from shared.config import CONFIG_FILE, Settings

#: The keys the settings screen edits, in the order they are appended to a new file.
SAVED_KEYS: Final = ("format", "tag", "tag_mode", "tag_size", "tag_color", "timeout")


def config_path(settings: Settings, cwd: Path | None = None) -> Path:
    """Where settings are saved: the file they came from, else ./imgpipe.toml."""
    return settings.config_file or (cwd or Path.cwd()) / CONFIG_FILE


def _toml_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def saved_values(settings: Settings) -> dict[str, Any]:
    return {key: _toml_value(getattr(settings, key)) for key in SAVED_KEYS}


def save_settings(path: Path, values: Mapping[str, Any]) -> None:
    """Set ``values`` in the TOML file at ``path`` (created if missing), keeping the rest.

    Raises OSError when the file cannot be read or written, ValueError when it is not TOML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from None
    if not text:
        document.add(tomlkit.comment("imgpipe settings (the dashboard's s key rewrites the "
                                     "keys it edits and keeps everything else)"))
    for key, value in values.items():
        document[key] = _toml_value(value)
    data = tomlkit.dumps(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        else:
            os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
