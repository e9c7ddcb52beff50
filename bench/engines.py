"""Throwaway storage engines for the benchmarks, started with the test suite's helpers
(`tests/engines`, which need pytest: the `dev` extra) and stopped by their PIDs.

Each is a context manager that takes a work directory and gives the engine's URL.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.engines import postgres as pg
from tests.engines import redis as rd

Engine = Callable[[Path], contextlib.AbstractContextManager[str]]


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[rd.RedisProcess]:
    """One redis-server, every write fsynced to its append-only file before the answer
    (the backend's default durability)."""
    server = rd.start_server(workdir)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def redis_standalone(workdir: Path) -> Iterator[str]:
    """The URL of one `redis_server`."""
    with redis_server(workdir) as server:
        yield f"redis://{rd.HOST}:{server.port}/0"


@contextlib.contextmanager
def redis_cluster(workdir: Path) -> Iterator[str]:
    """A Redis Cluster of three masters, no replicas."""
    deployment = rd.start_cluster(workdir, masters=3, replicas=0)
    try:
        yield deployment.cluster_url
    finally:
        deployment.stop()


@contextlib.contextmanager
def postgres_cluster() -> Iterator[pg.PostgresCluster]:
    """A PostgreSQL server (fsync on, synchronous commit) with an empty database `bench`."""
    base = pg.pristine_workdir()
    cluster = pg.new_cluster(base).start()
    try:
        cluster.execute("CREATE DATABASE bench")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def postgres(workdir: Path) -> Iterator[str]:
    """The URL of the database `bench` of one `postgres_cluster` (in a temp dir of its own:
    the postgres user must reach it)."""
    with postgres_cluster() as cluster:
        yield cluster.url("bench")


# The engines a Burrow backend of `bench.run` stores in, by backend name.
BACKEND_ENGINES: dict[str, Engine] = {"redis": redis_standalone, "postgres": postgres}
