"""One client, several `burrow serve` processes (on SQLite files): placement, failover, waits."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

from burrow.cli_client import register
from burrow.client import AsyncClient, Client
from burrow.client.servers import Servers
from burrow.errors import BackendUnavailable, MessageNotFound
from burrow.placement import message_key
from tests.servers import BurrowServer
from tests.waiting import LONG_POLL, in_background, result_within, still_waiting, within

Trio = list[BurrowServer]


@dataclass(frozen=True)
class Named:
    url: str


def start_all(workdir: Path, names: str = "abc") -> Trio:
    """One server per name, each on its own SQLite file, started side by side."""
    servers = [BurrowServer(workdir, f"sqlite:///{name}.db") for name in names]
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(BurrowServer.start, servers))
    except BaseException:
        for server in servers:
            server.kill()
        raise
    return servers


def restart(server: BurrowServer) -> BurrowServer:
    """The same SQLite file served again on the same port, as after a crash and reboot."""
    port = server.url.rsplit(":", 1)[1]
    return BurrowServer(server.workdir, server.backend, "--port", port).start()


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    """Three servers shared by the tests that kill none (each uses its own account)."""
    servers = start_all(tmp_path_factory.mktemp("trio"))
    yield servers
    for server in servers:
        server.kill()


@pytest.fixture
def own_trio(tmp_path: Path) -> Iterator[Trio]:
    """Three servers for one test, which may kill and restart them (replacing list items)."""
    servers = start_all(tmp_path)
    yield servers
    for server in servers:
        server.kill()


def urls(servers: Trio) -> list[str]:
    return [server.url for server in servers]


def ids_on(server: BurrowServer, account: str, queue: str = "q") -> list[str]:
    """Every message id (hidden ones too) that one server holds in a queue."""
    with Client(server.url, account) as direct:
        return [m.id for m in direct.queue(queue).follow(wait=0, match_hidden=True)]


def where(servers: Trio, account: str, queue: str = "q") -> dict[str, int]:
    """Which server (index) holds each message id; an id on two servers fails."""
    found: dict[str, int] = {}
    for index, server in enumerate(servers):
        for message_id in ids_on(server, account, queue):
            assert message_id not in found, f"{message_id} is on two servers"
            found[message_id] = index
    return found


def put_on(server: BurrowServer, account: str, *ids: str, queue: str = "q") -> None:
    with Client(server.url, account) as direct:
        for message_id in ids:
            direct.queue(queue).put(message_id.encode(), message_id)


def holds(server: BurrowServer, account: str, message_id: str, queue: str = "q") -> bool:
    with Client(server.url, account) as direct:
        try:
            direct.queue(queue).get_one(message_id)
        except MessageNotFound:
            return False
        return True


def refused_url() -> tuple[socket.socket, str]:
    """A port that is bound but never listens: connections to it are refused."""
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    return unused, f"http://127.0.0.1:{unused.getsockname()[1]}"


# Placement ------------------------------------------------------------------------------------


async def test_writes_spread_by_id_and_each_id_stays_on_its_server(
    trio: Trio, account: str
) -> None:
    ids = [f"m{n}" for n in range(300)]
    with Client(urls(trio), account) as client:
        queue = client.queue("q")
        for message_id in ids:
            queue.put(b"first", message_id)
    placed = where(trio, account)
    assert sorted(placed) == sorted(ids)
    counts = Counter(placed.values())
    assert all(60 <= counts[index] <= 140 for index in range(3)), counts

    # Replaces land where the first write did, from any client, whatever the list's order.
    async with AsyncClient(urls(trio)[::-1], account) as other:
        for message_id in ids:
            await other.queue("q").put(b"second", message_id)
        assert (await other.queue("q").get_one("m7")).body == b"second"
    assert where(trio, account) == placed


def test_puts_without_an_id_are_placed_too(trio: Trio, account: str) -> None:
    with Client(urls(trio), account) as client:
        made = [client.queue("q").put("job") for _ in range(60)]
        batch = client.queue("q").put_many(["x", "y", "z"])
    placed = where(trio, account)
    assert set(placed) == {*made, *batch}
    assert len(set(placed.values())) == 3
    assert len({placed[message_id] for message_id in batch}) == 1  # a batch stays whole


# Failover -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kill", [False, True], ids=["all-up", "one-killed"])
def test_a_producer_sees_no_failure_and_nothing_acknowledged_is_lost(
    own_trio: Trio, account: str, kill: bool
) -> None:
    servers = own_trio
    acknowledged: list[str] = []
    halfway = threading.Event()

    def kill_one() -> None:
        if halfway.wait(30):
            servers[1].kill()  # SIGKILL, most likely with a put in flight

    killer = threading.Thread(target=kill_one)
    with Client(urls(servers), account) as producer:
        queue = producer.queue("jobs")
        if kill:
            killer.start()
        for n in range(300):
            if n == 100:
                halfway.set()
            acknowledged.append(queue.put(f"job {n}"))
        if kill:
            killer.join()
            servers[1] = restart(servers[1])
            # Once its backoff is over, the restarted server takes its share again.
            deadline = time.monotonic() + 40
            while not any(holds(servers[1], account, m, "jobs") for m in acknowledged[-3:]):
                assert time.monotonic() < deadline, "the restarted server took no write"
                time.sleep(0.05)
                acknowledged += [queue.put(f"late {k}") for k in range(3)]

    delivered: Counter[str] = Counter()
    with Client(urls(servers), account) as consumer:
        stats = consumer.queue("jobs").work(lambda m: delivered.update([m.id]), limit=10, wait=0)
    assert stats.failed == 0
    assert set(acknowledged) <= set(delivered), "acknowledged messages were lost"
    duplicates = delivered.total() - len(delivered)
    print(f"{len(acknowledged)} acknowledged, {duplicates} delivered twice (kill={kill})")
    if not kill:
        assert duplicates == 0


def test_an_id_written_while_its_server_was_down_goes_back_there(
    own_trio: Trio, account: str
) -> None:
    servers = own_trio
    with Client(urls(servers), account) as client:
        client.queue("q").put("v1", "x")
    home = where(servers, account)["x"]
    servers[home].kill()
    others = [s for s in servers if s is not servers[home]]
    with Client(urls(servers), account) as client:
        client.queue("q").put("v2", "x")  # the next server in x's order takes it
    fallback = others[where(others, account)["x"]]
    servers[home] = restart(servers[home])
    with Client(urls(servers), account) as client:
        client.queue("q").put("v3", "x")  # back home: replaces v1 there
        # Both copies exist now: delivery is at least once.
        assert sorted(m.body for m in client.queue("q").follow(wait=0)) == [b"v2", b"v3"]
    assert holds(servers[home], account, "x")
    assert holds(fallback, account, "x")


def test_reads_and_writes_go_on_while_a_server_is_unreachable(trio: Trio, account: str) -> None:
    unused, down = refused_url()
    with unused, Client([*urls(trio), down], account) as client:
        queue = client.queue("q")
        ids = [queue.put(f"job {n}") for n in range(30)]
        assert client.queues() == ["q"]
        assert not client.servers.healthy(client.servers.all[3])  # skipped for a while
        taken = [m.id for _ in range(30) for m in queue.pop(limit=5)]
        assert sorted(taken) == sorted(ids)


def test_no_server_reachable_is_backend_unavailable() -> None:
    first, one = refused_url()
    second, other = refused_url()
    with first, second, Client([one, other], "a") as client:
        for attempt in (
            lambda: client.queue("q").put("x"),
            lambda: client.queue("q").claim(wait=1),
            lambda: client.queue("q").get_one("x"),
            client.queues,
        ):
            with pytest.raises(BackendUnavailable, match="no server answered"):
                attempt()


def test_a_failing_server_is_skipped_for_a_doubling_backoff() -> None:
    now = 0.0
    a, b = Named("http://a"), Named("http://b")
    servers = Servers([a, b], clock=lambda: now)
    down = BackendUnavailable("refused")
    for backoff in (1, 2, 4, 8, 16, 30, 30):
        servers.failed(a, down)
        servers.failed(a, down)  # a second failure of the same outage counts once
        assert servers.live() == [b]
        assert servers.placement("any key")[-1] is a
        now += backoff - 0.01
        assert not servers.healthy(a)
        now += 0.01
        assert servers.healthy(a)  # tried again by the next call
    servers.answered(a)
    servers.failed(a, down)
    servers.failed(b, down)
    assert servers.live() == [a, b]  # all skipped: all tried
    now += 1
    assert servers.live() == [a, b] and servers.healthy(a) and servers.healthy(b)


# Reading from every server ------------------------------------------------------------------


def test_a_waiting_claim_takes_a_put_on_any_server(trio: Trio, account: str) -> None:
    with Client(urls(trio), account) as client:
        queue = client.queue("q")
        for server in trio:
            claim = in_background(lambda: queue.claim(limit=5, wait=LONG_POLL))
            time.sleep(0.3)  # by then the claim is most likely long polling; right either way
            assert not claim.done(), "the claim ended with nothing put"
            put_on(server, account, "job")
            claimed = result_within(claim, f"the claim of a put on {server.url}")
            assert [m.body for m in claimed] == [b"job"]
            queue.delete("job")


async def test_an_async_waiting_claim_takes_the_first_of_two_puts(trio: Trio, account: str) -> None:
    async with AsyncClient(urls(trio), account) as client:
        queue = client.queue("q")
        waiting = asyncio.create_task(queue.claim(limit=1, wait=LONG_POLL))
        await still_waiting(waiting)
        await asyncio.to_thread(put_on, trio[0], account, "a")
        await asyncio.to_thread(put_on, trio[2], account, "b")
        claimed = await within(waiting, "the claim's answer")
        assert len(claimed) == 1
        assert {m.id for m in await queue.get(limit=5)} == {"a", "b"} - {claimed[0].id}


def test_claims_never_exceed_their_limit(trio: Trio, account: str) -> None:
    for index, server in enumerate(trio):
        put_on(server, account, *(f"{index}-{n}" for n in range(3)))
    with Client(urls(trio), account) as client:
        queue = client.queue("q")
        claims = [queue.claim(limit=2, hide=100) for _ in range(12)]
    assert all(len(claim) <= 2 for claim in claims)
    claimed = [m.id for claim in claims for m in claim]
    assert sorted(claimed) == sorted(f"{i}-{n}" for i in range(3) for n in range(3))
    assert all(len({m.id[0] for m in claim}) <= 1 for claim in claims)  # one server each


def test_follow_and_work_span_every_server(trio: Trio, account: str) -> None:
    for index, server in enumerate(trio):
        put_on(server, account, f"{index}-a", f"{index}-b")
    with Client(urls(trio), account) as client:
        queue = client.queue("q")
        assert sorted(m.id for m in queue.follow(wait=0)) == sorted(
            f"{i}-{x}" for i in range(3) for x in "ab"
        )
        stream = queue.follow(wait=LONG_POLL)
        assert len([next(stream) for _ in range(6)]) == 6
        following = in_background(lambda: next(stream))
        time.sleep(0.3)  # by then it is most likely long polling; right either way
        put_on(trio[1], account, "new")
        # The marker of each server is its own.
        assert result_within(following, "the follower's next message").id == "new"
        stats = queue.work(lambda m: None, limit=4, wait=0)
        assert stats.done == 7
        assert queue.get(match_hidden=True) == []


def test_listings_merge_and_deletes_reach_every_server(trio: Trio, account: str) -> None:
    put_on(trio[0], account, "1", queue="a")
    put_on(trio[1], account, "2", queue="b")
    put_on(trio[2], account, "3", queue="a")
    put_on(trio[2], account, "4", queue="c")
    with Client(urls(trio), account) as client:
        assert client.queues() == ["a", "b", "c"]
        assert client.queues(limit=2) == ["a", "b"]
        assert client.accounts().count(account) == 1
        assert sorted(client.queue("a").delete_all()) == ["1", "3"]
        assert client.delete() == ["b", "c"]
        assert client.queues() == []


def test_delete_many_finds_each_message_on_its_servers(trio: Trio, account: str) -> None:
    with Client(urls(trio), account) as client:
        queue = client.queue("q")
        made = [queue.put(f"job {n}") for n in range(30)]
        # Messages away from home, as writes during their server's outage leave them.
        away = [f"away {n}" for n in range(6)]
        for message_id in away:
            order = client.servers.placement(message_key(account, "q", message_id))
            put_on(trio[urls(trio).index(order[-1].url)], account, message_id)
        assert queue.delete_many(["absent", *made, *away]) == [*made, *away]
        assert where(trio, account) == {}


def test_delete_many_cannot_say_absent_while_a_server_is_down(trio: Trio, account: str) -> None:
    unused, down = refused_url()
    with unused, Client([*urls(trio), down], account) as client:
        queue = client.queue("q")
        made = [queue.put(f"job {n}") for n in range(10)]
        assert queue.delete_many(made) == made  # each found on a live server
        with pytest.raises(BackendUnavailable):
            queue.delete_many(["absent"])


# The command line ------------------------------------------------------------------------------


def test_cli_with_several_servers(trio: Trio, account: str) -> None:
    group = click.Group("burrow")
    register(group)

    def run(*args: str, **env: str) -> str:
        result = CliRunner().invoke(group, args, env=env)
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    first, second = trio[0].url, trio[1].url
    for n in range(30):
        run("put", account, "q", f"m{n}", "--body", "x", "--server", first, "--server", second)
    placed = where(trio, account)
    assert len(placed) == 30
    assert set(placed.values()) == {0, 1}
    claimed: list[str] = []
    for _ in range(3):
        out = run("claim", account, "q", "--limit", "30", "--json", BURROW_URL=f"{first},{second}")
        claimed += [m["id"] for m in orjson.loads(out)]
        if len(claimed) == 30:
            break
    assert sorted(claimed) == sorted(placed)
