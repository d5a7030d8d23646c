"""Both commands at their edges: bad usage and bad configuration give one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = {
    name: [sys.executable, "-c", f"import sys; from {package}.cli import main; sys.exit(main())"]
    for name, package in (("imgserver", "server"), ("imgtui", "tui"))
}


def run(command: str, *args: str, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("IMGPIPE_")}
    full_env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    full_env.update(env or {})
    return subprocess.run([*COMMANDS[command], *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=full_env)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("args", "env", "toml", "expected"),
    [
        (["--backend", "nonsense"], {}, None, "invalid backend from --backend"),
        ([], {"IMGPIPE_BACKEND": "nonsense"}, None, "invalid backend from IMGPIPE_BACKEND"),
        ([], {}, 'backend = "nonsense"\n', "invalid backend from imgpipe.toml"),
        ([], {}, "backend = \n", "is not valid TOML"),
        (["--state-dir", ""], {}, None, "invalid state-dir from --state-dir"),
        (["--no-such-flag"], {}, None, "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(
    command: str, args: list[str], env: dict[str, str], toml: str | None, expected: str,
    tmp_path: Path,
) -> None:
    if toml is not None:
        (tmp_path / "imgpipe.toml").write_text(toml)
    done = run(command, *args, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{command}: ")
    assert expected in lines[0]
    assert "Traceback" not in done.stderr
