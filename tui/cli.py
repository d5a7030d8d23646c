"""``imgtui``: the dashboard, and ``imgtui submit FILE...``, the one-shot client."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from shared.cli import ArgumentParser, Dispatch, run_command
from shared.config import add_arguments

PROG = "imgtui"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description="The imgpipe dashboard and client.")
    commands = parser.add_subparsers(dest="command", metavar="{dashboard,submit}")
    dash = commands.add_parser("dashboard", help="the live dashboard (the default)")
    add_arguments(dash, "client")
    submit = commands.add_parser("submit", help="submit files, wait, download, exit")
    add_arguments(submit, "client")
    submit.add_argument("files", nargs="+", metavar="FILE", help="images to convert")
    submit.add_argument("--again", action="store_true",
                        help="convert files even if already converted with these settings")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def dispatch() -> Dispatch:
        from tui.commands import dispatch

        return dispatch

    return run_command(PROG, build_parser(), sys.argv[1:] if argv is None else argv,
                       "dashboard", dispatch)
