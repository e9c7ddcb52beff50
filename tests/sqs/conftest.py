"""The SQS frontend's fixtures: one `burrow serve --auth none` per backend per session.

Tests take `sqs` (a boto3 client of an account of their own: with `--auth none` the
access key id is the account), `sqs_server` (the server it talks to) or
`new_client` for more clients of the same account. Every test that takes them runs on
memory, SQLite, Redis and PostgreSQL. The Redis server and the PostgreSQL database
are this package's own, so that other tests flushing theirs never touch these. Tests
of the wire protocols alone take `wire` (tests/sqs/wire.py), no server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines.postgres import TEMPLATE, PostgresCluster
from tests.engines.redis import HOST, RedisProcess
from tests.engines.redis import start_server as start_redis
from tests.servers import BurrowServer
from tests.sqs.clients import SqsClient, sqs_client
from tests.sqs.wire import PROTOCOLS, Wire

BACKENDS = ["memory", "sqlite", "redis", "postgres"]
ClientFactory = Callable[..., SqsClient]
# For tests of what the frontend alone decides (checks of a request, the wire), which
# no backend changes: the memory backend's server only.
frontend_only = pytest.mark.parametrize("sqs_server", ["memory"], indirect=True)


@pytest.fixture(scope="session")
def sqs_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    process = start_redis(tmp_path_factory.mktemp("sqs-redis"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def sqs_postgres_url(postgres_server: PostgresCluster) -> Iterator[str]:
    name = f"burrow_sqs_{uuid.uuid4().hex[:8]}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield postgres_server.url(name)
    postgres_server.execute(f"DROP DATABASE {name} WITH (FORCE)")


def backend_url(name: str, request: pytest.FixtureRequest, workdir: Path) -> str:
    """The storage URL of one backend (starting its engine on first use)."""
    if name == "memory":
        return "memory://"
    if name == "sqlite":
        return f"sqlite:///{workdir / 'sqs.db'}"
    if name == "redis":
        redis: RedisProcess = request.getfixturevalue("sqs_redis")
        return f"redis://{HOST}:{redis.port}/0"
    url: str = request.getfixturevalue("sqs_postgres_url")
    return url


def serve(workdir: Path, backend: str, *extra: str) -> BurrowServer:
    return BurrowServer(workdir, backend, "--auth", "none", *extra).start()


@pytest.fixture(scope="session", params=BACKENDS)
def sqs_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BurrowServer]:
    """The session's server on one backend, shared by every test (accounts keep them apart)."""
    workdir = tmp_path_factory.mktemp(f"sqs-{request.param}")
    server = serve(workdir, backend_url(request.param, request, workdir))
    yield server
    server.kill()


@pytest.fixture
def sqs_account() -> str:
    """An account (and access key id) of the test's own."""
    return f"sqs{uuid.uuid4().hex[:12]}"


@pytest.fixture
def new_client(sqs_server: BurrowServer, sqs_account: str) -> ClientFactory:
    """More clients of the test's account on the session's server (`protocol="query"`…)."""

    def make(**options: Any) -> SqsClient:
        return sqs_client(sqs_server.url, sqs_account, **options)

    return make


@pytest.fixture
def sqs(new_client: ClientFactory) -> SqsClient:
    return new_client()


@pytest.fixture(scope="module", params=PROTOCOLS)
def wire(request: pytest.FixtureRequest) -> Wire:
    return Wire(request.param)
