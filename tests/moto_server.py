"""A moto server on a free loopback port, for tests that talk to "AWS" over HTTP.

    with MotoServer() as moto:
        subprocess.run([...], env=moto.subprocess_env())   # or monkeypatch each of moto.env()
        moto.reset()                                        # forget every bucket and queue

The server runs in this process, in threads (moto's ``ThreadedMotoServer``). Clients reach it
only through boto3's own ``AWS_ENDPOINT_URL`` variable, as the code under test would reach
AWS; no endpoint is ever passed in code.

Outages: ``stop()`` closes the listening socket (clients then get "connection refused", i.e.
``Unreachable``), and ``start()`` listens again on the *same* port, so URLs handed out before
(queue URLs embed host and port) stay valid. State survives a stop/start: moto keeps it in
module-level backends of this process, not in the server. That also means every MotoServer in
one process shares one state, and ``reset()`` on any of them clears it for all.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Mapping
from types import TracebackType
from typing import Final

from moto.server import ThreadedMotoServer

LOOPBACK: Final = "127.0.0.1"
REGION: Final = "us-east-1"
#: Variables of the AWS SDKs that could steer a test away from the server (profiles,
#: service-specific endpoints, real credentials); ``subprocess_env`` drops all of them.
AWS_PREFIXES: Final = ("AWS_",)


class MotoServer:
    """One moto server; ``start()``/``stop()`` may alternate, ``reset()`` clears all state."""

    def __init__(self, host: str = LOOPBACK, port: int = 0, *, quiet: bool = True) -> None:
        self.host = host
        self.port = port  # 0 until the first start picks a free one
        self._server: ThreadedMotoServer | None = None
        if quiet:
            # werkzeug logs every request at INFO; keep test output readable.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def endpoint(self) -> str:
        if not self.port:
            raise RuntimeError("start the moto server first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        """Listen (again) on the port chosen at the first start; idempotent."""
        if self._server is None:
            server = ThreadedMotoServer(self.host, self.port, verbose=False)
            server.start()
            self.port = server.get_host_and_port()[1]
            self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; state is kept for the next ``start()``."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Forget every bucket, object, queue and message (moto's own reset endpoint)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def env(self, region: str = REGION) -> dict[str, str]:
        """The variables that point boto3 at this server with dummy credentials.

        The config and credentials files are emptied so a developer's profile (its region,
        endpoint or credentials) cannot leak into a test.
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def subprocess_env(
        self, base: Mapping[str, str] | None = None, region: str = REGION
    ) -> dict[str, str]:
        """A whole environment for a child process: ``base`` (default ``os.environ``) without
        any ``AWS_*`` variable, plus ``env()``."""
        source = os.environ if base is None else base
        clean = {k: v for k, v in source.items() if not k.startswith(AWS_PREFIXES)}
        return clean | self.env(region)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
