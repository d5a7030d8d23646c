"""Fixtures of the contract suite: ``backend`` runs each test once per adapter.

Test ids show the adapter (``test_put_get[local]``, ``test_put_get[aws]``). ``local`` keeps its
state in the test's tmp dir; ``aws`` talks to the session's moto server (``moto_server`` and
``aws_env`` in ``tests/conftest.py``, built on ``tests/moto_server.py``): a free loopback port,
reached through boto3's own ``AWS_ENDPOINT_URL``, reset before every test.

The few places where the adapters may differ (all documented in the adapters' docstrings) are
described by ``capabilities``, in the manner of fsspec's abstract test suite: a test states the
contract and asks the capability only where SQS is allowed to be weaker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.backends.local import LocalBackend
from shared.ports import Backend, ObjectStore, Queue, QueueSpec

from .helpers import BACKENDS, CAPABILITIES, Capabilities, open_aws


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def open_backend(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Backend]]:
    """Opens a backend over the test's state; a second one acts as another process would."""
    if backend_name == "aws":
        request.getfixturevalue("aws_env")
    opened: list[Backend] = []

    def open_one() -> Backend:
        if backend_name == "local":
            backend: Backend = LocalBackend(tmp_path / "state")
        else:
            backend = open_aws()
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(open_backend: Callable[[], Backend]) -> Backend:
    opened = open_backend()
    opened.ensure_bucket(opened.data_bucket)
    return opened


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    return backend.store(backend.data_bucket)


@pytest.fixture
def queue(backend: Backend) -> Queue:
    return backend.ensure_queue(QueueSpec("jobs", visibility_timeout=30))


@pytest.fixture
def capabilities(backend_name: str) -> Capabilities:
    return CAPABILITIES[backend_name]
