"""`/health` tells the truth: 503 with the reason while the server cannot serve.

Real servers and real faults: SQLite files deleted, replaced or made unwritable under
a running server, engines and members stopped. `/health?live` answers 200 all along.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.engines.postgres import PostgresCluster
from tests.engines.redis import start_server as start_redis
from tests.servers import BurrowServer
from tests.test_ring import ring_file
from tests.unwritable import unwritable

PATIENCE = 20.0  # seconds a busy CI machine may take to notice a fault
REFUSED = "writes are refused until a restart"


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {PATIENCE:g} s"
        time.sleep(0.05)


def put(server: BurrowServer, message: str) -> int:
    return httpx.put(f"{server.url}/v1.0/a/q/{message}", content=b"x").status_code


def health(server: BurrowServer) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{server.url}/health", timeout=30)
    document: dict[str, Any] = answer.json()
    return answer.status_code, document


def failing(server: BurrowServer) -> bool:
    return health(server)[0] == 503


def live(server: BurrowServer) -> bool:
    answer = httpx.get(f"{server.url}/health?live")
    return answer.status_code == 200 and answer.json() == {"status": "live"}


# SQLite -----------------------------------------------------------------------------------


def delete_files(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink()


def replace_file(database: Path) -> None:
    """What a restore from a copy does: another file under the same name."""
    copy = database.with_name("copy.db")
    shutil.copyfile(database, copy)
    copy.replace(database)


@pytest.mark.parametrize(("fault", "says"), [(delete_files, "deleted"), (replace_file, "replaced")])
def test_a_database_file_deleted_or_replaced_refuses_writes(
    start_server: ServerFactory,
    tmp_path: Path,
    fault: Callable[[Path], None],
    says: str,
) -> None:
    database = tmp_path / "data" / "burrow.db"
    server = start_server("sqlite:///data/burrow.db")
    assert put(server, "before") == 201
    fault(database)
    # At once, before any periodic look: each write's fsync is followed by one. (Before,
    # every one was a 201, and was gone once the server restarted on the files there.)
    statuses = [put(server, f"m{i}") for i in range(50)]
    assert statuses == [503] * 50
    status, document = health(server)
    assert status == 503
    assert document == {
        "status": "failing",
        "reason": f"sqlite: {database} was {says} under the running server; {REFUSED}",
    }
    assert live(server)
    lines = server.log().splitlines()
    assert len([line for line in lines if REFUSED in line]) == 1, server.log()
    assert not [line for line in lines if "PUT /v1.0" in line], "one line, not one per request"


def test_an_idle_server_notices_its_deleted_files(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server("sqlite:///burrow.db")
    assert put(server, "before") == 201
    delete_files(tmp_path / "burrow.db")
    eventually(lambda: REFUSED in server.log(), "the log to say the file was deleted")
    assert failing(server)
    assert put(server, "after") == 503


def test_health_fails_while_the_database_cannot_be_written_then_recovers(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server("sqlite:///burrow.db")
    assert put(server, "before") == 201
    database = tmp_path / "burrow.db"
    with unwritable(database, Path(f"{database}-wal")):
        # Noticed with no write asked for, then every write fails.
        eventually(lambda: failing(server), "/health to fail")
        assert put(server, "during") == 503
        status, document = health(server)
        assert (status, document["status"]) == (503, "failing")
        assert "writes fail" in document["reason"], document
        assert live(server)
    eventually(lambda: health(server) == (200, {"status": "ok"}), "/health to recover")
    assert put(server, "after") == 201


@dataclass
class LoopDisk:
    """A small ext4 filesystem in a file (`image`), mounted at `mount` through a loop device."""

    image: Path
    mount: Path

    @contextlib.contextmanager
    def failing(self) -> Iterator[None]:
        """Writes reach the page cache and fail on their way to the disk: fsync says EIO."""
        with unwritable(self.image):
            yield


@pytest.fixture
def loop_disk(tmp_path: Path) -> Iterator[LoopDisk]:
    """Needs root (mount, a loop device); skipped, saying why, where that is not there.
    Ask for it before `start_server`, so that the servers are gone before it unmounts."""
    disk = LoopDisk(tmp_path / "disk.img", tmp_path / "disk")
    disk.mount.mkdir()
    with disk.image.open("wb") as image:
        image.truncate(32 << 20)
    for command in (
        ["mkfs.ext4", "-q", "-F", str(disk.image)],
        ["mount", "-o", "loop", str(disk.image), str(disk.mount)],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            pytest.skip(f"no loop-mounted filesystem here ({command[0]}): {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "--lazy", str(disk.mount)], check=True, timeout=60)


def test_a_failed_fsync_refuses_writes_and_fails_health_until_a_restart(
    loop_disk: LoopDisk, start_server: ServerFactory
) -> None:
    database = loop_disk.mount / "burrow.db"
    server = start_server(f"sqlite:///{database}")
    assert put(server, "before") == 201
    with loop_disk.failing():
        assert put(server, "lost") == 503
    assert put(server, "after") == 503  # the disk takes writes again; the server cannot know
    status, document = health(server)  # what the kernel dropped, and trusts it no more
    assert (status, document["status"]) == (503, "failing")
    assert document["reason"].startswith(f"sqlite: fsync of {database}-wal failed ([Errno 5]")
    assert document["reason"].endswith(REFUSED)
    assert live(server)
    server.kill()


def test_health_takes_live_and_nothing_else(start_server: ServerFactory) -> None:
    server = start_server("memory://")
    status, document = health(server)
    assert (status, document["status"]) == (200, "ok")
    assert live(server)
    for query in ("live=1", "live&live", "ready", "live&x=1"):
        assert httpx.get(f"{server.url}/health?{query}").status_code == 400, query
    assert httpx.post(f"{server.url}/health?live").status_code == 405


# Engines, proxies and rings ----------------------------------------------------------------


def test_a_redis_that_is_down_fails_health(start_server: ServerFactory, tmp_path: Path) -> None:
    redis = start_redis(tmp_path / "redis")
    server = start_server(f"redis://127.0.0.1:{redis.port}/0")
    assert health(server) == (200, {"status": "ok"})
    redis.kill()
    status, document = health(server)
    assert (status, document["status"]) == (503, "failing")
    assert document["reason"].startswith("redis unreachable"), document
    assert live(server)


def test_a_postgresql_that_is_down_fails_health(
    start_server: ServerFactory, postgres_cluster: PostgresCluster
) -> None:
    server = start_server(postgres_cluster.url())
    assert health(server) == (200, {"status": "ok"})
    postgres_cluster.kill()
    status, document = health(server)
    assert (status, document["status"]) == (503, "failing")
    assert document["reason"].startswith("postgresql unavailable"), document


def test_a_proxy_reports_its_remote_server(start_server: ServerFactory, tmp_path: Path) -> None:
    remote = start_server("sqlite:///remote.db")
    proxy = start_server(f"http://{remote.url.removeprefix('http://')}")
    assert health(proxy) == (200, {"status": "ok"})
    delete_files(tmp_path / "remote.db")
    eventually(lambda: failing(proxy), "the proxy's /health to fail")
    status, document = health(proxy)
    assert document["status"] == "failing"
    assert document["reason"].startswith(f"{remote.url}: sqlite: "), document
    remote.kill()
    status, document = health(proxy)
    assert (status, document["status"]) == (503, "failing")
    assert document["reason"].startswith(f"cannot reach {remote.url}"), document


def test_a_ring_serving_with_members_down_is_degraded_until_none_is_left(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    one, two = start_server("memory://"), start_server("memory://")
    members = [(one.url, "az1"), (two.url, "az1")]
    ring = start_server(f"ring:///{ring_file(tmp_path / 'ring.toml', members)}")
    assert health(ring)[0] == 200 and health(ring)[1]["status"] == "ok"
    one.kill()
    status, document = health(ring)
    assert (status, document["status"]) == (200, "degraded"), document
    assert document["reason"] == f"1 of 2 members cannot serve: {one.url}", document
    assert put(ring, "m") == 201
    two.kill()
    status, document = health(ring)
    assert (status, document["status"]) == (503, "failing"), document
    assert document["reason"] == "no member can serve", document


def test_a_ring_member_that_does_not_answer_is_counted_out_in_time(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    one = start_server("memory://")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections, never answers
        mute = f"http://127.0.0.1:{silent.getsockname()[1]}"
        members = [(one.url, "az1"), (mute, "az1")]
        ring = start_server(f"ring:///{ring_file(tmp_path / 'ring.toml', members)}")
        status, document = health(ring)
    assert (status, document["status"]) == (200, "degraded"), document
    assert document["reason"] == f"1 of 2 members cannot serve: {mute}"
    (silent_member,) = [m for m in document["members"] if m["url"] == mute]
    assert silent_member["reason"] == "no health report within 2 s"
