"""What both commands do the same way at their edges: argument errors and exit codes.

Exit codes: 0 success, 1 failure of the work (a job failed, a check failed), 2 bad usage or
configuration, 3 backend unreachable or refused, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from shared.config import Settings, load_settings
from shared.errors import BackendError, ConfigError, ImgpipeError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (and exit 2), not usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def fail(prog: str, message: str, code: int) -> int:
    """Print one line to stderr and return the exit code (for ``sys.exit(main())``)."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


Dispatch = Callable[[str, Settings, argparse.Namespace], int]


def run_command(prog: str, parser: argparse.ArgumentParser, argv: Sequence[str],
                default: str, dispatch: Callable[[], Dispatch]) -> int:
    """Parse, load settings, run the subcommand; every error a user can cause is one line.

    ``default`` is the subcommand run when none is named; ``dispatch`` is imported only after
    the arguments are known to be good, so a usage error answers without loading the rest.
    """
    args = list(argv)
    if not args or args[0] not in (*_subcommands(parser), "-h", "--help"):
        args.insert(0, default)
    namespace = parser.parse_args(args)
    try:
        settings = load_settings(namespace)
        return dispatch()(namespace.command, settings, namespace)
    except ConfigError as error:
        return fail(prog, str(error), EXIT_USAGE)
    except BackendError as error:
        return fail(prog, str(error), EXIT_BACKEND)
    except ImgpipeError as error:
        return fail(prog, str(error), EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []
