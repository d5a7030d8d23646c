"""The imgtui dashboard: a live table of jobs over the client engine.

Wiring (attributes down, messages up):
- The client, the folder intake and the embedded worker run on their own threads. Their
  callbacks only ``post_message`` (thread-safe); blocking calls the UI makes on them (retry,
  cancel, clear, paste checks, saving settings, previews, start and stop) run in
  ``@work(thread=True)`` workers that post a message when done.
- Job changes are coalesced per row where they happen: the client's ``on_change`` (on its
  threads) only stores the job in ``_dirty`` under a lock, so a burst of thousands of changes
  costs no message-queue backlog in front of the user's keys. One timer takes the batch at
  most ``FLUSH_INTERVAL`` apart and updates single cells. A second timer, the only
  one for countdowns, recomputes every "left" cell from the stored deadlines and rewrites just
  the cells whose text or colour changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Final

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from shared.config import Settings
from shared.errors import ImgpipeError
from tui.intake import FolderIntake
from tui.jobs import FINAL, Job, State
from tui.messages import (
    FileSkipped,
    LogLine,
    Notice,
    PreviewReady,
    RowsCleared,
    ServicesFailed,
    ServicesStarted,
    ServicesStopped,
    SettingsSaved,
    StatusChanged,
    WorkerReport,
)
from tui.screens.help import HelpScreen
from tui.screens.path_prompt import PathPrompt, parse_paths, split_existing
from tui.screens.quit_confirm import QuitScreen
from tui.screens.settings import SettingsScreen
from tui.settings_file import config_path, save_settings, saved_values
from tui.widgets.cells import FAILURES
from tui.widgets.details import DetailsPane
from tui.widgets.header import StatusHeader
from tui.widgets.job_table import JobTable
from tui.widgets.log_pane import LogForwarder, LogPane
from tui.widgets.preview import load_thumbnail
from tui.widgets.summary import SummaryLine, summarize

#: Coalesced job changes reach the table at most this often (seconds).
FLUSH_INTERVAL: Final = 0.1
#: The one countdown timer (and the summary line) ticks this often.
TICK_INTERVAL: Final = 0.5
#: More failures than this in one flush become one summary notification.
MAX_TOASTS_PER_FLUSH: Final = 3
#: More rows than this leaving the filter at once: rebuild instead of removing one by one.
MAX_SINGLE_DROPS: Final = 20
PREVIEW_CACHE: Final = 32
SERVICE_START_TIMEOUT: Final = 30.0
WORKER_READY_TIMEOUT: Final = 60.0
#: How long the client waits for the embedded worker to set up the queues at start-up.
WORKER_FIRST_TIMEOUT: Final = 15.0

ClientFactory = Callable[..., Any]
WorkerFactory = Callable[[Settings], Any]


def _default_client(settings: Settings, **callbacks: Any) -> Any:
    from tui.client import Client

    return Client(settings, **callbacks)


def _default_worker(settings: Settings) -> Any:
    from tui.embedded import EmbeddedWorker

    return EmbeddedWorker(settings)


def backend_label(settings: Settings) -> str:
    if settings.backend == "aws":
        return f"aws {settings.region or '(default region)'} · queue {settings.queue}"
    return f"local · queue {settings.queue}"


def settings_label(settings: Settings) -> str:
    tag = f"“{settings.tag}”" if settings.tag else "no tag"
    return f"new: {settings.format}, {tag}, {settings.timeout:g} s"


def matches(job: Job, query: str) -> bool:
    """Every word of ``query`` is in the file name or starts the state's name."""
    name, state = job.name.lower(), job.state.label
    for word in query.lower().split():
        if word not in name and not state.startswith(word) and \
                not state.replace(" ", "_").startswith(word):
            return False
    return True


