"""`burrow serve --workers 2` on one SQLite file: the v1.0 rules hold across the workers.

Each test spreads its requests over many connections, which the kernel spreads over
the workers, and checks in the access log that both workers served them. (The contract
and API suites also run against such a server: tests/backends/conftest.py, test_api.py.)
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.waiting import PATIENCE, wait_until

CLAIMERS = 16


def two_workers(start: ServerFactory, *extra: str) -> BurrowServer:
    server = start("sqlite:///workers.db", "--workers", "2", "--access-log", *extra)
    wait_until(lambda: len(server.workers()) == 2, "two workers")
    return server


def listed_ids(url: str) -> list[str]:
    """Every message id of the queue, in listing order, a page at a time."""
    ids: list[str] = []
    with httpx.Client(timeout=PATIENCE) as http:
        while True:
            params: dict[str, str | int] = {"detail": "id", "limit": 1000, "match_hidden": "true"}
            if ids:
                params["marker"] = ids[-1]
            page = http.get(url, params=params)
            if page.status_code == 404:  # no (more) messages
                return ids
            assert page.status_code == 200, page.text
            ids += page.json()


def test_claims_spread_over_both_workers_never_share_a_message(
    start_server: ServerFactory,
) -> None:
    server = two_workers(start_server)
    queue = f"{server.url}/v1.0/acct/jobs"
    ids = [f"m{i:04d}" for i in range(1000)]
    for first in range(0, len(ids), 200):
        batch = [{"id": id_, "body": "work"} for id_ in ids[first : first + 200]]
        assert httpx.put(queue, json=batch).status_code == 201
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(_: int) -> None:
        with httpx.Client(timeout=PATIENCE) as http:  # one connection: one worker
            while True:
                answer = http.post(queue, params={"limit": 10, "hide": 600, "detail": "id"})
                if answer.status_code == 404:  # nothing left (an empty queue is no queue)
                    return
                assert answer.status_code == 200, answer.text
                with lock:
                    claimed.extend(answer.json())
                for id_ in answer.json():
                    assert http.delete(f"{queue}/{id_}").status_code == 204

    with ThreadPoolExecutor(CLAIMERS) as pool:
        list(pool.map(claimer, range(CLAIMERS)))
    assert len(claimed) == len(set(claimed)), "a message was claimed twice"
    assert sorted(claimed) == ids, "a message was lost"
    assert len(server.served_by("POST /v1.0/acct/jobs")) == 2


def test_pops_spread_over_both_workers_never_share_a_message(start_server: ServerFactory) -> None:
    server = two_workers(start_server)
    queue = f"{server.url}/v1.0/acct/pops"
    ids = [f"p{i:04d}" for i in range(600)]
    assert httpx.put(queue, json=[{"id": id_, "body": "x"} for id_ in ids]).status_code == 201

    def popper(_: int) -> list[str]:
        popped: list[str] = []
        with httpx.Client(timeout=PATIENCE) as http:
            while (answer := http.delete(queue, params={"limit": 5, "detail": "id"})).is_success:
                popped += answer.json()
            assert answer.status_code == 404, answer.text  # nothing left
        return popped

    with ThreadPoolExecutor(CLAIMERS) as pool:
        popped = [id_ for part in pool.map(popper, range(CLAIMERS)) for id_ in part]
    assert sorted(popped) == ids, "a message was popped twice, or lost"
    assert len(server.served_by("DELETE /v1.0/acct/pops")) == 2


def test_a_listing_keeps_creation_order_across_workers(start_server: ServerFactory) -> None:
    server = two_workers(start_server)
    queue = f"{server.url}/v1.0/acct/order"
    ids = [f"z{59 - i:02d}" for i in range(60)]  # ids in no order of their own
    for id_ in ids:  # a connection each: the kernel spreads them over the workers
        assert httpx.put(f"{queue}/{id_}", content=b"x").status_code == 201
    assert len(server.served_by("PUT /v1.0/acct/order")) == 2
    assert listed_ids(queue) == ids
    after = httpx.get(queue, params={"detail": "id", "marker": ids[29]}).json()
    assert after == ids[30:]


def test_a_queue_quota_is_exact_across_workers(start_server: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "burrow.toml").write_text("[limits]\nmax_queue_messages = 100\n")
    server = two_workers(start_server, "--config", "burrow.toml")
    queue = f"{server.url}/v1.0/acct/capped"

    def putter(worker: int) -> list[int]:
        with httpx.Client(timeout=PATIENCE) as http:
            return [http.put(f"{queue}/w{worker}-{i}", content=b"x").status_code for i in range(20)]

    with ThreadPoolExecutor(CLAIMERS) as pool:
        statuses = [status for part in pool.map(putter, range(CLAIMERS)) for status in part]
    assert statuses.count(201) == 100
    assert len(listed_ids(queue)) == 100
    assert len(server.served_by("PUT /v1.0/acct/capped")) == 2


def put_until_stopped(
    url: str, name: str, acknowledged: list[str], stop: threading.Event
) -> Callable[[], None]:
    """A writer PUTting one message after another on a connection of its own, noting those
    answered 201; a failed connection is opened anew (it may land on another worker)."""

    def run() -> None:
        sent = 0
        while not stop.is_set():
            with httpx.Client(timeout=PATIENCE) as http:
                try:
                    while not stop.is_set():
                        id_ = f"{name}-{sent:05d}"
                        sent += 1
                        if http.put(f"{url}/{id_}", content=b"kept").status_code == 201:
                            acknowledged.append(id_)
                except httpx.TransportError:
                    pass  # its worker was killed: not acknowledged

    return run


def test_a_killed_worker_and_a_killed_server_lose_nothing_acknowledged(
    start_server: ServerFactory,
) -> None:
    server = two_workers(start_server)
    queue = f"{server.url}/v1.0/acct/kept"
    acknowledged: list[str] = []
    stop = threading.Event()
    writers = [
        threading.Thread(target=put_until_stopped(queue, f"w{i}", acknowledged, stop))
        for i in range(8)
    ]
    for writer in writers:
        writer.start()
    try:
        wait_until(lambda: len(acknowledged) >= 200, "200 acknowledged PUTs")
        first = server.workers()[0]
        os.kill(first, signal.SIGKILL)  # mid-stream: the other worker goes on
        wait_until(lambda: len(server.workers()) == 3, "a worker in place of the killed one")
        seen = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= seen + 200, "200 more acknowledged PUTs")
        for pid in [server.pid, *server.workers()[1:]]:  # the whole server, mid-stream
            os.kill(pid, signal.SIGKILL)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    for pid in server.workers():
        wait_until(functools.partial(_gone, pid), f"worker {pid} to be gone")
    restarted = start_server("sqlite:///workers.db")
    kept = set(listed_ids(f"{restarted.url}/v1.0/acct/kept"))
    assert set(acknowledged) <= kept, f"{len(set(acknowledged) - kept)} acknowledged PUTs lost"


def _gone(pid: int) -> bool:
    """Whether the process has ended (a zombie, killed but not reaped yet, has)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status
