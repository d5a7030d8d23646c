"""The bodies of imgtui's subcommands: the dashboard and ``submit``."""

from __future__ import annotations

import argparse

from shared.config import Settings


def dispatch(command: str, settings: Settings, args: argparse.Namespace) -> int:
    if command == "submit":
        from tui.submit import run_submit

        return run_submit(settings, args.files, again=args.again)
    from tui.app import run_dashboard

    return run_dashboard(settings)
