"""Counts the AWS API calls of one process, for ``python -m bench.profile`` only.

Python imports ``sitecustomize`` at start-up when it is on the path; the profiler puts this
folder on ``PYTHONPATH`` of the processes it measures and names a file in
``IMGPIPE_BENCH_CALLS``. Every botocore call is counted by service and operation, and the
counts are written to that file (suffixed with the pid) when the process exits.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import threading

_TARGET = os.environ.get("IMGPIPE_BENCH_CALLS")

if _TARGET:
    _counts: collections.Counter[str] = collections.Counter()
    _lock = threading.Lock()

    def _install() -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call

        def counted(self, operation_name, api_params):  # type: ignore[no-untyped-def]
            service = self.meta.service_model.service_name
            with _lock:
                _counts[f"{service}:{operation_name}"] += 1
            return original(self, operation_name, api_params)

        BaseClient._make_api_call = counted

    def _write() -> None:
        with open(f"{_TARGET}.{os.getpid()}", "w") as handle:
            json.dump(dict(_counts), handle)

    try:
        _install()
    except ImportError:  # not a boto3 process
        pass
    else:
        atexit.register(_write)
