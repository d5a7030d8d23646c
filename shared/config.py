"""One settings object for both commands.

Sources, in increasing priority: built-in defaults, ``imgpipe.toml`` in the working directory
(or ``--config FILE``), ``IMGPIPE_*`` environment variables, command-line flags. Every key is
declared once in ``FIELDS``; that table drives the TOML keys, the environment variable names,
the flags of both commands and the validation. Any invalid value raises ``ConfigError`` naming
the key, where it came from and what is allowed; the commands print it and exit 2.

Credentials are never settings: AWS access goes through boto3's default chain only.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final, Literal

from shared.errors import ConfigError
from shared.formats import OUTPUT_FORMATS, normalise_format
from shared.protocol import COLOR_PATTERN, MAX_TAG_CHARS, QUEUE_NAME_PATTERN, check_tag_text

CONFIG_FILE: Final = "imgpipe.toml"
ENV_PREFIX: Final = "IMGPIPE_"

Scope = Literal["common", "server", "client"]

_BUCKET = re.compile(r"^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# --- value parsers: each takes the raw value (str from env/flags, typed from TOML) -----------


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)} (got {value!r})")
        return value.strip().lower()

    return parse


def _int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"must be a whole number from {low} to {high} (got {value!r})")
        try:
            number = int(value, 10) if isinstance(value, str) else int(value)
            if isinstance(value, float) and value != number:
                raise ValueError
        except (TypeError, ValueError):
            message = f"must be a whole number from {low} to {high} (got {value!r})"
            raise ValueError(message) from None
        if not low <= number <= high:
            raise ValueError(f"must be from {low} to {high} (got {number})")
        return number

    return parse


def _seconds(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a number of seconds (got {value!r})") from None
        if not low <= number <= high:
            raise ValueError(f"must be from {low:g} to {high:g} seconds (got {number:g})")
        return number

    return parse


def _path(value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value) or "\x00" in str(value):
        raise ValueError(f"must be a path (got {value!r})")
    return Path(value).expanduser()


def _pattern(regex: str, what: str) -> Callable[[Any], str]:
    compiled = re.compile(regex)

    def parse(value: Any) -> str:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise ValueError(f"must be {what} (got {value!r})")
        return value

    return parse


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def wrapped(value: Any) -> Any:
        return None if value in ("", None) else parse(value)

    return wrapped


def _format(value: Any) -> str:
    name = normalise_format(value) if isinstance(value, str) else value
    if name not in OUTPUT_FORMATS:
        raise ValueError(f"must be one of {', '.join(OUTPUT_FORMATS)} (got {value!r})")
    return str(name)


def _tag_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text (got {value!r})")
    try:
        return check_tag_text(value)
    except ValueError as error:
        raise ValueError(f"{error} (got {len(value)} characters)") from None


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    parse: Callable[[Any], Any]
    help: str
    scope: Scope = "common"
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


FIELDS: Final[tuple[Field, ...]] = (
    Field("backend", _choice("local", "aws"), "where queues and objects live: local or aws"),
    Field("state_dir", _path, "local state: journal, local queue and store", metavar="DIR"),
    Field("queue", _pattern(QUEUE_NAME_PATTERN, "1-80 letters, digits, - or _"),
          "name of the request queue", metavar="NAME"),
    Field("bucket", _optional(_pattern(_BUCKET.pattern, "a valid S3 bucket name")),
          "data bucket (aws default: imgpipe-data-<account>-<region>)", metavar="NAME"),
    Field("log_bucket", _optional(_pattern(_BUCKET.pattern, "a valid S3 bucket name")),
          "bucket for rotated op logs (aws default: imgpipe-logs-<account>-<region>)",
          metavar="NAME"),
    Field("region", _optional(_pattern(_REGION.pattern, "an AWS region such as eu-west-1")),
          "AWS region (default: boto3's own configuration)", metavar="REGION"),
    Field("visibility_timeout", _int(5, 43200),
          "seconds a received request stays hidden before redelivery", metavar="S"),
    Field("max_receives", _int(1, 1000),
          "deliveries before a request goes to the dead-letter queue", metavar="N"),
    # worker
    Field("concurrency", _int(1, 256), "jobs converted at once (default: CPU count)", "server",
          metavar="N"),
    Field("log_file", _optional(_path), "operations log (default: <state-dir>/oplog.jsonl)",
          "server", metavar="PATH"),
    Field("log_max_bytes", _int(1024, 10**12), "rotate and ship the op log past this size",
          "server", metavar="N"),
    Field("convert_timeout", _seconds(1, 3600), "wall-clock limit for one conversion", "server",
          metavar="S"),
    # client
    Field("input", _path, "folder watched for new images", "client", metavar="DIR"),
    Field("output", _path, "folder finished images are written to", "client", metavar="DIR"),
    Field("format", _format, f"output format: {', '.join(OUTPUT_FORMATS)}", "client",
          metavar="FMT"),
    Field("tag", _tag_text, f"text tagged on each image, at most {MAX_TAG_CHARS} characters"
          " (empty: no tag)", "client", metavar="TEXT"),
    Field("tag_mode", _choice("tile", "corner"), "tile the tag over the image or put it in a"
          " corner", "client"),
    Field("tag_size", _int(6, 200), "tag point size", "client", metavar="PT"),
    Field("tag_color", _pattern(COLOR_PATTERN, "a colour name or #hex"), "tag colour", "client",
          metavar="COLOUR"),
    Field("timeout", _seconds(1, 86400), "seconds before a request times out", "client",
          metavar="S"),
    Field("workers", _int(0, 256), "local backend: embedded worker concurrency (0: none;"
          " default: CPU count)", "client", metavar="N"),
)
FIELD_BY_NAME: Final = {field.name: field for field in FIELDS}


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Paths are as given (relative to the working directory)."""

    backend: str = "local"
    state_dir: Path = Path(".imgpipe")
    queue: str = "imgpipe-requests"
    bucket: str | None = None
    log_bucket: str | None = None
    region: str | None = None
    visibility_timeout: int = 60
    max_receives: int = 3
    concurrency: int = _cpu_count()
    log_file: Path | None = None
    log_max_bytes: int = 5_000_000
    convert_timeout: float = 60.0
    input: Path = Path("input")
    output: Path = Path("output")
    format: str = "png"
    tag: str = "processed by imgpipe"
    tag_mode: str = "tile"
    tag_size: int = 20
    tag_color: str = "black"
    timeout: float = 60.0
    workers: int = _cpu_count()
    #: Where the TOML file came from, if any (for messages and for saving settings).
    config_file: Path | None = None

    def with_values(self, **values: Any) -> Settings:
        """A copy with some keys changed, validated like any other source."""
        parsed = {name: _parse(FIELD_BY_NAME[name], value, "settings")
                  for name, value in values.items()}
        return replace(self, **parsed)

    @property
    def op_log_path(self) -> Path:
        return self.log_file or self.state_dir / "oplog.jsonl"


