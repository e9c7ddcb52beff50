"""Redis durability modes (`?durability=`, docs/redis.md#durability) on real redis-servers.

The server is checked when the backend opens: by default every primary must fsync each
write (AOF, appendfsync always), and then acknowledged PUTs (and receives, deletes by
receipt and queue info writes, which take the same path) survive a `kill -9` of
redis-server; a stock redis-server (no AOF) is refused, unless the URL accepts the risk
with `durability=none`, which starts with a warning and does lose writes to a `kill -9`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from burrow.backends.redis import RedisBackend
from burrow.backends.redis_durability import Durability
from burrow.backends.redis_url import RedisURL
from burrow.errors import BackendUnavailable, ConfigError
from burrow.model import Attributes, Filters, NewMessage
from tests.conftest import ServerFactory
from tests.engines.redis import (
    HOST,
    Deployment,
    RedisProcess,
    binary,
    free_port,
    start_cluster,
)
from tests.test_redis import Q, ids_in

FSYNC_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")
ACKNOWLEDGED = 300


def redis_server(workdir: Path, *settings: str) -> RedisProcess:
    """A redis-server on its own defaults (a stock one: RDB snapshots, no AOF) but `settings`."""
    port = free_port()
    args = [binary("redis-server"), "--port", str(port), "--bind", HOST, "--dir", str(workdir)]
    return RedisProcess(workdir, [*args, *settings], port).start()


def url_of(engine: RedisProcess, query: str = "") -> str:
    return f"redis://{HOST}:{engine.port}/0{query}"


def put_then_kill_redis(server_url: str, engine: RedisProcess) -> int:
    """PUT messages one by one (each acknowledged), `kill -9` redis-server, start it again
    on the same directory; returns how many acknowledged messages are gone."""
    with httpx.Client(base_url=server_url, timeout=10) as http:
        for n in range(ACKNOWLEDGED):
            assert http.put(f"/v1.0/a/{Q}/m{n:04}", content=b"x").status_code == 201
    engine.kill()
    engine.start()
    # Reads are retried through the reconnection (docs/redis.md#atomicity).
    return ACKNOWLEDGED - len(ids_in(server_url, "a"))


def test_with_appendfsync_always_the_default_url_keeps_every_acknowledged_put(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    engine = redis_server(tmp_path / "redis", *FSYNC_ALWAYS)
    try:
        server = start_server(url_of(engine))
        lost = put_then_kill_redis(server.url, engine)
    finally:
        engine.stop()
    print(f"appendfsync always, default URL: {lost} of {ACKNOWLEDGED} acknowledged PUTs lost")
    assert lost == 0
    assert "durability" not in server.log()  # nothing to warn about


async def test_with_appendfsync_always_receives_and_queue_infos_survive_a_kill_9(
    tmp_path: Path,
) -> None:
    engine = redis_server(tmp_path / "redis", *FSYNC_ALWAYS)
    try:
        async with RedisBackend(url_of(engine)) as backend:
            batch = [NewMessage(f"m{n}", b"x", 600, 0, b"meta") for n in range(3)]
            await backend.put_messages("a", Q, batch)
            first = Attributes(hide=600, receipt="r1")
            await backend.update_messages("a", Q, first, Filters(limit=2))  # m0, m1
            await backend.delete_message("a", Q, "m0", receipt="r1")
            await backend.update_message("a", Q, "m1", Attributes(hide=0), receipt="r1")
            second = Attributes(hide=600, receipt="r2")
            await backend.update_messages("a", Q, second, Filters(limit=1))  # m1 again
            assert await backend.set_queue_info("a", Q, b"info", expected=None)
            assert await backend.set_queue_info("a", "gone", b"info", expected=None)
            assert await backend.delete_queue_info("a", "gone")
            engine.kill()
            engine.start()
            # Reads are retried through the reconnection (docs/redis.md#atomicity).
            remaining = await backend.get_messages("a", Q, Filters(match_hidden=True))
            assert [m.id for m in remaining] == ["m1", "m2"]
            received = await backend.get_message("a", Q, "m1")
            assert (received.receives, received.receipt, received.meta) == (2, "r2", b"meta")
            assert received.hide > 500 and received.first_received > 0
            assert (await backend.get_message("a", Q, "m2")).receives == 0
            assert await backend.list_queue_infos("a", Filters()) == [Q]
            assert await backend.get_queue_info("a", Q) == b"info"
    finally:
        engine.stop()


async def test_in_replicas_mode_receives_and_queue_info_writes_wait_for_replicas(
    tmp_path: Path,
) -> None:
    """With no replica to confirm them, none of them is acknowledged."""
    engine = redis_server(tmp_path / "redis")
    try:
        async with RedisBackend(url_of(engine, "?durability=none")) as unconfirmed:
            await unconfirmed.put_message("a", Q, NewMessage("m", b"x", 600, 0))
        async with RedisBackend(url_of(engine, "?durability=replicas&wait_ms=50")) as backend:
            for write in (
                backend.update_messages("a", Q, Attributes(hide=60, receipt="r"), Filters()),
                backend.update_message("a", Q, "m", Attributes(hide=0), receipt="r"),
                backend.delete_message("a", Q, "m", receipt="r"),
                backend.set_queue_info("a", Q, b"info", expected=None),
                backend.delete_queue_info("a", Q),
            ):
                with pytest.raises(BackendUnavailable, match="not confirmed by 1 replica"):
                    await write
    finally:
        engine.stop()


def test_durability_none_starts_on_a_stock_redis_with_a_warning_and_loses_writes(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    engine = redis_server(tmp_path / "redis")
    try:
        server = start_server(url_of(engine, "?durability=none"))
        warning = (
            "WARNING burrow.backends.redis_durability: redis durability=none: acknowledged "
            f"writes are lost if Redis stops before it saves them ({HOST}:{engine.port} has "
            "appendonly no, appendfsync everysec)"
        )
        assert warning in server.log()
        lost = put_then_kill_redis(server.url, engine)
    finally:
        engine.stop()
    # The risk the warning names: with no AOF, what came after the last snapshot is gone.
    print(f"stock redis-server, durability=none: {lost} of {ACKNOWLEDGED} acknowledged PUTs lost")
    assert lost > 0


@pytest.fixture(scope="module")
def refused_start(tmp_path_factory: pytest.TempPathFactory) -> tuple[RedisProcess, str, int]:
    """`burrow serve` with the default URL on a stock redis-server: its stderr and status."""
    workdir = tmp_path_factory.mktemp("stock")
    engine = redis_server(workdir / "redis")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BURROW_")}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "burrow", "serve", "--port", "0", "--backend", url_of(engine)],
            cwd=workdir,
            env=clean,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        engine.stop()
    return engine, result.stderr, result.returncode


def test_a_stock_redis_is_refused_by_default_with_one_line(
    refused_start: tuple[RedisProcess, str, int],
) -> None:
    engine, stderr, status = refused_start
    (line,) = stderr.splitlines()
    assert (
        f"cannot open the backend, redis {url_of(engine)}: durability=fsync (the default)" in line
    )
    assert f"but {HOST}:{engine.port} has appendonly no, appendfsync everysec: " in line
    assert "?durability=none" in line and "Traceback" not in stderr
    assert status != 0


def test_a_stock_redis_refused_by_default_exits_2_as_a_setting_that_cannot_work(
    refused_start: tuple[RedisProcess, str, int],
) -> None:
    assert refused_start[2] == 2


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (("--appendonly", "yes"), "has appendfsync everysec"),
        (
            (*FSYNC_ALWAYS, "--no-appendfsync-on-rewrite", "yes"),
            "has no-appendfsync-on-rewrite yes",
        ),
        # CONFIG renamed away, as managed services do: INFO persistence is read instead.
        (("--rename-command", "CONFIG", ""), "has no AOF (INFO persistence: aof_enabled:0)"),
        (
            (*FSYNC_ALWAYS, "--rename-command", "CONFIG", ""),
            "has an AOF whose appendfsync cannot be read",
        ),
    ],
    ids=["everysec", "no-fsync-on-rewrite", "no-config-no-aof", "no-config-aof"],
)
async def test_what_keeps_a_write_from_its_fsync_is_named(
    tmp_path: Path, settings: tuple[str, ...], says: str
) -> None:
    engine = redis_server(tmp_path / "redis", *settings)
    try:
        with pytest.raises(ConfigError, match="durability=fsync") as refused:
            await RedisBackend(url_of(engine)).open()
        assert f"{HOST}:{engine.port} {says}" in refused.value.message
        async with RedisBackend(url_of(engine, "?durability=none")):
            pass
    finally:
        engine.stop()


async def test_replicas_mode_reads_no_persistence_settings(tmp_path: Path) -> None:
    """`durable=1`, as URLs said before the check existed, still opens on a stock server
    (each write then waits for a replica)."""
    engine = redis_server(tmp_path / "redis", "--rename-command", "CONFIG", "")
    try:
        for query in ("?durable=1", "?durability=replicas", "?replicas=2"):
            backend = RedisBackend(url_of(engine, query))
            assert backend.url.durability is Durability.REPLICAS
            async with backend:
                pass
    finally:
        engine.stop()


def set_fsync(node: RedisProcess, appendfsync: str) -> None:
    with node.client() as client:
        client.config_set("appendonly", "yes")
        client.config_set("appendfsync", appendfsync)


async def test_every_primary_of_a_cluster_is_checked(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "cluster", masters=3, replicas=0)
    try:
        for node in cluster.servers:
            set_fsync(node, "always")
        async with RedisBackend(cluster.cluster_url):
            pass
        lax = cluster.servers[1]
        set_fsync(lax, "everysec")
        with pytest.raises(ConfigError) as refused:
            await RedisBackend(cluster.cluster_url).open()
        assert f"but {HOST}:{lax.port} has appendfsync everysec: set" in refused.value.message
    finally:
        cluster.stop()


async def test_sentinel_checks_the_primary_the_sentinels_name(redis_sentinel: Deployment) -> None:
    """Only the primary: its replica is checked by the servers that start once it is one."""
    primary, replica = redis_sentinel.servers
    set_fsync(primary, "always")
    set_fsync(replica, "everysec")
    async with RedisBackend(redis_sentinel.sentinel_url):
        pass
    set_fsync(primary, "everysec")
    with pytest.raises(ConfigError) as refused:
        await RedisBackend(redis_sentinel.sentinel_url).open()
    assert f"but {HOST}:{primary.port} has appendfsync everysec: set" in refused.value.message


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?durability=fast", "durability must be fsync, replicas or none, not 'fast'"),
        ("?durability=replicas&replicas=0", "durability=replicas needs replicas >= 1"),
        ("?durable=1&durability=none", "durable=1 is the older spelling of durability=replicas"),
        ("?durable=0&durability=fsync", "give one of them"),
    ],
)
def test_contradictory_durability_options_are_refused(query: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        RedisURL.parse(f"redis://{HOST}:6379/0{query}")


@pytest.mark.parametrize(
    ("query", "durability", "replicas"),
    [
        ("", Durability.FSYNC, 0),
        ("?durable=0", Durability.FSYNC, 0),
        ("?durability=fsync&replicas=1", Durability.FSYNC, 1),
        ("?durability=replicas", Durability.REPLICAS, 1),
        ("?durable=1", Durability.REPLICAS, 1),
        ("?replicas=2", Durability.REPLICAS, 2),
        ("?durability=none", Durability.NONE, 0),
    ],
)
def test_what_a_url_accepts(query: str, durability: Durability, replicas: int) -> None:
    parsed = RedisURL.parse(f"redis://{HOST}:6379/0{query}")
    assert (parsed.durability, parsed.replicas) == (durability, replicas)
