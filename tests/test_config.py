"""Settings: precedence of sources, and one clear line for every invalid value."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import FIELDS, Settings, load_settings
from shared.errors import ConfigError


def test_defaults_without_any_source(tmp_path: Path) -> None:
    settings = load_settings({}, env={}, cwd=tmp_path)
    assert settings.backend == "local"
    assert settings.state_dir == Path(".imgpipe")
    assert settings.log_max_bytes == 5_000_000
    assert settings.timeout == 60.0
    assert settings.config_file is None


def test_precedence_defaults_toml_env_flags(tmp_path: Path) -> None:
    (tmp_path / "imgpipe.toml").write_text('format = "webp"\ntimeout = 30\nqueue = "from-toml"\n')
    env = {"IMGPIPE_TIMEOUT": "20", "IMGPIPE_QUEUE": "from-env"}
    settings = load_settings({"queue": "from-flag"}, env=env, cwd=tmp_path)
    assert settings.format == "webp"          # toml beats default
    assert settings.timeout == 20.0           # env beats toml
    assert settings.queue == "from-flag"      # flag beats env
    assert settings.config_file == tmp_path / "imgpipe.toml"


def test_explicit_config_file(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('backend = "aws"\nregion = "eu-west-1"\n')
    settings = load_settings({"config": str(other)}, env={}, cwd=tmp_path)
    assert (settings.backend, settings.region) == ("aws", "eu-west-1")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"config": str(tmp_path / "missing.toml")}, env={}, cwd=tmp_path)


def test_format_aliases_are_normalised(tmp_path: Path) -> None:
    assert load_settings({"format": "JPG"}, env={}, cwd=tmp_path).format == "jpeg"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"backend": "nonsense"}, "invalid backend from --backend: must be one of local, aws"),
        ({"timeout": "soon"}, "invalid timeout from --timeout: must be a number of seconds"),
        ({"timeout": "0"}, "invalid timeout from --timeout: must be from 1 to 86400 seconds"),
        ({"concurrency": "2.5"}, "invalid concurrency from --concurrency: must be a whole number"),
        ({"workers": "-1"}, "invalid workers from --workers: must be from 0 to 256"),
        ({"format": "exe"}, "invalid format from --format: must be one of png, jpeg"),
        ({"queue": "no spaces"}, "invalid queue from --queue: must be 1-80 letters"),
        ({"bucket": "Bad_Bucket"}, "invalid bucket from --bucket: must be a valid S3 bucket"),
        ({"region": "moon"}, "invalid region from --region: must be an AWS region"),
        ({"tag": "x" * 201}, "invalid tag from --tag: tag text must be at most 200 characters"),
        ({"tag_color": "red; rm"}, "invalid tag-color from --tag-color: must be a colour"),
        ({"log_max_bytes": "10"}, "invalid log-max-bytes from --log-max-bytes: must be from 1024"),
    ],
)
def test_invalid_values_name_key_source_and_allowed(
    tmp_path: Path, flags: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(flags, env={}, cwd=tmp_path)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_invalid_env_and_toml_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid backend from IMGPIPE_BACKEND"):
        load_settings({}, env={"IMGPIPE_BACKEND": "s3"}, cwd=tmp_path)
    (tmp_path / "imgpipe.toml").write_text("timeout = true\n")
    with pytest.raises(ConfigError, match=r"invalid timeout from imgpipe\.toml"):
        load_settings({}, env={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("backend = ", "is not valid TOML"),
        ('backnd = "aws"', "unknown key 'backnd'"),
        ("timeout = [1]", "must be a number of seconds"),
        ('concurrency = "4"', None),  # strings that parse are accepted from every source
    ],
)
def test_toml_problems(tmp_path: Path, text: str, expected: str | None) -> None:
    (tmp_path / "imgpipe.toml").write_text(text)
    if expected is None:
        assert load_settings({}, env={}, cwd=tmp_path).concurrency == 4
        return
    with pytest.raises(ConfigError, match=expected):
        load_settings({}, env={}, cwd=tmp_path)


def test_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "imgpipe.toml").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings({}, env={}, cwd=tmp_path)


def test_every_field_has_an_env_name_and_flag() -> None:
    for field in FIELDS:
        assert field.env == "IMGPIPE_" + field.name.upper()
        assert field.flag == "--" + field.name.replace("_", "-")


def test_with_values_validates() -> None:
    settings = Settings().with_values(format="webp", timeout="15")
    assert (settings.format, settings.timeout) == ("webp", 15.0)
    with pytest.raises(ConfigError):
        Settings().with_values(format="svg")
