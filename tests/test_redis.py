"""Burrow servers sharing Redis: cross-server long polls, claims, Cluster, failover.

Real `burrow serve` processes on real Redis deployments (tests/engines/redis.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import quote

import httpx
import pytest
import redis
from redis.crc import key_slot

from burrow.backends import open_backend
from burrow.backends.redis import RedisBackend
from burrow.backends.redis_wakeups import channel_for
from burrow.errors import BackendUnavailable, ConfigError
from burrow.model import ALL_ITEMS, Attributes, Filters, MessageCounts, NewMessage
from tests.backends.test_contract import by_state
from tests.conftest import ServerFactory
from tests.engines.redis import (
    HOST,
    Deployment,
    RedisProcess,
    free_port,
    sentinel_master_port,
    wait_for,
)
from tests.waiting import LONG_POLL, PATIENCE, eventually, in_background, result_within

Q = "q"


def ids_in(server_url: str, account: str) -> set[str]:
    """Every message id in the account's queue, hidden ones too."""
    found: list[str] = []
    with httpx.Client(base_url=server_url, timeout=10) as http:
        while True:
            params: dict[str, str | int] = {"limit": 1000, "detail": "id", "match_hidden": "true"}
            if found:
                params["marker"] = found[-1]
            response = http.get(f"/v1.0/{account}/{Q}", params=params)
            if response.status_code == 404:
                return set(found)
            response.raise_for_status()
            found += response.json()


def test_a_put_on_one_server_wakes_a_long_poll_on_another(
    start_server: ServerFactory, redis_standalone: Deployment, redis_backend_url: str
) -> None:
    one, two = start_server(redis_backend_url), start_server(redis_backend_url)
    with redis_standalone.servers[0].client() as engine:
        waiting = in_background(
            lambda: httpx.get(
                f"{one.url}/v1.0/a/{Q}", params={"wait": LONG_POLL}, timeout=LONG_POLL + PATIENCE
            )
        )
        # Server one subscribes to the queue's channel once its request waits.
        channel = channel_for("a", Q)
        wait_for(lambda: engine.pubsub_numsub(channel)[0][1] == 1, "the long poll", PATIENCE)
        assert httpx.put(f"{two.url}/v1.0/a/{Q}/m", content=b"hi").status_code == 201
        response = result_within(waiting, "the long poll's answer")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()] == ["m"]


def test_b_concurrent_claimers_on_two_servers_claim_each_message_once(
    start_server: ServerFactory, redis_backend_url: str
) -> None:
    servers = [start_server(redis_backend_url).url, start_server(redis_backend_url).url]
    everything = [f"m{i:04}" for i in range(1000)]
    batch = [{"id": i, "body": i} for i in everything]
    assert httpx.put(f"{servers[0]}/v1.0/a/{Q}", json=batch).status_code == 201

    def claimer(n: int) -> list[str]:
        got: list[str] = []
        with httpx.Client(base_url=servers[n % 2], timeout=10) as http:
            for _ in range(1000):
                response = http.post(
                    f"/v1.0/a/{Q}", params={"limit": 10, "hide": 60, "detail": "id"}
                )
                if response.status_code == 404:
                    return got
                response.raise_for_status()
                got += response.json()
        raise AssertionError("claimer did not run out of messages")

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(claimer, range(16)))
    claimed = [i for result in results for i in result]
    assert sorted(claimed) == everything
    assert sum(1 for result in results if result) > 1  # the work was actually shared


def test_c_api_on_a_cluster(start_server: ServerFactory, redis_cluster_backend_url: str) -> None:
    names = ["a", "b{x}", "c}%"]  # hash-tag characters in names must not break the tag
    with httpx.Client(base_url=start_server(redis_cluster_backend_url).url) as http:
        for account in names:
            path = f"/v1.0/{quote(account, safe='')}/{Q}"
            assert http.put(f"{path}/m1", content=b"one").status_code == 201
            assert http.put(f"{path}/m2", content=b"two").status_code == 201
        assert http.put(f"/v1.0/a/{Q}/m1", content=b"uno").status_code == 204
        assert http.get("/v1.0").json() == names
        claimed = http.post(f"/v1.0/a/{Q}", params={"limit": 1, "hide": 60, "detail": "all"})
        assert claimed.json() == [{"id": "m1", "ttl": 600, "hide": 60, "body": "uno"}]
        popped = http.delete(f"/v1.0/a/{Q}", params={"detail": "id"})
        assert popped.json() == ["m2"]
        assert http.get(f"/v1.0/a/{Q}").status_code == 404
        assert http.delete(f"/v1.0/{quote('b{x}', safe='')}").status_code == 204
        assert http.get("/v1.0").json() == ["a", "c}%"]
        assert http.get(f"/v1.0/a/{Q}/m1", params={"detail": "body"}).content == b"uno"


