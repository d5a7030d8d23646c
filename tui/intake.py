"""The input folder: which files to take, and when a file is complete enough to take.

watchdog reports changes; a file is handed on once it is complete: closed after writing
(inotify's close-write) and unchanged for a short settle time, or, where no close event comes,
its size and mtime stable for a moment. A file still being written is never taken half-way.

Skipped without ever blocking (no file is opened before ``lstat`` says it is a regular file):
hidden files, partial downloads and editor temp files, directories, symlinks leading outside
the folder, FIFOs, sockets and devices.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

#: Name endings of files that are not finished yet or not the user's.
TEMP_SUFFIXES: Final = (".part", ".crdownload", ".tmp", ".temp", ".swp", ".swx", ".download",
                        ".partial", "~")
#: A file must be unchanged this long after its last write (or close) to count as complete.
SETTLE_AFTER_CLOSE: Final = 0.3
SETTLE_WITHOUT_CLOSE: Final = 1.0
SCAN_INTERVAL: Final = 0.1


def skip_reason(path: Path, root: Path | None = None) -> str | None:
    """Why ``path`` in the watched folder is not an input file, or None when it may be one.

    Never opens the file.
    """
    name = path.name
    if name.startswith("."):
        return "hidden file"
    if name.lower().endswith(TEMP_SUFFIXES) or name.startswith("~$"):
        return "temporary or partial file"
    return regular_file_problem(path, root)


def regular_file_problem(path: Path, root: Path | None = None) -> str | None:
    """Why ``path`` is not a regular file one can read (or a symlink to one), or None."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "no such file"
    except OSError as error:
        return f"cannot read: {error.strerror}"
    if stat.S_ISLNK(info.st_mode):
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return "broken symlink"
        if root is not None and not target.is_relative_to(root.resolve()):
            return "symlink leading outside the input folder"
        info = target.stat()
    if stat.S_ISDIR(info.st_mode):
        return "a directory"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (FIFO, socket or device)"
    return None


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    changed_at: float
    closed: bool = False


class StableFiles:
    """Tracks candidate files and reports each once it has stopped changing."""

    def __init__(self, on_ready: Callable[[Path], None], *, clock: Callable[[], float] =
                 time.monotonic) -> None:
        self.on_ready = on_ready
        self.clock = clock
        self._pending: dict[Path, _Pending] = {}
        self._taken: dict[Path, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def touch(self, path: Path, *, closed: bool = False) -> None:
        """Something happened to ``path``: (re)start its settle clock."""
        try:
            info = path.stat()
        except OSError:
            with self._lock:
                self._pending.pop(path, None)
            return
        with self._lock:
            if self._taken.get(path) == (info.st_size, info.st_mtime_ns):
                return  # already handed on in exactly this state
            entry = self._pending.get(path)
            if entry is None or (entry.size, entry.mtime_ns) != (info.st_size, info.st_mtime_ns):
                self._pending[path] = _Pending(info.st_size, info.st_mtime_ns, self.clock(),
                                               closed)
            elif closed:
                entry.closed = True
                entry.changed_at = self.clock()

    def forget(self, path: Path) -> None:
        with self._lock:
            self._pending.pop(path, None)
            self._taken.pop(path, None)

    def scan(self) -> list[Path]:
        """Hand on every pending file that has settled; returns them."""
        now = self.clock()
        ready: list[Path] = []
        with self._lock:
            for path, entry in list(self._pending.items()):
                settle = SETTLE_AFTER_CLOSE if entry.closed else SETTLE_WITHOUT_CLOSE
                if now - entry.changed_at < settle:
                    continue
                try:
                    info = path.stat()
                except OSError:
                    del self._pending[path]
                    continue
                if (info.st_size, info.st_mtime_ns) != (entry.size, entry.mtime_ns):
                    self._pending[path] = _Pending(info.st_size, info.st_mtime_ns, now)
                    continue
                del self._pending[path]
                self._taken[path] = (info.st_size, info.st_mtime_ns)
                ready.append(path)
        for path in ready:
            self.on_ready(path)
        return ready

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)


class _Handler(FileSystemEventHandler):
    def __init__(self, intake: FolderIntake) -> None:
        self.intake = intake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        kind = event.event_type
        if kind == "moved":
            target = os.fsdecode(event.dest_path)
            self.intake.seen(Path(target), closed=True)
            return
        if kind in ("created", "modified", "closed"):
            self.intake.seen(Path(os.fsdecode(event.src_path)), closed=kind == "closed")
        elif kind == "deleted":
            self.intake.stable.forget(Path(os.fsdecode(event.src_path)))


class FolderIntake:
    """Watches one folder (not recursively) and calls ``on_file`` for each complete file.

    ``on_skip`` hears about files that are not taken (and why), once per path and state.
    """

    def __init__(self, folder: Path, on_file: Callable[[Path], None],
                 on_skip: Callable[[Path, str], None] | None = None) -> None:
        self.folder = folder
        self.root = folder.resolve()
        self.on_file = on_file
        self.on_skip = on_skip
        self.stable = StableFiles(self._ready)
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._stop = threading.Event()
        self._scanner: threading.Thread | None = None
        self._skipped: set[tuple[Path, str]] = set()

    def start(self, *, existing: bool = True) -> None:
        """Start watching; with ``existing``, also take the files already there."""
        self.folder.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(_Handler(self), str(self.folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._scanner = threading.Thread(target=self._scan_loop, name="imgpipe-intake",
                                         daemon=True)
        self._scanner.start()
        if existing:
            with contextlib.suppress(OSError):
                for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
                    self.seen(Path(entry.path), closed=True)

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._scanner is not None:
            self._scanner.join(timeout=5)

    def seen(self, path: Path, *, closed: bool = False) -> None:
        if path.parent.resolve() != self.root:
            return
        reason = skip_reason(path, self.root)
        if reason is not None:
            if reason != "no such file" and self.on_skip is not None:
                key = (path, reason)
                if key not in self._skipped:
                    self._skipped.add(key)
                    self.on_skip(path, reason)
            return
        self.stable.touch(path, closed=closed)

    def _ready(self, path: Path) -> None:
        if skip_reason(path, self.root) is None:
            self.on_file(path)

    def _scan_loop(self) -> None:
        while not self._stop.wait(SCAN_INTERVAL):
            self.stable.scan()
