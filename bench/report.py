"""The figures of one run: a table on the terminal and ``bench/results.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Figure:
    """One line of the table. ``passed`` is None for a figure without a target."""

    section: str
    name: str
    value: float | None
    unit: str
    lab: float | None = None
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""


def check_at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def check_at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def ratio(ours: float | None, lab: float | None) -> float | None:
    if ours is None or lab is None or lab == 0:
        return None
    return ours / lab


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.0f} ms" if abs(value) >= 10 else f"{value:.1f} ms"
    if unit == "bytes":
        return f"{value / 1e6:.2f} MB" if value >= 1e5 else f"{value / 1e3:.1f} kB"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "img/s":
        return f"{value:.2f} img/s"
    if unit == "%":
        return f"{value:+.1f} %"
    return f"{value:g} {unit}".strip()


def table(figures: list[Figure], title: str) -> Table:
    grid = Table(title=title, title_justify="left", show_lines=False)
    for name, justify in (("section", "left"), ("figure", "left"), ("imgpipe", "right"),
                          ("lab", "right"), ("ratio", "right"), ("target", "left"),
                          ("result", "left")):
        grid.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous = None
    for figure in figures:
        if previous is not None and figure.section != previous:
            grid.add_section()
        previous = figure.section
        result = {True: "[green]PASS[/]", False: "[red]MISS[/]", None: ""}[figure.passed]
        grid.add_row(
            figure.section, figure.name + (f" [dim]({figure.note})[/]" if figure.note else ""),
            show(figure.value, figure.unit),
            show(figure.lab, figure.unit) if figure.lab is not None else "",
            f"{figure.ratio:.2f}×" if figure.ratio is not None else "",
            figure.target, result)
    return grid


def print_table(figures: list[Figure], title: str, console: Console | None = None) -> None:
    (console or Console()).print(table(figures, title))


def write_json(path: Path, machine: dict[str, Any], sections: dict[str, Any],
               figures: list[Figure], extra: dict[str, Any]) -> None:
    targets = [f for f in figures if f.passed is not None]
    document = {
        "machine": machine,
        **extra,
        "targets": {"met": sum(1 for f in targets if f.passed), "total": len(targets),
                    "missed": [f"{f.section}: {f.name}" for f in targets if not f.passed]},
        "figures": [asdict(f) for f in figures],
        "sections": sections,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
