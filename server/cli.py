"""``imgserver``: the worker (``run``, the default), ``init`` to provision, ``check``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from shared.cli import EXIT_BACKEND, EXIT_INTERRUPTED, EXIT_USAGE, ArgumentParser, fail
from shared.config import add_arguments, load_settings
from shared.errors import BackendError, ConfigError, ImgpipeError

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
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("run", "init", "check", "-h", "--help"):
        args.insert(0, "run")
    parser = build_parser()
    namespace = parser.parse_args(args)
    try:
        settings = load_settings(namespace)
        from server import commands

        return commands.dispatch(namespace.command, settings, namespace)
    except ConfigError as error:
        return fail(PROG, str(error), EXIT_USAGE)
    except BackendError as error:
        return fail(PROG, str(error), EXIT_BACKEND)
    except ImgpipeError as error:
        return fail(PROG, str(error), 1)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
