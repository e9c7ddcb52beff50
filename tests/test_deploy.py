"""Deployment 2 for real: N stateless servers on one Redis, `--workers` (on Redis, and on
one SQLite file), and nginx in front."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.engines.redis import Deployment, free_port, wait_for
from tests.servers import BurrowServer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_url(redis_standalone: Deployment) -> str:
    redis_standalone.flush()
    return f"redis://127.0.0.1:{redis_standalone.servers[0].port}/0"


@pytest.fixture(params=["redis", "sqlite"])
def shared_url(request: pytest.FixtureRequest) -> str:
    """A store the workers share: Redis, or one SQLite file (in the server's directory)."""
    if request.param == "sqlite":
        return "sqlite:///workers.db"
    url: str = request.getfixturevalue("redis_url")
    return url


def workers_of(server: BurrowServer) -> set[int]:
    return set(server.workers())


def test_workers_share_a_port_wake_each_other_and_are_replaced(
    start_server: ServerFactory, shared_url: str
) -> None:
    server = start_server(shared_url, "--workers", "2", "--access-log")
    wait_for(lambda: len(workers_of(server)) == 2, "two workers")
    # Long polls held by both workers are all woken by one PUT, which one of them serves:
    # the other learns of it across processes (through Redis, or a datagram from the
    # other SQLite worker). The kernel spreads new connections, so a round or two is
    # enough to have waiters on both.
    for round_ in range(5):
        queue = f"q{round_}"
        with ThreadPoolExecutor(8) as pool:
            waiting = [
                pool.submit(
                    httpx.get, f"{server.url}/v1.0/a/{queue}", params={"wait": 10}, timeout=20
                )
                for _ in range(8)
            ]
            time.sleep(0.5)
            started = time.monotonic()
            assert httpx.put(f"{server.url}/v1.0/a/{queue}/m", content=b"x").status_code == 201
            assert [w.result().status_code for w in waiting] == [200] * 8
            assert time.monotonic() - started < 1
        if len(server.served_by(f"GET /v1.0/a/{queue}")) == 2:
            break
    else:
        pytest.fail("the waiters never landed on both workers")
    # A worker killed with -9 is replaced; the port keeps answering meanwhile.
    first = min(workers_of(server))
    os.kill(first, signal.SIGKILL)
    assert all(httpx.get(f"{server.url}/health").status_code == 200 for _ in range(10))
    wait_for(lambda: len(workers_of(server)) == 3, "a new worker")
    assert server.stop() == 0  # SIGTERM: every worker stops, the parent exits cleanly
    for pid in workers_of(server) - {first}:
        wait_for(functools.partial(_gone, pid), f"worker {pid} to exit")


def _gone(pid: int) -> bool:
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_are_refused_for_a_backend_in_one_process(start_server: ServerFactory) -> None:
    with pytest.raises(RuntimeError, match="needs a backend shared between processes"):
        start_server("memory://", "--workers", "2")


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[Path, list[subprocess.Popen[bytes]]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield tmp_path, started
    for process in started:
        process.kill()
        process.wait()


def test_the_nginx_example_balances_and_fails_over(
    start_server: ServerFactory,
    redis_url: str,
    nginx: tuple[Path, list[subprocess.Popen[bytes]]],
) -> None:
    workdir, started = nginx
    one, two = start_server(redis_url, "--access-log"), start_server(redis_url, "--access-log")
    port = free_port()
    config = (REPO / "deploy" / "nginx.conf").read_text()
    config = config.replace("127.0.0.1:8001", one.url.removeprefix("http://"))
    config = config.replace("127.0.0.1:8002", two.url.removeprefix("http://"))
    config = config.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{port}")
    (workdir / "nginx.conf").write_text(config)
    (workdir / "tmp").mkdir()
    with (workdir / "nginx.log").open("wb") as log:
        started.append(
            subprocess.Popen(
                ["nginx", "-p", str(workdir), "-e", "stderr", "-c", str(workdir / "nginx.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    front = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(front), "nginx")
    with httpx.Client(base_url=front, timeout=10) as http:
        for i in range(40):
            assert http.put(f"/v1.0/acme/jobs/j{i}", content=b"work").status_code == 201
        assert one.log().count("PUT /v1.0/acme") > 5 and two.log().count("PUT /v1.0/acme") > 5
        one.kill()
        for i in range(40, 60):  # refused by the dead one: nginx retries on the other
            assert http.put(f"/v1.0/acme/jobs/j{i}", content=b"work").status_code == 201
        claimed = http.post("/v1.0/acme/jobs", params={"limit": 100, "hide": 60, "detail": "id"})
    assert sorted(claimed.json()) == sorted(f"j{i}" for i in range(60))


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.TransportError:
        return False
