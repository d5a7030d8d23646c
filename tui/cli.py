"""``imgtui``: the dashboard, and ``imgtui submit FILE...``, the one-shot client."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from shared.cli import EXIT_BACKEND, EXIT_INTERRUPTED, EXIT_USAGE, ArgumentParser, fail
from shared.config import add_arguments, load_settings
from shared.errors import BackendError, ConfigError, ImgpipeError

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
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("dashboard", "submit", "-h", "--help"):
        args.insert(0, "dashboard")
    namespace = build_parser().parse_args(args)
    try:
        settings = load_settings(namespace)
        from tui import commands

        return commands.dispatch(namespace.command, settings, namespace)
    except ConfigError as error:
        return fail(PROG, str(error), EXIT_USAGE)
    except BackendError as error:
        return fail(PROG, str(error), EXIT_BACKEND)
    except ImgpipeError as error:
        return fail(PROG, str(error), 1)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
