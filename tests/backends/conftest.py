"""The `backend` fixture: every contract test runs once per backend.

Each name in BACKENDS has a fixture `<name>_backend_url` (dashes become
underscores) giving the URL of an empty store; engines that need a server
provide theirs from a plugin in tests/engines/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from burrow.backends import open_backend
from burrow.backends.base import Backend
from tests.servers import BurrowServer

BACKENDS = ["memory", "sqlite", "http", "ring", "redis", "redis-cluster", "postgres"]


@pytest.fixture
def memory_backend_url() -> str:
    return "memory://"


@pytest.fixture
def sqlite_backend_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/contract.db"


@pytest.fixture(scope="session")
def remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BurrowServer]:
    """The Burrow server behind the `http` backend (memory storage)."""
    workdir = tmp_path_factory.mktemp("remote")
    # A remote server's limits must be at least its callers' (the contract puts 3,000 at once).
    (workdir / "burrow.toml").write_text("[limits]\nmax_batch_messages = 10000\n")
    server = BurrowServer(workdir, "memory://", "--config", "burrow.toml").start()
    yield server
    server.kill()


@pytest.fixture
def http_backend_url(remote_server: BurrowServer) -> str:
    httpx.delete(f"{remote_server.url}/v1.0")  # every account: an empty store
    return remote_server.url


@pytest.fixture
def ring_backend_url(tmp_path: Path) -> str:
    """A member in each of two zones: the ring's routing of every operation, unchanged.

    (Sets of several members spread an account, so listings are no longer in one
    creation order; tests/test_ring.py covers them.)
    """
    members = [(f"sqlite:///{tmp_path}/m{i}.db", f"az{i + 1}") for i in range(2)]
    ring = tmp_path / "ring.toml"
    ring.write_text(
        '[ring]\nzone = "az1"\nreplicas = 1\n'
        + "".join(f'[[ring.member]]\nurl = "{url}"\nzone = "{zone}"\n' for url, zone in members)
    )
    return f"ring:///{ring}"


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    url: str = request.getfixturevalue(f"{request.param.replace('-', '_')}_backend_url")
    async with open_backend(url) as opened:
        yield opened