class WriteLoad:
    """Threads PUTting new messages into several accounts; remembers what was acknowledged."""

    def __init__(self, server_url: str, accounts: list[str], threads: int = 4) -> None:
        self.server_url = server_url
        self.accounts = accounts
        self.acked: dict[str, set[str]] = {a: set() for a in accounts}
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.server_url, timeout=5) as http:
            for i in range(100_000):
                if self._stop.is_set():
                    return
                account = self.accounts[(n + i) % len(self.accounts)]
                message = f"w{n}-{i}"
                try:
                    status = http.put(f"/v1.0/{account}/{Q}/{message}", content=b"x").status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    if status == 201:
                        self.acked[account].add(message)
                    else:
                        self.refused += 1

    def count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self.acked.values())

    @contextmanager
    def running(self) -> Iterator[WriteLoad]:
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join()

    def lost(self) -> int:
        return sum(len(acked - ids_in(self.server_url, a)) for a, acked in self.acked.items())


def survive_failover(
    server_url: str,
    accounts: list[str],
    kill: Callable[[], RedisProcess],
    promoted: Callable[[], bool],
) -> tuple[WriteLoad, int]:
    """Kill a primary under load, wait for its replica to take over, restart the dead
    node as a replica; returns the load and the writes acknowledged after the failover."""
    with WriteLoad(server_url, accounts).running() as load:
        wait_for(lambda: load.count() >= 200, "writes before the failover", 10)
        dead = kill()
        wait_for(promoted, "a replica to be promoted", 20)
        at_failover = load.count()
        dead.start()
        # Sentinel notices a returning old primary on its 10 s INFO round, then it syncs.
        wait_for(lambda: is_synced_replica(dead), "the old primary to rejoin as a replica", 45)
        wait_for(lambda: load.count() > at_failover + 50, "writes after the failover", 15)
    return load, load.count() - at_failover


def is_synced_replica(node: RedisProcess) -> bool:
    info = node.info("replication")
    return info["role"] == "slave" and info.get("master_link_status") == "up"


def check_still_serving(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=5) as http:
        wait_for(
            lambda: http.put(f"/v1.0/after/{Q}/m", content=b"ok").status_code in (201, 204),
            "a write after the failover",
            10,
        )
        assert http.get(f"/v1.0/after/{Q}/m", params={"detail": "body"}).content == b"ok"


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "async-replication"])
def test_d_sentinel_failover_keeps_serving(
    start_server: ServerFactory, redis_sentinel: Deployment, durable: bool
) -> None:
    url = redis_sentinel.sentinel_url + ("?durable=1&wait_ms=500" if durable else "")
    server = start_server(url)
    master, replica = redis_sentinel.servers
    sentinel = redis_sentinel.sentinels[0]

    def kill() -> RedisProcess:
        master.kill()
        # Back as a replica of the new primary, as an operator would restart it.
        master.args += ["--replicaof", HOST, str(replica.port)]
        return master

    load, after = survive_failover(
        server.url,
        ["s1", "s2"],
        kill,
        lambda: sentinel_master_port(sentinel) == replica.port,
    )
    check_still_serving(server.url)
    assert server.process is not None and server.process.poll() is None
    lost = load.lost()
    print(f"sentinel failover, durable={durable}: {load.count()} acked ({after} after the")
    print(f"  failover), {load.refused} refused or failed, {lost} acknowledged PUTs lost")
    if durable:
        assert lost == 0


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "async-replication"])
def test_e_cluster_failover_keeps_serving(
    start_server: ServerFactory, redis_failover_cluster: Deployment, durable: bool
) -> None:
    cluster = redis_failover_cluster
    server = start_server(cluster.cluster_url + ("?durable=1&wait_ms=500" if durable else ""))
    accounts = [f"c{i}" for i in range(8)]
    slot = key_slot(f"b:{{{accounts[0].encode().hex()}}}:a".encode())
    victim = owner_of(cluster.servers[0], slot, cluster)
    survivor = next(n for n in cluster.servers if n.port != victim.port)

    def kill() -> RedisProcess:
        victim.kill()
        return victim

    load, after = survive_failover(
        server.url,
        accounts,
        kill,
        lambda: owner_of(survivor, slot, cluster).port != victim.port,
    )
    check_still_serving(server.url)
    lost = load.lost()
    print(f"cluster failover, durable={durable}: {load.count()} acked ({after} after the")
    print(f"  failover), {load.refused} refused or failed, {lost} acknowledged PUTs lost")
    if durable:
        assert lost == 0


def owner_of(node: RedisProcess, slot: int, cluster: Deployment) -> RedisProcess:
    """The primary serving `slot`, as `node` sees the cluster."""
    with redis.Redis(HOST, node.port, socket_timeout=2) as client:
        for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(s for s in cluster.servers if s.port == int(primary[1]))
    raise AssertionError(f"slot {slot} is not served")


