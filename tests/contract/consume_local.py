"""A consumer process for the local-queue concurrency test (run as a script, not collected).

    python consume_local.py STATE_DIR QUEUE

Prints "ready", waits for a line on stdin (so every consumer starts at the same moment), then
receives with a long visibility until the queue stays empty, and prints the ids it got as one
JSON list. It never deletes: a message seen twice would be a broken exclusivity, not a retry.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from shared.backends.local import LocalBackend

#: Long enough that nothing is redelivered while the test runs.
VISIBILITY = 600
#: Time "spent" on each batch. Without it the first consumer to win SQLite's write lock tends
#: to drain the queue while the others sit in SQLite's busy back-off; the test would still
#: pass, but would exercise little contention.
WORK_SECONDS = 0.002


def main() -> None:
    state_dir, name = Path(sys.argv[1]), sys.argv[2]
    with LocalBackend(state_dir) as backend:
        queue = backend.queue(name)
        print("ready", flush=True)
        sys.stdin.readline()
        ids: list[str] = []
        batch = 1
        while got := queue.receive(batch, wait_seconds=0.2, visibility_timeout=VISIBILITY):
            ids.extend(message.id for message in got)
            time.sleep(WORK_SECONDS)
            batch = batch % 3 + 1  # small batches, to make the consumers contend
        print(json.dumps(ids), flush=True)


if __name__ == "__main__":
    main()
