"""Throwaway PostgreSQL servers from the local binaries, started and stopped by PID.

PostgreSQL refuses to run as root, so `initdb` and `postgres` run as the
`postgres` system user, in a directory of their own under /tmp (pytest's temp
directories are private to root). One cluster is initialised per session and
copied for every server, which is much faster than `initdb` each time.

- `postgres_server` (session): the server behind the contract suite; every
  `postgres_backend_url` is a fresh database cloned from a migrated template.
- `postgres_cluster` (function): a server of its own for tests that kill -9 and
  restart it (`.kill()`, `.start()`).
A missing PostgreSQL fails the fixtures: these tests are never skipped silently.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from burrow.backends.postgres import PostgresBackend

HOST = "127.0.0.1"
USER = "postgres"
START_TIMEOUT = 30.0
TEMPLATE = "burrow_template"
_databases = itertools.count()
T = TypeVar("T")


def binary(name: str) -> str:
    """A PostgreSQL server binary, from the newest installed version."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    path = found[-1] if found else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the PostgreSQL tests need it", pytrace=False)
    return path


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _owned_by_postgres(path: Path) -> None:
    account = pwd.getpwnam(USER)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, account.pw_uid, account.pw_gid)


@dataclass
class PostgresCluster:
    """One data directory and the `postgres` process serving it (when started)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{HOST}:{self.port}/{database}"

    def start(self) -> PostgresCluster:
        sockets = self.workdir / "sockets"
        sockets.mkdir(exist_ok=True)
        _owned_by_postgres(sockets)
        args = [binary("postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        args += ["-k", str(sockets), "-c", f"listen_addresses={HOST}", "-c", "fsync=on"]
        args += ["-c", "max_connections=300", "-c", "synchronous_commit=on"]
        with (self.workdir / "postgres.log").open("ab") as log:
            # A process group of its own: kill() takes the backends down with the postmaster.
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=USER,
                group=USER,
                process_group=0,
                cwd=self.workdir,
            )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited early:\n{self.log()}")
            if run_sync(self._accepts_connections()):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postgres not ready after {START_TIMEOUT}s:\n{self.log()}")

    async def _accepts_connections(self) -> bool:
        try:
            conn = await asyncpg.connect(self.url(), timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    def log(self) -> str:
        return (self.workdir / "postgres.log").read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the postmaster and all its backends: no shutdown checkpoint."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def execute(self, sql: str, database: str = "postgres") -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self.url(database), timeout=5)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        run_sync(run())


@pytest.fixture(scope="session")
def postgres_workdir() -> Iterator[Path]:
    base = pristine_workdir()
    yield base
    shutil.rmtree(base, ignore_errors=True)


def pristine_workdir() -> Path:
    """A directory the postgres user can reach, with one pristine initialised cluster."""
    base = Path(tempfile.mkdtemp(prefix="burrow-pg-"))
    base.chmod(0o755)
    pristine = base / "pristine"
    pristine.mkdir()
    _owned_by_postgres(pristine)
    subprocess.run(
        [binary("initdb"), "-D", str(pristine), "-U", USER, "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
        user=USER,
        group=USER,
        timeout=120,
    )
    return base


def new_cluster(base: Path) -> PostgresCluster:
    """A copy of the pristine cluster in a directory of its own (not started)."""
    workdir = Path(tempfile.mkdtemp(prefix="cluster-", dir=base))
    workdir.chmod(0o755)
    shutil.copytree(base / "pristine", workdir / "data", symlinks=True)
    _owned_by_postgres(workdir)
    (workdir / "data").chmod(0o700)
    return PostgresCluster(workdir)


@pytest.fixture(scope="session")
def postgres_server(postgres_workdir: Path) -> Iterator[PostgresCluster]:
    """The session's server, with a template database already migrated to the schema."""
    cluster = new_cluster(postgres_workdir).start()
    try:
        cluster.execute(f"CREATE DATABASE {TEMPLATE}")
        run_sync(_migrate(cluster.url(TEMPLATE)))
        yield cluster
    finally:
        cluster.stop()


async def _migrate(url: str) -> None:
    async with PostgresBackend(url):
        pass


@pytest.fixture
def postgres_backend_url(postgres_server: PostgresCluster) -> Iterator[str]:
    """`postgresql://…` of an empty store: a fresh database cloned from the template."""
    name = f"burrow_test_{os.getpid()}_{next(_databases)}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield postgres_server.url(name)
    postgres_server.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def postgres_cluster(postgres_workdir: Path) -> Iterator[PostgresCluster]:
    """A server of its own, for tests that kill and restart it."""
    cluster = new_cluster(postgres_workdir).start()
    yield cluster
    cluster.stop()