async def test_sweeper_purges_expired_messages_and_their_keys(
    redis_standalone: Deployment, redis_backend_url: str
) -> None:
    async with RedisBackend(redis_backend_url, sweep_interval=0.2) as backend:
        await backend.put_messages("a", Q, [NewMessage("m", b"x" * 100, ttl=1, hide=0)])
        await backend.put_messages("b", Q, [NewMessage("m", b"y", ttl=0, hide=0)])
        with redis_standalone.servers[0].client() as engine:

            async def swept() -> bool:
                return (
                    not engine.keys("b:{61}:q*") and engine.zscore("b:{idx}:accounts", "a") is None
                )

            # "a" is hex 61: once swept, only its generation counter remains.
            await eventually(swept, "the sweeper to purge account a")
            assert engine.keys("b:{61}:*") == [b"b:{61}:a"]
            assert engine.hget("b:{61}:a", "bytes") == b"0"
            assert engine.zrange("b:{idx}:accounts", 0, -1) == [b"b"]
        assert await backend.get_accounts(ALL_ITEMS) == ["b"]


async def test_a_message_stored_before_receives_existed_reads_as_never_received(
    redis_standalone: Deployment, redis_backend_url: str
) -> None:
    """The previous version kept a message in `o`, `r`, `h`, `x` and `b` only: such a
    message reads with receives 0, receipt "", meta b"" and sent 0.0 (unknown), and is
    received, counted and deleted by receipt as any other."""
    async with RedisBackend(redis_backend_url) as backend:
        await backend.put_messages(
            "a", Q, [NewMessage("old", b"x", 600, 0, b"meta"), NewMessage("later", b"y", 600, 60)]
        )
        with redis_standalone.servers[0].client() as engine:
            engine.delete("b:{61}:q:71:m")  # "a" and "q" in hex
            previous = [b"b:{61}:q:71:" + key for key in (b"b", b"h", b"o", b"r", b"x")]
            assert sorted(engine.keys("b:{61}:q:71:*")) == previous
        old = await backend.get_message("a", Q, "old")
        assert (old.body, old.receives, old.receipt, old.meta) == (b"x", 0, "", b"")
        assert (old.sent, old.first_received) == (0.0, 0.0)
        assert by_state(await backend.count_messages("a", Q)) == (1, 0, 1)
        (received,) = await backend.update_messages(
            "a", Q, Attributes(hide=60, receipt="r"), Filters(limit=1)
        )
        assert (received.id, received.receives, received.receipt) == ("old", 1, "r")
        assert received.first_received > 0
        assert by_state(await backend.count_messages("a", Q)) == (0, 1, 1)
        assert (await backend.delete_message("a", Q, "old", receipt="r")).id == "old"


async def test_a_received_message_is_in_flight_while_hidden_and_not_expired(
    redis_standalone: Deployment, redis_backend_url: str
) -> None:
    """Counts come from the received messages' own deadlines, which follow every hide."""
    async with RedisBackend(redis_backend_url, sweep_interval=3600) as backend:

        async def counts() -> MessageCounts:
            return await backend.count_messages("a", Q)

        async def shown() -> bool:
            return by_state(await counts()) == (1, 0, 0)

        await backend.put_message("a", Q, NewMessage("m", b"x", 600, 0))
        await backend.update_messages("a", Q, Attributes(hide=1, receipt="r"), ALL_ITEMS)
        assert by_state(await counts()) == (0, 1, 0)
        await eventually(shown, "the receive's hide to end")
        await backend.update_messages("a", Q, Attributes(hide=60), ALL_ITEMS)  # no receive
        assert by_state(await counts()) == (0, 1, 0)  # but received before
        await backend.update_message("a", Q, "m", Attributes(hide=0))
        assert by_state(await counts()) == (1, 0, 0)
        await backend.put_message("a", Q, NewMessage("m", b"y", 600, 60))  # a replace
        assert by_state(await counts()) == (0, 0, 1)
        await backend.update_messages(
            "a", Q, Attributes(ttl=1, hide=60, receipt="r2"), Filters(match_hidden=True)
        )
        assert by_state(await counts()) == (0, 1, 0)

        async def expired() -> bool:  # not yet purged: this backend's sweeper sleeps
            return by_state(await counts()) == (0, 0, 0)

        await eventually(expired, "the message to expire")
        with redis_standalone.servers[0].client() as engine:
            assert engine.zscore("b:{61}:q:71:o", "m") is not None  # still stored


def test_bad_urls_are_refused() -> None:
    for url in (
        "redis+sentinel://127.0.0.1:1",  # no master name
        "redis://127.0.0.1:1/x",
        "redis+cluster://127.0.0.1:1/0",
        "redis://127.0.0.1:1/0?durable=1&bogus=2",
        "redis://127.0.0.1:1/0?max_connections=0",
    ):
        with pytest.raises(ConfigError):
            open_backend(url)


async def test_an_unreachable_redis_is_a_503() -> None:
    with pytest.raises(BackendUnavailable):
        async with open_backend(f"redis://{HOST}:{free_port()}/0"):
            pass
