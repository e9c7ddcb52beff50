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
def redis_standalone(workdir: Path) -> Iterator[str]:
    """One redis-server, its AOF fsynced on every write (the backend's default durability)."""
    server = rd.start_server(workdir)
    try:
        yield f"redis://{rd.HOST}:{server.port}/0"
    finally:
        server.stop()


@contextlib.contextmanager
def redis_cluster(workdir: Path) -> Iterator[str]:
    """A Redis Cluster of three masters, no replicas."""
    deployment = rd.start_cluster(workdir, masters=3, replicas=0)
    try:
        yield deployment.cluster_url
    finally:
        deployment.stop()


@contextlib.contextmanager
def postgres(workdir: Path) -> Iterator[str]:
    """A PostgreSQL server (fsync on) with an empty database `bench`."""
    base = pg.pristine_workdir()
    cluster = pg.new_cluster(base).start()
    try:
        cluster.execute("CREATE DATABASE bench")
        yield cluster.url("bench")
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


# The engines a Burrow backend of `bench.run` stores in, by backend name.
BACKEND_ENGINES: dict[str, Engine] = {"redis": redis_standalone, "postgres": postgres}
