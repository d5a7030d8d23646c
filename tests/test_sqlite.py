"""Shared SQLite files: several processes creating and opening one at the same moment."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from shared.sqlite import connect


def _open_together(path: str, barrier: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    db = connect(Path(path))
    db.executescript("CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()


def test_processes_opening_a_fresh_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Plain sqlite3.connect + "PRAGMA journal_mode=WAL" lost about one process in twenty
    # here to an immediate "database is locked".
    context = multiprocessing.get_context("spawn")
    for round_ in range(4):
        path = tmp_path / f"shared-{round_}.sqlite3"
        barrier = context.Barrier(8)
        processes = [context.Process(target=_open_together, args=(str(path), barrier))
                     for _ in range(8)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [p.exitcode for p in processes] == [0] * 8
        db = connect(path)
        assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 8
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
