"""The job table: one row per job, fixed column widths, updated cell by cell.

It never rebuilds on a change: ``upsert`` adds a row or rewrites only the cells whose text or
style changed (``update_cell`` without ``update_width``, which would be quadratic). Rows out of
view are not rewritten at all: they are marked stale and brought up to date when they scroll
into view, so a burst that changes every one of 2,000 jobs costs ~50 cell updates, not 4,000.
``refresh_countdowns`` likewise touches only the "left" cells in view whose text or colour
moved. A rebuild happens only when the filter changes or finished rows are cleared.

Adding a row is the expensive part (DataTable measures every new cell once), so new rows are
queued and added at most ``ADD_BATCH`` per ``add_pending`` call (the app calls it on each
flush): loading 2,000 jobs from the journal fills the table over about a second while keys
keep being answered, instead of freezing the screen for half a second.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from typing import Final

from rich.text import Text
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist, RowKey

from tui.jobs import Job, State
from tui.widgets.cells import (
    Cell,
    countdown_cell,
    ellipsize,
    formats_text,
    human_size,
    progress_cell,
    seconds_text,
    state_cell,
)

#: (key, label, width): fixed widths keep every update O(1) and the layout still.
COLUMNS: Final = (
    ("file", "File", 28),
    ("size", "Size", 8),
    ("formats", "In → Out", 12),
    ("state", "State", 11),
    ("progress", "Progress", 11),
    ("left", "Left", 6),
    ("latency", "Latency", 7),
    ("output", "Output / reason", 28),
)
WIDTHS: Final = {key: width for key, _, width in COLUMNS}
#: Rows added to the DataTable per ``add_pending`` call.
ADD_BATCH: Final = 200
LEFT_INDEX: Final = [key for key, _, _ in COLUMNS].index("left")


def job_cells(job: Job, now: float) -> list[Cell]:
    """The cells of ``job``'s row at time ``now``, in column order."""
    if job.state is State.DONE and job.output_path is not None:
        last: Cell = (ellipsize(job.output_path.name, WIDTHS["output"]), "green")
    elif job.reason:
        # Every failure says why in its own row, not only in the details pane.
        style = "dim" if job.state in (State.WAITING, State.CANCELLED) else "red"
        width = WIDTHS["output"]
        reason = job.reason if len(job.reason) <= width else job.reason[: width - 1] + "…"
        last = (reason, style)
    else:
        last = ("", "")
    return [
        (ellipsize(job.name, WIDTHS["file"]), ""),
        (human_size(job.size), ""),
        (ellipsize(formats_text(job), WIDTHS["formats"]), ""),
        state_cell(job),
        progress_cell(job),
        countdown_cell(job, now),
        (seconds_text(job.latency) if job.state is State.DONE else "", ""),
        last,
    ]


def _text(cell: Cell, justify: str = "left") -> Text:
    text, style = cell
    return Text(text, style=style, no_wrap=True, overflow="ellipsis",
                justify=justify)  # type: ignore[arg-type]


_JUSTIFY: Final = {"size": "right", "left": "right", "latency": "right"}


