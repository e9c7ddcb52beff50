"""Listing and deleting everything against servers that answer a page at a time.

The servers run with `default_limit = 3`, so that a handful of messages, queues
or accounts already take several pages.
"""

from __future__ import annotations

from pathlib import Path

import click
import httpx
import orjson
import pytest
from click.testing import CliRunner

from burrow.cli_client import register
from burrow.client import AsyncClient, Client, Draft
from burrow.client.paging import every_page, until_empty
from tests.conftest import ServerFactory
from tests.servers import BurrowServer

PAGE = 3


def start_paged(start_server: ServerFactory, workdir: Path, name: str) -> BurrowServer:
    """A server on its own SQLite file that answers a request without `limit` with 3 items."""
    config = workdir / f"{name}.toml"
    config.write_text(f"[limits]\ndefault_limit = {PAGE}\n")
    return start_server(f"sqlite:///{name}.db", "--config", str(config))


@pytest.fixture
def paged(start_server: ServerFactory, tmp_path: Path) -> BurrowServer:
    server = start_paged(start_server, tmp_path, "one")
    with Client(server.url, "a") as client:
        client.queue("q").put_many(["x"] * (PAGE + 1))
        assert len(httpx.get(f"{server.url}/v1.0/a/q").json()) == PAGE  # the server pages
        client.queue("q").delete_all()
    return server


@pytest.fixture
def pair(start_server: ServerFactory, tmp_path: Path) -> list[BurrowServer]:
    return [start_paged(start_server, tmp_path, name) for name in ("left", "right")]


def fill(url: str, account: str, queue: str, ids: list[str], hide: int = 0) -> None:
    with Client(url, account) as direct:
        direct.queue(queue).put_many([Draft(i.encode(), i, hide=hide) for i in ids])


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:02}" for n in range(count)]


# One server ----------------------------------------------------------------------------------


def test_listings_without_limit_read_every_page(paged: BurrowServer) -> None:
    accounts, queues, ids = names("acct-", 7), names("q-", 8), names("m-", 10)
    for account in accounts:
        fill(paged.url, account, "q", ["m"])
    for name in queues:
        fill(paged.url, "a", name, ["m"])
    fill(paged.url, "b", "q", ids[:6])
    fill(paged.url, "b", "q", ids[6:], hide=100)
    with Client(paged.url, "a") as client:
        assert client.accounts() == [*accounts, "a", "b"]
        assert client.queues() == queues
        assert client.queues(limit=2) == queues[:2]
        assert client.queues(marker=queues[1]) == queues[2:]
    with Client(paged.url, "b") as client:
        queue = client.queue("q")
        assert [m.id for m in queue.get()] == ids[:6]
        assert [m.id for m in queue.get(match_hidden=True)] == ids
        assert [m.id for m in queue.get(marker=ids[1], match_hidden=True)] == ids[2:]
        assert [m.id for m in queue.get(limit=4)] == ids[:4]


def test_deletes_of_everything_repeat_until_nothing_is_left(paged: BurrowServer) -> None:
    ids = names("m-", 8)
    fill(paged.url, "a", "q", ids[:5])
    fill(paged.url, "a", "q", ids[5:], hide=100)
    for name in names("q-", 7):
        fill(paged.url, "a", name, ["m"])
    with Client(paged.url, "a") as client:
        assert client.queue("q").delete_all() == ids
        assert client.queue("q").get(match_hidden=True) == []
        assert client.delete() == names("q-", 7)
        assert client.queues() == []


def test_long_poll_without_limit_then_every_page(paged: BurrowServer) -> None:
    ids = names("m-", 7)
    fill(paged.url, "a", "q", ids)
    with Client(paged.url, "a") as client:
        assert [m.id for m in client.queue("q").get(wait=5)] == ids
        assert client.queue("empty").get(wait=1) == []


async def test_async_client_pages_too(paged: BurrowServer) -> None:
    ids = names("m-", 7)
    fill(paged.url, "a", "q", ids)
    async with AsyncClient(paged.url, "a") as client:
        assert [m.id for m in await client.queue("q").get()] == ids
        assert await client.queue("q").delete_all() == ids
        assert await client.queues() == []


def test_cli_ls_and_get_read_every_page(paged: BurrowServer) -> None:
    group = click.Group("burrow")
    register(group)
    ids = names("m-", 7)
    fill(paged.url, "a", "q", ids[:4])
    fill(paged.url, "a", "q", ids[4:], hide=100)

    def run(*args: str) -> str:
        result = CliRunner().invoke(group, [*args, "--server", paged.url])
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    assert [line.split("\t")[0] for line in run("ls", "a", "q").splitlines()] == ids
    assert [m["id"] for m in orjson.loads(run("get", "a", "q", "--json"))] == ids[:4]
    assert run("get", "a", "q", "--limit", "2").count("\n") == 2
    assert orjson.loads(run("delete", "a", "q", "--json")) == ids


# Several servers -----------------------------------------------------------------------------


def test_several_servers_each_read_to_the_end(pair: list[BurrowServer]) -> None:
    left, right = pair
    fill(left.url, "a", "q", names("left-", 5))
    fill(right.url, "a", "q", names("right-", 4))
    for name in names("lq-", 4):
        fill(left.url, "a", name, ["m"])
    for name in ["q", *names("rq-", 4)]:
        fill(right.url, "a", name, ["m"])
    with Client([left.url, right.url], "a") as client:
        assert client.queues() == ["q", *names("lq-", 4), *names("rq-", 4)]
        queue = client.queue("q")
        everything = [*names("left-", 5), *names("right-", 4), "m"]
        for _ in range(2):  # whichever server the first read goes to
            assert [m.id for m in queue.get()] == everything
        assert len(queue.get(limit=4)) == 4  # with a limit: one server's page
        assert sorted(queue.delete_all()) == sorted(everything)
        assert client.delete() == [*names("lq-", 4), *names("rq-", 4)]
        assert client.queues() == []


# The paging loops themselves -------------------------------------------------------------------


async def test_a_page_whose_marker_vanished_starts_over_without_repeats() -> None:
    queue = ["a", "b", "c", "d", "e", "f", "g"]
    asked: list[str | None] = []

    async def read(marker: str | None) -> list[str]:
        asked.append(marker)
        if marker == "c":  # "c" is popped between pages: the server starts over
            queue.remove("c")
        start = queue.index(marker) + 1 if marker in queue else 0
        return queue[start : start + PAGE]

    assert await every_page(read, str, None) == ["a", "b", "c", "d", "e", "f", "g"]
    assert asked == [None, "c", "d", "g"]
    asked.clear()
    assert await every_page(read, str, None, first=["a", "b"]) == queue
    assert asked == ["b", "f", "g"]


async def test_until_empty_stops_at_the_first_empty_round() -> None:
    rounds = iter([["1", "2"], ["3"], [], ["never"]])

    async def delete() -> list[str]:
        return next(rounds)

    assert await until_empty(delete) == ["1", "2", "3"]
