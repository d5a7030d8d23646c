"""``imgserver``: the worker (``run``, the default), ``init`` to provision, ``check``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from shared.cli import ArgumentParser, Dispatch, run_command
from shared.config import add_arguments

PROG = "imgserver"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG,
                            description="The imgpipe worker: queue → ImageMagick → store.")
    commands = parser.add_subparsers(dest="command", metavar="{run,init,check}")
    for name, text in (
        ("run", "process requests until stopped (the default)"),
        ("init", "create the queues and buckets the backend needs (idempotent)"),
        ("check", "diagnose: backend, permissions, ImageMagick, policy, formats"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        add_arguments(sub, "server")
        if name == "run":
            sub.add_argument("--once", action="store_true",
                             help="drain the queue, then exit (for scripts and tests)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    def dispatch() -> Dispatch:
        from server.commands import dispatch

        return dispatch

    return run_command(PROG, build_parser(), sys.argv[1:] if argv is None else argv,
                       "run", dispatch)