class JobTable(DataTable[Text]):
    """The job list. Row keys are the client's stable row numbers."""

    class Scrolled(Message):
        """Other rows came into view: their cells may be stale."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._cells: dict[int, list[Cell]] = {}
        #: Rows out of view whose cells lag their job (rewritten once they are in view).
        self._stale: dict[int, Job] = {}
        #: Rows to add, in row order (``add_pending`` adds them in batches).
        self._pending: dict[int, Job] = {}
        self._restore_cursor: int | None = None
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # DataTable measures every cell of each new row to size auto-width columns. Here every
        # column has a fixed width and rows are one line without labels, so that measuring
        # (two thirds of the cost of adding a row) changes nothing: skip it, keep the rest.
        if any(column.auto_width for column in self.columns.values()):
            super()._update_dimensions(new_rows)
        else:
            super()._update_dimensions(())

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if int(old_value) != int(new_value):
            self.post_message(self.Scrolled())

    # --- queries ---------------------------------------------------------------------------

    def selected_row(self) -> int | None:
        """The job row under the cursor, if any."""
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except (RowDoesNotExist, LookupError):
            return None
        return None if key.value is None else int(key.value)

    def shows(self, row: int) -> bool:
        """Is ``row`` in the table (or queued to be added)?"""
        return row in self._cells or row in self._pending

    @property
    def shown_count(self) -> int:
        return len(self._cells) + len(self._pending)

    @property
    def adding(self) -> bool:
        return bool(self._pending)

    def cell_text(self, row: int, column: str) -> Cell:
        """The text and style of one cell (as shown when the row is in view)."""
        return self._cells[row][[key for key, _, _ in COLUMNS].index(column)]

    def visible_rows(self) -> list[int]:
        """The job rows in the viewport now (every row is one line high)."""
        first = max(0, int(self.scroll_y))
        height = self.scrollable_content_region.height
        rows: list[int] = []
        for index in range(first, min(self.row_count, first + height + 1)):
            try:
                key = self.coordinate_to_cell_key(Coordinate(index, 0)).row_key
            except LookupError:
                break
            if key.value is not None:
                rows.append(int(key.value))
        return rows

    # --- changes ---------------------------------------------------------------------------

    def upsert(self, job: Job, now: float, visible: Container[int] | None = None) -> None:
        """Show ``job``: queue its row, or update the cells that changed if it is in view
        (``visible``: the rows in view; None means "assume it is")."""
        old = self._cells.get(job.row)
        if old is None:
            self._pending[job.row] = job
            return
        if visible is not None and job.row not in visible:
            self._stale[job.row] = job
            return
        self._stale.pop(job.row, None)
        cells = job_cells(job, now)
        key = str(job.row)
        for index, (column, _, _) in enumerate(COLUMNS):
            if cells[index] != old[index]:
                self.update_cell(key, column, _text(cells[index], _JUSTIFY.get(column, "left")))
        self._cells[job.row] = cells

    def add_pending(self, now: float, limit: int = ADD_BATCH) -> int:
        """Add up to ``limit`` queued rows; returns how many were added."""
        added = 0
        while self._pending and added < limit:
            row = next(iter(self._pending))
            job = self._pending.pop(row)
            cells = job_cells(job, now)
            self._cells[row] = cells
            self.add_row(*self._texts(cells), key=str(row))
            added += 1
        if self._restore_cursor is not None and self._restore_cursor in self._cells:
            self.move_cursor(row=self.get_row_index(str(self._restore_cursor)), animate=False)
            self._restore_cursor = None
        return added

    def drop(self, row: int) -> None:
        """Remove one row (for many, rebuild instead: each removal is linear)."""
        self._stale.pop(row, None)
        self._pending.pop(row, None)
        if self._cells.pop(row, None) is not None:
            self.remove_row(str(row))

    def refresh_countdowns(self, live: Mapping[int, Job], now: float) -> int:
        """Recompute the "left" cells of the live jobs in view; returns how many changed.

        Only the viewport (~50 rows) is touched, whatever the number of rows: a row scrolled
        into view is brought up to date at once (the app handles ``Scrolled``) or by the
        next tick.
        """
        changed = 0
        for row in self.visible_rows():
            stale = self._stale.get(row)
            if stale is not None:
                self.upsert(stale, now)
            job = live.get(row)
            cells = self._cells.get(row)
            if job is None or cells is None:
                continue
            cell = countdown_cell(job, now)
            if cell != cells[LEFT_INDEX]:
                cells[LEFT_INDEX] = cell
                self.update_cell(str(row), "left", _text(cell, "right"))
                changed += 1
        return changed

    def rebuild(self, jobs: Iterable[Job], now: float,
                keep: Callable[[Job], bool] = lambda job: True) -> None:
        """Show exactly the jobs that ``keep`` accepts, in row order; keeps the cursor's job.

        The first batch is added at once, the rest by the following ``add_pending`` calls.
        """
        selected = self.selected_row() if self._restore_cursor is None else self._restore_cursor
        self.clear()
        self._cells.clear()
        self._stale.clear()
        self._pending = {job.row: job for job in sorted(jobs, key=lambda job: job.row)
                         if keep(job)}
        self._restore_cursor = selected
        self.add_pending(now)

    @staticmethod
    def _texts(cells: list[Cell]) -> list[Text]:
        return [_text(cell, _JUSTIFY.get(key, "left"))
                for cell, (key, _, _) in zip(cells, COLUMNS, strict=True)]
