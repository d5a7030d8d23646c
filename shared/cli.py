"""What both commands do the same way at their edges: argument errors and exit codes.

Exit codes: 0 success, 1 failure of the work (a job failed, a check failed), 2 bad usage or
configuration, 3 backend unreachable or refused, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

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
