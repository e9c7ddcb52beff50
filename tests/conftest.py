"""Fixtures that start real Burrow servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import BurrowServer

ServerFactory = Callable[..., BurrowServer]

# Fixtures that start throwaway storage engines (one module per engine).
pytest_plugins: list[str] = ["tests.engines.redis", "tests.engines.postgres"]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start `burrow serve` processes for one test; all are stopped by PID after it."""
    started: list[BurrowServer] = []

    def start(backend: str | None = "memory://", *extra: str) -> BurrowServer:
        server = BurrowServer(tmp_path, backend, *extra).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BurrowServer]:
    server = BurrowServer(tmp_path_factory.mktemp("memory-server"), "memory://").start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def server_url(memory_server: BurrowServer) -> str:
    """Base URL of a session-wide server on the memory backend."""
    return memory_server.url


@pytest.fixture
def account() -> str:
    """A fresh account name, so tests sharing a server never see each other's data."""
    return f"t-{uuid.uuid4().hex[:12]}"
