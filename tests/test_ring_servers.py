"""Deployment 4 for real: two zones of three SQLite servers, one ring proxy per zone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from burrow.backends import open_backend
from burrow.backends.ring import RingBackend
from burrow.client import Client
from burrow.model import ALL_ITEMS, NewMessage
from burrow.placement import message_key, rendezvous
from tests.servers import BurrowServer
from tests.test_ring import ring_file


@dataclass
class Zones:
    workdir: Path
    servers: dict[str, list[BurrowServer]]  # zone -> its queue servers
    proxies: dict[str, BurrowServer]  # zone -> its ring proxy

    def restart(self, zone: str, index: int) -> BurrowServer:
        old = self.servers[zone][index]
        port = old.url.rsplit(":", 1)[1]
        new = BurrowServer(self.workdir, old.backend, "--access-log", "--port", port).start()
        self.servers[zone][index] = new
        return new


@pytest.fixture
def zones(tmp_path: Path) -> Iterator[Zones]:
    started: list[BurrowServer] = []

    def start(backend: str, *extra: str) -> BurrowServer:
        server = BurrowServer(tmp_path, backend, *extra).start()
        started.append(server)
        return server

    servers = {
        zone: [start(f"sqlite:///{zone}-{i}.db", "--access-log") for i in range(3)]
        for zone in ("az1", "az2")
    }
    members = [(s.url, zone) for zone, group in servers.items() for s in group]
    proxies = {
        zone: start(f"ring:///{ring_file(tmp_path / f'ring-{zone}.toml', members, zone=zone)}")
        for zone in ("az1", "az2")
    }
    made = Zones(tmp_path, servers, proxies)
    yield made
    for server in started + [s for group in made.servers.values() for s in group]:
        server.kill()


def api_lines(server: BurrowServer) -> int:
    """Calls that name an account. (Every server lists the accounts once as it starts, to
    resume SQS move tasks; a ring asks that of every member, in every zone.)"""
    return sum(1 for line in server.log().splitlines() if " /v1.0/" in line)


def test_a_proxy_keeps_to_its_zone_until_its_zone_is_down(zones: Zones) -> None:
    with httpx.Client(base_url=zones.proxies["az1"].url) as az1:
        for account in ("a", "b", "c", "d"):
            assert az1.put(f"/v1.0/{account}/q", json=[{"body": "x"}] * 5).status_code == 201
            assert (
                len(
                    az1.post(
                        f"/v1.0/{account}/q", params={"limit": 3, "hide": 60, "detail": "id"}
                    ).json()
                )
                == 3
            )
            assert az1.get(f"/v1.0/{account}/q").status_code == 200
        assert sum(api_lines(s) for s in zones.servers["az1"]) > 0
        assert sum(api_lines(s) for s in zones.servers["az2"]) == 0
        # A caller may name its own zone.
        assert (
            az1.put("/v1.0/e/q/m", content=b"x", headers={"X-Burrow-Zone": "az2"}).status_code
            == 201
        )
        assert sum(api_lines(s) for s in zones.servers["az2"]) == 1
        for server in zones.servers["az1"]:
            server.kill()
        assert az1.put("/v1.0/a/q/later", content=b"x").status_code == 201
        assert az1.get("/v1.0/a/q/later").status_code == 200
        health = az1.get("/health").json()
    assert health["status"] == "degraded"
    states = {m["url"]: m["state"] for m in health["members"]}
    assert {states[s.url] for s in zones.servers["az1"]} <= {"down", "probing"}
    assert {states[s.url] for s in zones.servers["az2"]} == {"up"}


def test_killing_a_server_under_load_loses_nothing_acknowledged(zones: Zones) -> None:
    acknowledged: list[str] = []
    failures: list[int] = []
    victim = zones.servers["az1"][0]

    def produce() -> None:
        with httpx.Client(base_url=zones.proxies["az1"].url, timeout=10) as proxy:
            for i in range(300):
                if i == 100:
                    victim.kill()
                name = f"job-{i:03}"
                response = proxy.put(f"/v1.0/acct/jobs/{name}", content=b"work")
                if response.status_code == 201:
                    acknowledged.append(name)
                else:
                    failures.append(i)

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(60)
    assert failures == []
    assert len(acknowledged) == 300
    zones.restart("az1", 0)

    consumed: list[str] = []
    with httpx.Client(base_url=zones.proxies["az1"].url, timeout=10) as proxy:
        for _ in range(200):  # bounded: about 3 claims per 10 messages are enough
            claimed = proxy.post(
                "/v1.0/acct/jobs", params={"limit": 10, "hide": 60, "wait": 2, "detail": "id"}
            )
            if claimed.status_code == 404:
                if len(set(consumed)) == 300:
                    break
                continue
            for message in claimed.json():
                consumed.append(message)
                assert proxy.delete(f"/v1.0/acct/jobs/{message}").status_code == 204
    assert set(consumed) == {f"job-{i:03}" for i in range(300)}
    duplicates = len(consumed) - len(set(consumed))
    print(f"duplicates after a kill -9 and restart: {duplicates}")


def test_clients_given_both_proxies_carry_on_when_one_dies(zones: Zones) -> None:
    proxies = [zones.proxies["az1"].url, zones.proxies["az2"].url]
    # The client says it is in az1: whichever proxy answers serves az1's servers, so
    # what went through the proxy that died is still there for the other one.
    with Client(proxies, "acct", zone="az1") as client:
        queue = client.queue("jobs")
        sent = [queue.put(b"before", id=f"before-{i}") for i in range(20)]
        zones.proxies["az1"].kill()
        sent += [queue.put(b"after", id=f"after-{i}") for i in range(20)]
        received: list[str] = []
        for _ in range(20):  # bounded
            claimed = queue.claim(limit=10, hide=60, wait=1)
            for message in claimed:
                received.append(message.id)
                queue.delete(message.id)
            if set(received) == set(sent):
                break
    assert set(received) == set(sent)
    assert sum(api_lines(s) for s in zones.servers["az2"]) == 0


async def test_a_rewrite_after_a_failover_leaves_one_copy(zones: Zones, tmp_path: Path) -> None:
    """The rule: a PUT goes to the first live member of its id's order; a listing that
    meets two copies keeps the one earliest in that order and deletes the other."""
    az1 = zones.servers["az1"]
    path = ring_file(tmp_path / "inner.toml", [(s.url, "az1") for s in az1])
    ring = open_backend(f"ring:///{path}")
    assert isinstance(ring, RingBackend)
    async with ring, httpx.AsyncClient() as http:
        order = rendezvous(message_key("acct", "q", "x"), ring.config.members)
        first, second = (next(s for s in az1 if s.url == m.url) for m in order[:2])
        first.kill()
        assert await ring.put_message("acct", "q", NewMessage("x", b"old", 600, 0)) is True
        assert (await http.get(f"{second.url}/v1.0/acct/q/x")).json()["body"] == "old"
        zones.restart("az1", az1.index(first))
        for _ in range(100):  # the proxy probes it back within a second or so
            if all(m["state"] == "up" for m in (await ring.health())["members"]):
                break
            await asyncio.sleep(0.05)
        assert await ring.put_message("acct", "q", NewMessage("x", b"new", 600, 0)) is True
        listed = await ring.get_messages("acct", "q", ALL_ITEMS)
        assert [(m.id, m.body) for m in listed] == [("x", b"new")]
        assert (await ring.get_message("acct", "q", "x")).body == b"new"
        for _ in range(100):  # the stale copy is deleted in the background
            if (await http.get(f"{second.url}/v1.0/acct/q/x")).status_code == 404:
                break
            await asyncio.sleep(0.05)
        assert (await http.get(f"{second.url}/v1.0/acct/q/x")).status_code == 404