class DashboardApp(App[int]):
    """The full-screen dashboard. ``clock`` is the time source for every displayed time."""

    CSS_PATH = "app.tcss"
    TITLE = "imgpipe"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add"),
        Binding("r", "retry", "Retry"),
        Binding("x", "cancel_job", "Cancel"),
        Binding("c", "clear", "Clear"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "settings", "Settings"),
        Binding("l", "toggle_log", "Log"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        client_factory: ClientFactory = _default_client,
        worker_factory: WorkerFactory = _default_worker,
        intake: bool = True,
        clock: Callable[[], float] = time.time,
        cwd: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.cwd = cwd
        self.client: Any | None = None
        self.jobs: dict[int, Job] = {}
        self._client_factory = client_factory
        self._worker_factory = worker_factory
        self._intake_enabled = intake
        # Written by the client's threads, taken by the flush timer: guarded by _dirty_lock.
        self._dirty: dict[int, Job] = {}
        self._failed: list[tuple[Job, State, str]] = []
        self._dirty_lock = threading.Lock()
        self._announced: set[tuple[str, State]] = set()
        self._seen: dict[int, State] = {}
        self._live: dict[int, Job] = {}
        self._cleared: set[int] = set()
        self._filter = ""
        self._selected: int | None = None
        self._previews: dict[tuple[int, str], tuple[Any | None, str]] = {}
        self._started_at = clock()
        self._quitting = False
        self._start_failure: str | None = None
        # Owned by the services thread until _services_ready is set.
        self._service_client: Any | None = None
        self._service_worker: Any | None = None
        self._service_intake: FolderIntake | None = None
        self._startup_files: set[Path] = set()
        self._services_ready = threading.Event()
        self._services_closed = threading.Event()
        self._close_lock = threading.Lock()
        self._log_handler: LogForwarder | None = None
        self._saved_log_levels: dict[str, int] = {}
        self._saved_excepthook: Any = None

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: handlers run while a modal screen is on top, where
        # ``query_one`` would search the modal instead of the main screen.
        self.header = StatusHeader(id="header")
        self.summary = SummaryLine(id="summary")
        self.filter_box = Input(placeholder="filter: words in the file name, or a state "
                                "(Esc clears)", id="filter")
        self.table = JobTable(id="jobs")
        self.details = DetailsPane(id="details")
        self.log_pane = LogPane(id="log", clock=self.clock)
        yield self.header
        yield self.summary
        yield self.filter_box
        yield self.table
        yield self.details
        yield self.log_pane
        yield Footer()

    def shown_state(self, row: int) -> State | None:
        """The state of ``row`` as last flushed to the screen (the job object runs ahead)."""
        return self._seen.get(row)

    def on_mount(self) -> None:
        self.header.backend = backend_label(self.settings)
        self.header.new_jobs = settings_label(self.settings)
        self.table.focus()
        self._install_logging()
        self.set_interval(FLUSH_INTERVAL, self._flush_changes, name="flush")
        self.set_interval(TICK_INTERVAL, self._tick, name="countdowns")
        self._tick()
        self._start_services()

    def on_unmount(self) -> None:
        self._remove_logging()

    # --- services (client, worker, intake): started and stopped on threads ------------------

    @work(thread=True, exit_on_error=False, group="services")
    def _start_services(self) -> None:
        settings = self.settings
        try:
            worker = self._worker_factory(settings)
            self._service_worker = worker
            worker.start()
            if getattr(worker, "enabled", False):
                # On a fresh state dir the worker creates the queues: let it, so the client
                # does not report a missing queue first.
                worker.wait_ready(WORKER_FIRST_TIMEOUT)
            try:
                client = self._client_factory(settings, on_change=self._client_changed,
                                              on_status=self._client_status)
                client.start()
            except Exception as error:  # the boundary: any failure becomes a message
                self.post_message(ServicesFailed(f"cannot start the client: {error}"))
                return
            self._service_client = client
            self.post_message(ServicesStarted(client, client.snapshot()))
            if self._intake_enabled:
                self._start_intake(settings)
        finally:
            self._services_ready.set()
        self._report_worker(worker)

    def _start_intake(self, settings: Settings) -> None:
        folder = settings.input
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._startup_files = {Path(entry.path) for entry in os.scandir(folder)}
            intake = FolderIntake(folder, self._intake_file, self._intake_skip)
            intake.start(existing=True)
        except OSError as error:
            self.post_message(Notice(f"cannot watch {folder}: {error.strerror or error}",
                                     "error"))
            return
        self._service_intake = intake
        self.post_message(LogLine(f"watching {folder} for new images"))

    def _report_worker(self, worker: Any) -> None:
        if not getattr(worker, "enabled", False):
            if self.settings.backend == "local":
                self.post_message(WorkerReport("no local worker", True))
            return
        if not worker.wait_ready(WORKER_READY_TIMEOUT):
            self.post_message(WorkerReport("worker: not ready", False))
            return
        if worker.error:
            self.post_message(WorkerReport(f"worker failed: {worker.error}", False))
        else:
            self.post_message(WorkerReport(f"local worker ×{self.settings.workers}", True))

    def close_services(self) -> list[str]:
        """Stop the intake, close the client (unfinished jobs stay journaled), stop the
        worker. Blocking and idempotent: call from a thread, or after the app has exited."""
        notes: list[str] = []
        with self._close_lock:
            if self._services_closed.is_set():
                return notes
            self._services_ready.wait(SERVICE_START_TIMEOUT)
            for name, stop in (("intake", self._service_intake and self._service_intake.stop),
                               ("client", self._service_client and self._service_client.close),
                               ("worker", self._service_worker and self._service_worker.stop)):
                if not stop:
                    continue
                try:
                    stop()
                except Exception as error:  # report, and still stop the rest
                    notes.append(f"stopping the {name}: {error}")
            self._services_closed.set()
        return notes

    # Client and intake callbacks: called on their threads, so they only post.

    def _client_changed(self, job: Job) -> None:
        state = job.state
        with self._dirty_lock:
            self._dirty[job.row] = job
            if state in FAILURES:
                self._failed.append((job, state, job.reason))

    def _client_status(self, status: Any) -> None:
        self.post_message(StatusChanged(status))

    def _intake_file(self, path: Path) -> None:
        client = self._service_client
        if client is None or self._quitting:
            return
        origin = "startup" if path in self._startup_files else "watch"
        self._startup_files.discard(path)
        client.add_paths([path], origin=origin)

    def _intake_skip(self, path: Path, reason: str) -> None:
        self.post_message(FileSkipped(path, reason))

    # --- message handlers ------------------------------------------------------------------

    def on_services_started(self, message: ServicesStarted) -> None:
        self.client = message.client
        self.header.client_id = getattr(message.client, "client_id", "")
        status = getattr(message.client, "status", None)
        if status is not None:
            self._show_status(status, quiet=True)
        for job in message.jobs:
            self._seen.setdefault(job.row, job.state)
            with self._dirty_lock:
                self._dirty.setdefault(job.row, job)
        resumed = sum(1 for job in message.jobs if not job.final)
        if resumed:
            self._log_line(f"resumed {resumed} unfinished job(s) from the journal")
        self._flush_changes()

    def on_services_failed(self, message: ServicesFailed) -> None:
        self._start_failure = message.reason
        self.header.reachable = False
        self.header.detail = message.reason
        self._tell(message.reason, "error")

    def on_worker_report(self, message: WorkerReport) -> None:
        self.header.worker = message.text
        if not message.ok:
            self._tell(message.text, "error")
        else:
            self._log_line(message.text)

    def on_status_changed(self, message: StatusChanged) -> None:
        self._show_status(message.status)

    def _show_status(self, status: Any, *, quiet: bool = False) -> None:
        was = self.header.reachable
        detail = str(status.detail)
        if status.reachable is False and detail == "connecting":
            self.header.reachable = None
        else:
            self.header.reachable = bool(status.reachable)
        self.header.detail = detail
        if quiet or was == self.header.reachable:
            return
        if self.header.reachable is False:
            self._tell(f"backend unreachable: {detail}; jobs wait and retry", "warning")
        elif self.header.reachable and was is False:
            self._tell("backend reachable again", "information")
        elif self.header.reachable:
            self._log_line(f"connected: {detail}")

    def on_file_skipped(self, message: FileSkipped) -> None:
        self._log_line(f"skipped {message.path.name}: {message.reason}", "warning")

    def on_log_line(self, message: LogLine) -> None:
        self._log_line(message.text, message.level)

    def on_notice(self, message: Notice) -> None:
        self._tell(message.text, message.severity)

    def on_rows_cleared(self, message: RowsCleared) -> None:
        for row in message.rows:
            self._cleared.add(row)
            self.jobs.pop(row, None)
            with self._dirty_lock:
                self._dirty.pop(row, None)
            self._live.pop(row, None)
            self._seen.pop(row, None)
        self.table.rebuild(self.jobs.values(), self.clock(), self._keep)
        self._log_line(f"cleared {len(message.rows)} finished row(s)")
        self._tick()
        self._show_selected()

    def on_settings_saved(self, message: SettingsSaved) -> None:
        if message.error:
            self._tell(f"settings apply to new jobs but were not saved: {message.error}",
                       "error")
        else:
            self._tell(f"settings saved to {message.path}", "information")
        self._tick()

    def on_preview_ready(self, message: PreviewReady) -> None:
        job = self.jobs.get(message.row)
        if job is not None and job.output_sha256:
            self._previews[(message.row, job.output_sha256)] = (message.image, message.text)
            while len(self._previews) > PREVIEW_CACHE:
                self._previews.pop(next(iter(self._previews)))
        if message.row == self._selected:
            self.details.show_preview(message.image, message.text)

    def on_services_stopped(self, message: ServicesStopped) -> None:
        for note in message.notes:
            self._log_line(note, "error")
        self.exit(0)

    # --- the two timers --------------------------------------------------------------------

    def _flush_changes(self) -> None:
        """Apply the coalesced job changes: one row add or a few cell updates per job."""
        with self._dirty_lock:
            if not self._dirty and not self.table.adding:
                return
            dirty, self._dirty = self._dirty, {}
            failed, self._failed = self._failed, []
        now = self.clock()
        table = self.table
        visible = set(table.visible_rows())
        drops: list[int] = []
        moved = False
        for row, job in dirty.items():
            if row in self._cleared:
                continue
            self.jobs[row] = job
            state = job.state
            if state is not self._seen.get(row) or not table.shows(row):
                moved = True
                self._seen[row] = state
            if state in FINAL:
                self._live.pop(row, None)
            else:
                self._live[row] = job
            if self._keep(job):
                table.upsert(job, now, visible)
            elif table.shows(row):
                drops.append(row)
        if len(drops) > MAX_SINGLE_DROPS:
            table.rebuild(self.jobs.values(), now, self._keep)
        else:
            for row in drops:
                table.drop(row)
        added = table.add_pending(now)
        self._announce(failed)
        if moved or added:
            self._show_summary(now)
        if self._selected is None or self._selected in dirty:
            self._show_selected()

    def _tick(self) -> None:
        """Recompute countdowns (only changed cells are rewritten) and the summary."""
        now = self.clock()
        self.table.refresh_countdowns(self._live, now)
        self._show_summary(now)
        if self._selected in self._live:
            self.details.show(self.jobs.get(self._selected), now)

    @on(JobTable.Scrolled)
    def _rows_scrolled_into_view(self) -> None:
        self.table.refresh_countdowns(self._live, self.clock())

    def _show_summary(self, now: float) -> None:
        self.summary.show(summarize(self.jobs.values(), now, self._started_at, self._filter,
                                    self.table.shown_count))

    def _announce(self, failed: list[tuple[Job, State, str]]) -> None:
        """A log line and a notification for each failure (one summary toast for many)."""
        fresh: list[tuple[Job, State, str]] = []
        for job, state, reason in failed:
            key = (job.job_id, state)
            if key not in self._announced and job.row not in self._cleared:
                self._announced.add(key)
                fresh.append((job, state, reason))
        for job, state, reason in fresh:
            self._log_line(f"{job.name}: {state.label}: {reason}",
                           "warning" if state is State.REJECTED else "error")
        if len(fresh) > MAX_TOASTS_PER_FLUSH:
            self.notify(f"{len(fresh)} jobs failed or were rejected (see the log: l)",
                        severity="error", markup=False)
            return
        for job, state, reason in fresh:
            self.notify(f"{job.name}: {reason or state.label}", title=state.label,
                        severity="warning" if state is State.REJECTED else "error",
                        markup=False)

    # --- selection and details -------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#jobs")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        self._selected = None if key is None else int(key)
        self._show_selected()

    def _show_selected(self) -> None:
        selected = self.table.selected_row()
        self._selected = selected
        job = self.jobs.get(selected) if selected is not None else None
        details = self.details
        details.show(job, self.clock())
        if job is None or not details.wants_preview(job):
            details.show_preview(None, "" if job is None else "preview when done")
            return
        cached = self._previews.get((job.row, job.output_sha256 or ""))
        if cached is not None:
            details.show_preview(*cached)
        else:
            details.show_preview(None, "loading preview…")
            assert job.output_path is not None
            self._load_preview(job.row, job.output_path)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _load_preview(self, row: int, path: Path) -> None:
        image, text = load_thumbnail(path)
        self.post_message(PreviewReady(row, image, text))

    # --- filter ----------------------------------------------------------------------------

    def _keep(self, job: Job) -> bool:
        return not self._filter or matches(job, self._filter)

    def set_filter(self, text: str) -> None:
        text = text.strip()
        if text == self._filter:
            return
        self._filter = text
        self.table.rebuild(self.jobs.values(), self.clock(), self._keep)
        self._tick()
        self._show_selected()

    def action_filter(self) -> None:
        box = self.filter_box
        box.add_class("visible")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("visible")
        self.table.focus()

    def on_key(self, event: events.Key) -> None:
        box = self.filter_box
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.value = ""
            box.remove_class("visible")
            self.set_filter("")
            self.table.focus()

    # --- actions ---------------------------------------------------------------------------

    def _selected_job(self) -> Job | None:
        row = self.table.selected_row()
        return None if row is None else self.jobs.get(row)

    def _ready_client(self) -> Any | None:
        if self.client is None:
            self._tell(self._start_failure or "still starting: try again in a moment",
                       "error" if self._start_failure else "warning")
        return self.client

    def action_retry(self) -> None:
        job = self._selected_job()
        if job is None or self._ready_client() is None:
            return
        if job.state not in (State.FAILED, State.EXPIRED, State.TIMED_OUT, State.CANCELLED):
            self._tell(f"{job.name} is {job.state.label}: only failed, expired, timed-out or "
                       "cancelled jobs can be retried", "warning")
            return
        self._call_client("retry", job.row, job.name)

    def action_cancel_job(self) -> None:
        job = self._selected_job()
        if job is None or self._ready_client() is None:
            return
        if job.final:
            self._tell(f"{job.name} is already {job.state.label}", "warning")
            return
        self._call_client("cancel", job.row, job.name)

    @work(thread=True, exit_on_error=False, group="client-calls")
    def _call_client(self, method: str, row: int, name: str) -> None:
        assert self.client is not None
        try:
            ok = getattr(self.client, method)(row)
        except ImgpipeError as error:
            self.post_message(Notice(f"{method} {name}: {error}", "error"))
            return
        if not ok:
            self.post_message(Notice(f"cannot {method} {name}: it has moved on", "warning"))

    def action_clear(self) -> None:
        if self._ready_client() is not None:
            self._clear_finished()

    @work(thread=True, exit_on_error=False, group="client-calls")
    def _clear_finished(self) -> None:
        assert self.client is not None
        try:
            rows = self.client.clear_finished()
        except ImgpipeError as error:
            self.post_message(Notice(f"cannot clear: {error}", "error"))
            return
        self.post_message(RowsCleared(list(rows)))

    def action_add(self) -> None:
        self.push_screen(PathPrompt(), self._paths_chosen)

    def _paths_chosen(self, paths: list[Path] | None) -> None:
        if paths and self._ready_client() is not None:
            assert self.client is not None
            self.client.add_paths(paths, origin="added")
            self._log_line(f"added {len(paths)} file(s) by path")

    def on_paste(self, event: events.Paste) -> None:
        """A paste (terminals turn a drop of files into one) of paths on the dashboard."""
        if self.screen is not self.screen_stack[0] or not event.text.strip():
            return
        event.stop()
        if self._ready_client() is not None:
            self._submit_pasted(event.text)

    @work(thread=True, exit_on_error=False, group="paste")
    def _submit_pasted(self, text: str) -> None:
        found, missing = split_existing(parse_paths(text))
        if found:
            assert self.client is not None
            self.client.add_paths(found, origin="paste")
            self.post_message(LogLine(f"pasted {len(found)} file(s)"))
        if missing:
            names = ", ".join(str(path) for path in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            self.post_message(Notice(f"pasted text names no such file: {names}{more}",
                                     "warning"))

    def action_settings(self) -> None:
        path = config_path(self.settings, self.cwd)
        self.push_screen(SettingsScreen(self.settings, str(path)), self._settings_chosen)

    def _settings_chosen(self, settings: Settings | None) -> None:
        if settings is None:
            return
        self.settings = settings
        self.header.new_jobs = settings_label(settings)
        if self.client is not None:
            self.client.settings = settings  # the client reads it for each new job
        self._save_settings(settings, config_path(settings, self.cwd))
        self._tick()

    @work(thread=True, exit_on_error=False, group="settings")
    def _save_settings(self, settings: Settings, path: Path) -> None:
        try:
            save_settings(path, saved_values(settings))
        except (OSError, ValueError) as error:
            self.post_message(SettingsSaved(settings, path, str(error)))
        else:
            self.post_message(SettingsSaved(settings, path))

    def action_toggle_log(self) -> None:
        self.log_pane.toggle_class("visible")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        if self._quitting:
            return
        in_flight = sum(1 for job in self.jobs.values() if not job.final)
        if in_flight:
            self.push_screen(QuitScreen(in_flight), self._quit_answered)
        else:
            self._begin_shutdown()

    def _quit_answered(self, quit_now: bool | None) -> None:
        if quit_now:
            self._begin_shutdown()

    def _begin_shutdown(self) -> None:
        self._quitting = True
        self.header.stopping = True
        self._log_line("stopping: intake, client, worker")
        self._stop_services()

    @work(thread=True, exit_on_error=False, group="shutdown")
    def _stop_services(self) -> None:
        self.post_message(ServicesStopped(self.close_services()))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The dashboard's actions in the command palette (ctrl+p), beside Textual's own."""
        yield from super().get_system_commands(screen)
        for title, help_text, action in (
            ("Add files by path", "a: type or paste paths to convert", self.action_add),
            ("Retry job", "r: submit the selected failed/timed-out job again",
             self.action_retry),
            ("Cancel job", "x: cancel the selected job", self.action_cancel_job),
            ("Clear finished", "c: remove finished rows from the table", self.action_clear),
            ("Filter", "/: show jobs by file name or state", self.action_filter),
            ("Settings", "s: output format, tag, timeout for new jobs",
             self.action_settings),
            ("Toggle log", "l: show or hide the log pane", self.action_toggle_log),
            ("Help", "?: keys and job states", self.action_help),
            ("Quit imgtui", "q: quit (asks when jobs are in flight)", self.action_quit),
        ):
            yield SystemCommand(title, help_text, action)

    # --- log and notifications -------------------------------------------------------------

    def _log_line(self, text: str, level: str = "info") -> None:
        self.log_pane.add(text, level)

    def _tell(self, text: str, severity: str = "information") -> None:
        self._log_line(text, {"information": "info"}.get(severity, severity))
        self.notify(text, severity=severity, markup=False)  # type: ignore[arg-type]

    def _install_logging(self) -> None:
        def post(text: str, level: str) -> None:
            self.post_message(LogLine(text, level))

        self._log_handler = LogForwarder(post)
        for name in ("imgtui", "imgserver"):
            logger = logging.getLogger(name)
            self._saved_log_levels[name] = logger.level
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self._log_handler)
        self._saved_excepthook = threading.excepthook

        def excepthook(args: threading.ExceptHookArgs) -> None:
            post(f"thread {args.thread.name if args.thread else '?'} died: "
                 f"{args.exc_type.__name__}: {args.exc_value}", "error")

        threading.excepthook = excepthook

    def _remove_logging(self) -> None:
        if self._log_handler is not None:
            for name, level in self._saved_log_levels.items():
                logger = logging.getLogger(name)
                logger.removeHandler(self._log_handler)
                logger.setLevel(level)
            self._log_handler = None
        if self._saved_excepthook is not None:
            threading.excepthook = self._saved_excepthook
            self._saved_excepthook = None


def run_dashboard(settings: Settings) -> int:
    """``imgtui`` (``imgtui dashboard``): run the dashboard until the user quits."""
    app = DashboardApp(settings)
    try:
        app.run()
    finally:
        with contextlib.suppress(Exception):
            app.close_services()
    return app.return_code or 0
