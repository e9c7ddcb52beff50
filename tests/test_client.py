"""The Python clients against a real `burrow serve` process over HTTP."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from burrow.client import AsyncClient, Client, Draft, Queue, WorkStats
from burrow.client.loops import Cursor, message_id
from burrow.client.servers import unavailable
from burrow.client.wire import Call, Request, error_for, headers, path
from burrow.errors import (
    ERROR_BY_STATUS,
    BackendUnavailable,
    BurrowError,
    InvalidRequest,
    MessageNotFound,
    MethodNotAllowed,
    NoMatch,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
)
from burrow.model import Attributes, Detail, Filters, Message, NewMessage, Quota
from tests.servers import BurrowServer

AWKWARD = "a b?c&d#e%f+g=h;é"
"""A name that needs percent-encoding in a path and in a query string."""


@pytest.fixture
def client(server_url: str, account: str) -> Iterator[Client]:
    with Client(server_url, account) as opened:
        yield opened


@pytest.fixture
def queue(client: Client) -> Queue:
    return client.queue("jobs")


@pytest.fixture
async def aclient(server_url: str, account: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server_url, account) as opened:
        yield opened


# Round trips -------------------------------------------------------------------------------


def test_put_and_get_round_trip(queue: Queue) -> None:
    assert queue.put("text body", id="m1", ttl=60) == "m1"
    assert queue.put(b"\xff\x00binary", id="m2") == "m2"
    messages = queue.get()
    assert [(m.id, m.body) for m in messages] == [("m1", b"text body"), ("m2", b"\xff\x00binary")]
    assert 0 < messages[0].ttl <= 60
    assert messages[0].hide == 0
    assert queue.get_one("m2").body == b"\xff\x00binary"


def test_names_needing_url_encoding(server_url: str, account: str) -> None:
    with Client(server_url, account + AWKWARD) as client:
        awkward = client.queue(AWKWARD)
        awkward.put(b"x", id=AWKWARD)
        assert awkward.get_one(AWKWARD).id == AWKWARD
        assert [m.id for m in awkward.get(marker="unknown")] == [AWKWARD]
        assert client.queues() == [AWKWARD]
        assert account + AWKWARD in client.accounts()
        awkward.delete(AWKWARD)
        assert awkward.get() == []


def test_dot_segments_are_not_folded_away(queue: Queue) -> None:
    queue.put("keep me", id="m")
    with pytest.raises(InvalidRequest):
        queue.delete("..")
    assert [m.id for m in queue.get()] == ["m"]


def test_empty_names_are_refused_before_sending(client: Client) -> None:
    with pytest.raises(InvalidRequest):
        client.queue("").get()


def test_server_generated_ids_keep_insertion_order(queue: Queue) -> None:
    first = queue.put("one")
    batch = queue.put_many(["two", b"\xfe", Draft(b"four", id="own-id", ttl=30)])
    assert len(batch) == 3
    assert batch[2] == "own-id"
    assert first < batch[0] < batch[1]
    messages = queue.get()
    assert [m.id for m in messages] == [first, *batch]
    assert [m.body for m in messages] == [b"one", b"two", b"\xfe", b"four"]


def test_replace_keeps_place_and_sets_everything_anew(queue: Queue) -> None:
    queue.put("a", id="a", hide=100)
    queue.put("b", id="b")
    queue.put("a again", id="a")
    messages = queue.get()
    assert [(m.id, m.body, m.hide) for m in messages] == [("a", b"a again", 0), ("b", b"b", 0)]


def test_hidden_messages(queue: Queue) -> None:
    queue.put("later", id="h", hide=100)
    assert queue.get() == []
    assert [m.id for m in queue.get(match_hidden=True)] == ["h"]
    assert queue.get_one("h").hide > 0


def test_get_with_limit_and_marker(queue: Queue) -> None:
    queue.put_many([Draft(b"", id=name) for name in "abcd"])
    assert [m.id for m in queue.get(limit=2)] == ["a", "b"]
    assert [m.id for m in queue.get(marker="b")] == ["c", "d"]
    assert [m.id for m in queue.get(limit=1, marker="c")] == ["d"]


def test_claim_hides_and_concurrent_claims_differ(queue: Queue) -> None:
    queue.put_many(["1", "2", "3"])
    first = queue.claim(limit=2, hide=100)
    second = queue.claim(limit=2, hide=100)
    assert [m.body for m in first] == [b"1", b"2"]
    assert [m.body for m in second] == [b"3"]
    assert all(m.hide > 0 for m in first + second)
    assert queue.claim() == []


def test_update_releases_a_claim(queue: Queue) -> None:
    queue.put("job", id="j")
    queue.claim(hide=100)
    updated = queue.update("j", hide=0, ttl=30)
    assert (updated.hide, 0 < updated.ttl <= 30) == (0, True)
    assert [m.id for m in queue.claim()] == ["j"]


def test_pop_deletes_what_it_returns(queue: Queue) -> None:
    queue.put_many(["1", "2", "3"])
    assert [m.body for m in queue.pop(limit=2)] == [b"1", b"2"]
    assert [m.body for m in queue.get()] == [b"3"]


def test_delete_all_includes_hidden(client: Client, queue: Queue) -> None:
    queue.put("visible", id="v")
    queue.put("hidden", id="h", hide=100)
    assert queue.delete_all() == ["v", "h"]
    assert queue.get(match_hidden=True) == []
    assert queue.delete_all() == []
    assert client.queues() == []


def test_delete_account(client: Client) -> None:
    client.queue("a").put("x")
    client.queue("b").put("y", hide=100)
    assert client.queues() == ["a", "b"]
    assert client.delete() == ["a", "b"]
    assert client.queues() == []
    assert client.account not in client.accounts()


def test_delete_many_deletes_what_is_there_in_the_order_given(queue: Queue) -> None:
    made = queue.put_many([f"job {n}" for n in range(250)])  # more than one request's worth
    queue.put("hidden", id="h", hide=100)
    asked = ["absent", "h", *made[::-1], "h"]
    assert queue.delete_many(asked) == ["h", *made[::-1]]
    assert queue.get(match_hidden=True) == []
    assert queue.delete_many(asked) == []
    assert queue.delete_many([]) == []


def test_nothing_matched_is_an_empty_list(client: Client, queue: Queue) -> None:
    assert queue.get() == []
    assert queue.claim() == []
    assert queue.pop() == []
    assert queue.delete_all() == []
    assert client.queues() == []


def test_one_missing_message_raises(queue: Queue) -> None:
    for attempt in (queue.get_one, queue.delete, lambda i: queue.update(i, hide=0)):
        with pytest.raises(MessageNotFound):
            attempt("absent")


def test_client_without_account_lists_accounts(server_url: str, queue: Queue) -> None:
    queue.put("x")
    with Client(server_url) as anonymous:
        assert queue.account in anonymous.accounts()
        with pytest.raises(ValueError, match="without an account"):
            anonymous.queues()


# Errors --------------------------------------------------------------------------------------


def test_bad_numbers_are_invalid_requests(queue: Queue) -> None:
    with pytest.raises(InvalidRequest, match="limit"):
        queue.get(limit=0)
    with pytest.raises(InvalidRequest, match="hide"):
        queue.claim(hide=10**9)
    with pytest.raises(InvalidRequest, match="wait"):
        queue.get(wait=10**6)


def test_body_too_large(queue: Queue) -> None:
    with pytest.raises(PayloadTooLarge):
        queue.put(b"x" * (256 * 1024 + 1), id="big")


def test_method_not_allowed(client: Client, account: str) -> None:
    call = Call(Request("PATCH", path(account, "q")), lambda _: None, lambda: None)
    with pytest.raises(MethodNotAllowed) as raised:
        client.send(call)
    assert "GET" in raised.value.allowed
    assert "PATCH" in raised.value.message


def test_unreachable_server_is_backend_unavailable() -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        with Client(url, "a") as client, pytest.raises(BackendUnavailable, match="cannot reach"):
            client.queue("q").get()


def test_a_rate_limited_client_is_told_how_long_to_wait(
    start_server: Callable[..., BurrowServer], tmp_path: Path
) -> None:
    config = tmp_path / "slow.toml"
    config.write_text("[limits]\nrate_per_account = 0.01\nburst_per_account = 1\n")
    server = start_server("memory://", "--config", str(config))
    with Client(server.url, "a") as client:
        client.queue("q").put("the one request of the burst")
        with pytest.raises(RateLimited) as raised:
            client.queue("q").get()
    assert 90 <= raised.value.retry_after <= 100  # the server's ~100 s, not a default
    assert f"retry after {raised.value.retry_after} s" in raised.value.message


E = TypeVar("E", bound=BurrowError)


def answered(
    category: type[E], status: int, headers: Mapping[str, str] | Mapping[bytes, bytes] | None = None
) -> E:
    """The error a client raises for an error answer (`error_for` does no I/O); it must
    be a `category`."""
    request = httpx.Request("PATCH", "http://127.0.0.1:8080/v1.0/a/q")
    response = httpx.Response(status, headers=headers, json={"error": "no"}, request=request)
    error = error_for(response)
    assert type(error) is category
    return error


def test_each_status_comes_back_as_its_category() -> None:
    categories = [c for c in BurrowError.__subclasses__() if c.status != BurrowError.status]
    assert {c.status: c for c in categories} == ERROR_BY_STATUS
    assert ERROR_BY_STATUS[408] is RequestTimeout  # these three were once lost on the way
    assert ERROR_BY_STATUS[405] is MethodNotAllowed
    assert ERROR_BY_STATUS[503] is BackendUnavailable
    for status, category in ERROR_BY_STATUS.items():
        answered(category, status)
    assert answered(MethodNotAllowed, 405, {"Allow": "GET, PUT"}).allowed == ("GET", "PUT")
    answered(InvalidRequest, 418)
    answered(BackendUnavailable, 502)


def test_retry_after_is_kept_as_the_server_gave_it() -> None:
    limited = answered(RateLimited, 429, {"Retry-After": "30"})
    assert (limited.retry_after, limited.message) == (30, "no (retry after 30 s)")
    assert answered(BackendUnavailable, 503, {"Retry-After": "7"}).retry_after == 7
    assert answered(BackendUnavailable, 503).retry_after is None
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 <= answered(RateLimited, 429, {"Retry-After": later}).retry_after <= 120
    for unreadable in (b"soon", b"-5", "\u00b2".encode()):
        assert answered(RateLimited, 429, {b"Retry-After": unreadable}).retry_after == 1


def test_no_server_answering_waits_the_shortest_retry_after() -> None:
    errors = [BackendUnavailable("a", 30), BackendUnavailable("b"), BackendUnavailable("c", 5)]
    assert unavailable(errors).retry_after == 5
    assert unavailable(errors[1:2]).retry_after is None


# Server URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "told"),
    [
        (
            "http://127.0.0.1:8080/v1.0",
            "give the server's root URL, http://127.0.0.1:8080, not http://127.0.0.1:8080/v1.0",
        ),
        ("https://h:8443/v1.0/acct/", "root URL, https://h:8443, not"),
        ("http://h:8080/?detail=all", "root URL, http://h:8080, not"),
        ("http://h:8080#top", "root URL, http://h:8080, not"),
        ("http://s3cret@h:8080", "give the token with --token or token=, not in the URL"),
        ("127.0.0.1:8080", "is not an http(s):// URL"),
        ("http://h:99999", "bad port"),
    ],
)
def test_a_server_url_must_be_its_root(url: str, told: str) -> None:
    with pytest.raises(ValueError, match=re.escape(told)) as raised:
        Client(url, "a")
    assert "s3cret" not in str(raised.value)


def test_a_root_url_may_end_with_a_slash(server_url: str, queue: Queue) -> None:
    queue.put("x", id="x")
    with Client(server_url + "/", queue.account) as client:
        assert client.url == server_url
        assert [m.id for m in client.queue(queue.name).get()] == ["x"]


def test_token_travels_as_header() -> None:
    assert headers("secret")["X-Auth-Token"] == "secret"
    assert "X-Auth-Token" not in headers(None)


# Long polls, workers, followers ---------------------------------------------------------------


def test_get_long_polls_until_a_put(queue: Queue) -> None:
    later = threading.Timer(0.2, queue.put, ["wake up"])
    later.start()
    try:
        assert [m.body for m in queue.get(wait=10)] == [b"wake up"]
    finally:
        later.join()


def test_work_deletes_what_succeeds(queue: Queue) -> None:
    queue.put_many(["1", "2", "3"])
    seen: list[bytes] = []
    stats = queue.work(lambda m: seen.append(m.body), limit=2, max_messages=3)
    assert stats == WorkStats(done=3, failed=0)
    assert seen == [b"1", b"2", b"3"]
    assert queue.get(match_hidden=True) == []


def test_work_leaves_failures_to_reappear(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    message_id = queue.put("poison")

    def fail(message: Message) -> None:
        raise RuntimeError(f"cannot handle {message.body!r}")

    with caplog.at_level(logging.ERROR, logger="burrow.client"):
        stats = queue.work(fail, hide=1, wait=0)
    assert stats == WorkStats(done=0, failed=1)
    assert "cannot handle b'poison'" in caplog.text
    assert queue.get() == []
    assert [m.id for m in queue.get(match_hidden=True)] == [message_id]
    # The claim runs out after a second; the long poll wakes when it does.
    assert [m.id for m in queue.claim(wait=10)] == [message_id]


def test_work_with_wait_zero_stops_when_drained(queue: Queue) -> None:
    assert queue.work(lambda m: None, wait=0) == WorkStats()
    queue.put("x")
    assert queue.work(lambda m: None, wait=0) == WorkStats(done=1)


def test_work_stops_when_told(queue: Queue) -> None:
    queue.put_many(["1", "2", "3"])
    stop = threading.Event()
    stats = queue.work(lambda m: stop.set(), stop=stop)
    assert stats == WorkStats(done=1)
    assert len(queue.get()) == 2


def test_follow_reads_existing_then_new(queue: Queue) -> None:
    queue.put("old", id="1")
    later = threading.Timer(0.2, queue.put, ["new"], {"id": "2"})
    later.start()
    try:
        stream = queue.follow(wait=10)
        assert [next(stream).id, next(stream).id] == ["1", "2"]
    finally:
        later.join()
    assert [m.id for m in queue.get()] == ["1", "2"]


def test_follow_with_wait_zero_ends_when_caught_up(queue: Queue) -> None:
    queue.put_many([Draft(b"", id=name) for name in "abc"])
    assert [m.id for m in queue.follow(wait=0, marker="a")] == ["b", "c"]


def test_cursor_skips_what_it_saw_when_the_marker_vanishes() -> None:
    def msgs(*ids: str) -> list[Message]:
        return [Message(i, b"", 0, 0) for i in ids]

    cursor = Cursor(message_id, None, wait=1, memory=3)
    assert cursor.advance(msgs("a", "b")) == msgs("a", "b")
    assert cursor.marker == "b"
    assert cursor.advance([]) == [] and not cursor.done
    # "b" was popped: the server answers from the start again.
    assert cursor.advance(msgs("a", "c")) == msgs("c")
    assert cursor.marker == "c"
    assert cursor.advance(msgs("d")) == msgs("d")
    assert cursor.advance(msgs("a")) == msgs("a")  # forgotten: only the last 3 are kept


# The asyncio client ------------------------------------------------------------------------------


async def test_async_round_trip(aclient: AsyncClient) -> None:
    queue = aclient.queue(AWKWARD)
    assert await queue.put(b"\x80bytes", id=AWKWARD) == AWKWARD
    generated = await queue.put("text")
    assert [m.id for m in await queue.get()] == [AWKWARD, generated]
    assert (await queue.get_one(AWKWARD)).body == b"\x80bytes"
    assert await queue.put_many(["x", "y"]) != []
    claimed = await queue.claim(limit=2, hide=100)
    assert [m.body for m in claimed] == [b"\x80bytes", b"text"]
    assert (await queue.update(generated, hide=0)).hide == 0
    assert [m.body for m in await queue.pop(limit=5)] == [b"text", b"x", b"y"]
    await queue.delete(AWKWARD)
    await queue.put("last", id="last")
    assert await queue.delete_many(["last", AWKWARD]) == ["last"]
    assert await queue.get(match_hidden=True) == []
    assert await queue.claim() == []
    assert await aclient.queues() == []
    with pytest.raises(MessageNotFound):
        await queue.get_one(AWKWARD)


async def test_async_long_poll_claim(aclient: AsyncClient) -> None:
    queue = aclient.queue("q")
    waiting = asyncio.create_task(queue.claim(wait=10))
    await queue.put("job")
    assert [m.body for m in await waiting] == [b"job"]


async def test_async_work_and_follow(aclient: AsyncClient) -> None:
    queue = aclient.queue("q")
    await queue.put_many(["ok", "bad", "ok"])
    handled: list[bytes] = []

    async def handle(message: Message) -> None:
        handled.append(message.body)
        if message.body == b"bad":
            raise ValueError("bad message")

    stats = await queue.work(handle, hide=100, limit=5, max_messages=3)
    assert stats == WorkStats(done=2, failed=1)
    assert handled == [b"ok", b"bad", b"ok"]
    hidden = [m async for m in queue.follow(wait=0, match_hidden=True)]
    assert [m.body for m in hidden] == [b"bad"]
    assert await aclient.delete() == ["q"]


async def test_async_work_stops_when_told(aclient: AsyncClient) -> None:
    stop = asyncio.Event()
    stop.set()
    assert await aclient.queue("q").work(lambda m: asyncio.sleep(0), stop=stop) == WorkStats()


# The Backend-shaped operations of AsyncClient ----------------------------------------------


async def test_async_client_mirrors_the_backend(server_url: str, account: str) -> None:
    async with AsyncClient(server_url) as conn:
        first = NewMessage("m1", b"\x00\xff", ttl=0, hide=0)
        assert await conn.put_messages(account, "q", [first]) == [True]
        assert await conn.put_messages(account, "q", [first]) == [False]
        batch = [NewMessage("m2", b"two", 60, 0), NewMessage("m3", b"three", 60, 100)]
        assert await conn.put_messages(account, "q", batch) == [True, True]
        again = [NewMessage("m3", b"three", 60, 100), NewMessage("m4", b"four", 60, 0)]
        with pytest.raises(QuotaExceeded):
            await conn.put_messages(account, "q", again, Quota(max_queue_messages=3))
        assert await conn.put_messages(account, "q", again) == [False, True]
        await conn.delete_message(account, "q", "m4")

        assert await conn.get_queues(account) == ["q"]
        assert account in await conn.get_accounts()
        got = await conn.get_messages(account, "q", Filters(limit=5))
        assert [(m.id, m.body, m.ttl) for m in got] == [("m1", b"\x00\xff", 0), ("m2", b"two", 60)]
        bare = await conn.get_messages(account, "q", Filters(marker="m1"), detail=Detail.ATTRIBUTES)
        assert [(m.id, m.body) for m in bare] == [("m2", b"")]

        claimed = await conn.update_messages(account, "q", Attributes(hide=50), Filters(limit=1))
        assert [(m.id, m.hide) for m in claimed] == [("m1", 50)]
        assert (await conn.get_message(account, "q", "m3")).hide > 0
        assert (await conn.update_message(account, "q", "m3", Attributes(hide=0))).hide == 0
        assert (await conn.delete_message(account, "q", "m3")).body == b"three"
        with pytest.raises(MessageNotFound):
            await conn.delete_message(account, "q", "m3")

        assert await conn.delete_messages(account, "q", detail=Detail.NONE) == []
        with pytest.raises(NoMatch):
            await conn.delete_messages(account, "q")
        assert await conn.delete_queues(account) == ["q"]
        with pytest.raises(NoMatch):
            await conn.get_queues(account)
        with pytest.raises(NoMatch):
            await conn.get_messages(account, "q")


async def test_async_client_delete_accounts(start_server: Callable[..., BurrowServer]) -> None:
    server = start_server()
    async with AsyncClient(server.url) as conn:
        for account in ("a", "b", "c"):
            await conn.put_messages(account, "q", [NewMessage("m", b"", 0, 100)])
        assert await conn.delete_accounts(Filters(limit=2)) == ["a", "b"]
        assert await conn.get_accounts() == ["c"]
        assert await conn.delete_accounts() == ["c"]
        with pytest.raises(NoMatch):
            await conn.get_accounts()


def test_a_subscription_through_the_client(server_url: str, account: str) -> None:
    with Client(server_url, account) as client:
        queue = client.queue("q")
        made = queue.subscribe("s", start="oldest", webhook={"url": "https://example.com/h"})
        assert made["webhook"]["secret"].startswith("whsec_")
        first, second = queue.put("a"), queue.put("b")
        assert [m.id for m in queue.read("s")] == [first, second]
        queue.ack("s", first)
        assert [m.body for m in queue.read("s", limit=5)] == [b"b"]
        queue.ack("s", second)
        assert queue.read("s") == []