assert {f.name for f in FIELDS} | {"config_file"} == {f.name for f in fields(Settings)}


def _parse(field: Field, value: Any, source: str) -> Any:
    try:
        return field.parse(value)
    except ValueError as error:
        key = field.name.replace("_", "-")
        raise ConfigError(f"invalid {key} from {source}: {error}") from None


def add_arguments(parser: argparse.ArgumentParser, scope: Scope) -> None:
    """Add ``--config`` and a flag for each common key and each key of ``scope``.

    Flags are plain strings here: validation happens in ``load_settings`` so that one bad value
    gives one clear line, the same from a flag, the environment or the TOML file.
    """
    group = parser.add_argument_group("configuration (also imgpipe.toml and IMGPIPE_* variables)")
    group.add_argument("--config", metavar="FILE", help=f"settings file (default: ./{CONFIG_FILE})")
    for field in FIELDS:
        if field.scope in ("common", scope):
            group.add_argument(field.flag, dest=field.name, metavar=field.metavar,
                               default=None, help=field.help)


def _read_toml(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(FIELD_BY_NAME))
    if unknown:
        known = ", ".join(f.name for f in FIELDS)
        raise ConfigError(f"config file {path}: unknown key {unknown[0]!r} (known: {known})")
    return data


def load_settings(
    flags: Mapping[str, Any] | argparse.Namespace | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings from defaults, TOML, environment and flags (in that order)."""
    given = dict(vars(flags) if isinstance(flags, argparse.Namespace) else flags or {})
    environ = os.environ if env is None else env
    base = cwd or Path.cwd()
    explicit = given.get("config") or environ.get(ENV_PREFIX + "CONFIG")
    config_path = Path(explicit).expanduser() if explicit else base / CONFIG_FILE
    if not config_path.is_absolute():
        config_path = base / config_path

    values: dict[str, Any] = {}
    toml = _read_toml(config_path, bool(explicit))
    for name, raw in toml.items():
        values[name] = _parse(FIELD_BY_NAME[name], raw, str(config_path.name))
    for field in FIELDS:
        if field.env in environ:
            values[field.name] = _parse(field, environ[field.env], field.env)
    for field in FIELDS:
        if given.get(field.name) is not None:
            values[field.name] = _parse(field, given[field.name], field.flag)
    found = config_path if toml or config_path.exists() else None
    return Settings(**values, config_file=found)


def argv_for(settings: Settings, names: Sequence[str]) -> list[str]:
    """Flags that reproduce ``names`` of ``settings`` on another command's command line."""
    argv: list[str] = []
    for name in names:
        value = getattr(settings, name)
        if value is not None:
            argv += [FIELD_BY_NAME[name].flag, str(value)]
    return argv
