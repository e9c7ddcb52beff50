"""Durable subscriptions over HTTP (docs/push.md, "Subscriptions"), on live servers: the
cursor, acknowledgements, the webhook's settings, listings, bad input and roles."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from burrow.errors import InvalidRequest
from burrow.subscriptions import DeliveryError, Subscription, checked, decode, encode
from tests.backends.conftest import ring_url
from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.test_auth import add_key

LONG_POLL = 10  # a generous bound: the answer comes as soon as the message is put


@pytest.fixture(scope="module", params=["memory", "http"])
def server_url(
    request: pytest.FixtureRequest,
    memory_server: BurrowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """Each test on a memory server, and again through a proxy in front of it (the `http`
    backend, which stores subscriptions on that server)."""
    if request.param == "memory":
        yield memory_server.url
        return
    proxy = BurrowServer(tmp_path_factory.mktemp("proxy"), memory_server.url).start()
    yield proxy.url
    proxy.kill()


def subscription(base: str, account: str, name: str, queue: str = "q") -> str:
    return f"{base}/v1.0/{account}/{queue}/-/subscriptions/{name}"


def put(queue: str, *ids: str) -> None:
    response = httpx.put(queue, json=[{"id": i, "body": i} for i in ids])
    assert response.status_code == 201, response.text


def read(queue: str, name: str, **params: str | int) -> list[str]:
    """The ids a read through the subscription answers ([] for a 404: none)."""
    response = httpx.get(queue, params={"subscription": name, **params}, timeout=LONG_POLL + 5)
    if response.status_code == 404:
        assert response.json() == {"error": "no messages matched"}
        return []
    assert response.status_code == 200, response.text
    return [message["id"] for message in response.json()]


def ack(base: str, account: str, name: str, message_id: str) -> None:
    response = httpx.post(subscription(base, account, name), params={"ack": message_id})
    assert response.status_code == 204, response.text


def test_a_subscription_reads_after_its_cursor_until_acknowledged(
    server_url: str, account: str
) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    put(queue, "m1", "m2")
    newest = httpx.put(subscription(server_url, account, "new"), json={"start": "newest"})
    oldest = httpx.put(subscription(server_url, account, "old"), json={"start": "oldest"})
    assert (newest.status_code, oldest.status_code) == (201, 201)
    assert newest.json()["cursor"] == "m2"
    assert read(queue, "new") == []
    put(queue, "m3", "m4")
    claimed = httpx.post(queue, params={"limit": 4, "hide": 60, "detail": "id"})
    assert claimed.json() == ["m1", "m2", "m3", "m4"]
    assert read(queue, "new") == ["m3", "m4"]  # hidden ones too
    assert read(queue, "old", limit=2) == ["m1", "m2"]
    assert read(queue, "old", limit=2) == ["m1", "m2"]  # a read leaves the cursor
    ack(server_url, account, "old", "m2")
    assert read(queue, "old") == ["m3", "m4"]
    assert read(queue, "new") == ["m3", "m4"]  # one cursor each
    by_id = httpx.get(queue, params={"subscription": "new", "detail": "id"})
    assert by_id.json() == ["m3", "m4"]
    ack(server_url, account, "old", "m4")
    assert read(queue, "old") == []
    assert httpx.get(subscription(server_url, account, "old")).json()["cursor"] == "m4"


def test_a_read_waits_for_the_next_message(server_url: str, account: str) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    assert httpx.put(subscription(server_url, account, "s"), content=b"").status_code == 201
    answers: list[list[str]] = []
    reader = threading.Thread(target=lambda: answers.append(read(queue, "s", wait=LONG_POLL)))
    reader.start()
    put(queue, "m1")  # before the read waits or while it does: the same answer
    reader.join(LONG_POLL + 10)
    assert answers == [["m1"]]


def test_a_read_after_the_cursors_message_is_gone_skips_the_older_ones(
    server_url: str, account: str
) -> None:
    """A listing whose marker is unknown starts from the queue's start: the read must
    not deliver m1 again once m2, the cursor, is deleted (or has expired). (Messages put
    in one batch share their put time: among those the read cannot tell, and delivers
    them again.)"""
    queue = f"{server_url}/v1.0/{account}/q"
    httpx.put(subscription(server_url, account, "s"), json={"start": "oldest"})
    for message_id in ("m1", "m2", "m3"):  # one request each: each a later put time
        put(queue, message_id)
    ack(server_url, account, "s", "m2")
    assert httpx.delete(f"{queue}/m2").status_code == 204
    assert read(queue, "s") == ["m3"]
    assert httpx.delete(f"{queue}/m3").status_code == 204
    assert read(queue, "s") == []
    put(queue, "m4")
    assert read(queue, "s") == ["m4"]


def test_a_webhooks_secret_is_shown_once_and_a_change_keeps_the_cursor(
    server_url: str, account: str
) -> None:
    url = subscription(server_url, account, "hook")
    put(f"{server_url}/v1.0/{account}/q", "m1")
    hook = {"url": "http://127.0.0.1:9/hook", "max_attempts": 3}
    created = httpx.put(url, json={"start": "oldest", "webhook": hook})
    assert created.status_code == 201, created.text
    made = created.json()["webhook"]
    assert (made["url"], made["max_attempts"], made["dead_letter_queue"]) == (
        hook["url"],
        3,
        "q-dead",
    )
    Webhook(made["secret"])  # a secret Standard Webhooks takes
    shown = httpx.get(url).json()
    assert "secret" not in shown["webhook"]
    assert shown["delivery"] == {
        "holder": None,
        "until": 0.0,
        "failures": 0,
        "next_attempt": 0.0,
        "disabled": None,
        "dead_lettered": 0,
        "last_error": None,
    }
    ack(server_url, account, "hook", "m1")
    own = {"url": "https://example.com/in", "secret": made["secret"], "dead_letter_queue": "dlq"}
    changed = httpx.put(url, json={"start": "oldest", "webhook": own})
    assert changed.status_code == 200, changed.text
    assert changed.json()["cursor"] == "m1"  # the start of an existing one is ignored
    assert changed.json()["webhook"] == {
        "url": own["url"],
        "max_attempts": 8,
        "dead_letter_queue": "dlq",
    }
    assert httpx.put(url, json={}).json()["webhook"] is None


def test_a_queues_subscriptions_are_listed_by_name_and_deleted(
    server_url: str, account: str
) -> None:
    listing = f"{server_url}/v1.0/{account}/q/-/subscriptions"
    assert httpx.get(listing).status_code == 404
    for name in ("c", "a", "b"):
        httpx.put(subscription(server_url, account, name), content=b"")
    httpx.put(subscription(server_url, account, "z", queue="other"), content=b"")
    assert httpx.get(listing).json() == ["a", "b", "c"]
    assert httpx.get(listing, params={"limit": 1, "marker": "a"}).json() == ["b"]
    assert httpx.get(listing, params={"detail": "all"}).json() == [
        {"id": "a"},
        {"id": "b"},
        {"id": "c"},
    ]
    assert httpx.delete(subscription(server_url, account, "b")).status_code == 204
    assert httpx.delete(subscription(server_url, account, "b")).status_code == 404
    assert httpx.get(subscription(server_url, account, "b")).status_code == 404
    assert httpx.get(listing).json() == ["a", "c"]
    put(f"{server_url}/v1.0/{account}/q", "m")
    assert httpx.delete(f"{server_url}/v1.0/{account}/q").status_code == 204  # a purge
    assert httpx.get(listing).json() == ["a", "c"]  # kept apart from the messages


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"start": "middle"}',
        b'{"start": 1}',
        b'{"cursor": "m1"}',
        b'{"webhook": {}}',
        b'{"webhook": {"url": "ftp://host/x"}}',
        b'{"webhook": {"url": "http://host/a b"}}',
        b'{"webhook": {"url": "http://h", "extra": 1}}',
        b'{"webhook": {"url": "http://h", "secret": "not-whsec"}}',
        b'{"webhook": {"url": "http://h", "secret": "whsec_short"}}',
        b'{"webhook": {"url": "http://h", "max_attempts": 0}}',
        b'{"webhook": {"url": "http://h", "max_attempts": true}}',
        b'{"webhook": {"url": "http://h", "dead_letter_queue": "q"}}',
        b'{"webhook": {"url": "http://h", "dead_letter_queue": "a/b"}}',
    ],
)
def test_a_bad_subscription_body_is_a_400_and_stores_nothing(
    server_url: str, account: str, body: bytes
) -> None:
    url = subscription(server_url, account, "s")
    response = httpx.put(url, content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]
    assert httpx.get(url).status_code == 404


def test_bad_names_ids_and_parameters_are_4xx(server_url: str, account: str) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    url = subscription(server_url, account, "s")
    httpx.put(url, content=b"")
    for response, status in [
        (httpx.put(subscription(server_url, account, "%01"), content=b""), 400),
        (httpx.put(subscription(server_url, account, "x" * 256), content=b""), 400),
        (httpx.get(f"{queue}/-/subscriptions/s/more"), 404),
        (httpx.get(f"{queue}/-/subscriptions/"), 404),
        (httpx.post(url), 400),
        (httpx.post(url, params={"ack": "a/b"}), 400),
        (httpx.post(subscription(server_url, account, "none"), params={"ack": "m"}), 404),
        (httpx.get(queue, params={"subscription": "none"}), 404),
        (httpx.get(queue, params={"subscription": "s", "match_hidden": "yes"}), 400),
        (httpx.get(queue, params={"subscription": "a/b", "detail": "stats"}), 400),
        (httpx.get(queue, params={"subscription": "s", "limit": 0}), 400),
        (httpx.get(url, params={"x": 1}), 400),
        (httpx.patch(url), 405),
    ]:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.json()["error"]


def test_a_reader_may_read_and_only_a_writer_change(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    writer = {"X-Auth-Token": add_key(keyfile, "writer", "a")}
    reader = {"X-Auth-Token": add_key(keyfile, "reader", "a")}
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    url, queue = subscription(server.url, "a", "s"), f"{server.url}/v1.0/a/q"
    assert httpx.put(url, content=b"", headers=reader).status_code == 403
    assert httpx.put(url, json={"start": "oldest"}, headers=writer).status_code == 201
    httpx.put(f"{queue}/m", content=b"x", headers=writer)
    assert httpx.get(url, headers=reader).status_code == 200
    assert httpx.get(queue, params={"subscription": "s"}, headers=reader).status_code == 200
    assert httpx.get(f"{queue}/-/subscriptions", headers=reader).json() == ["s"]
    assert httpx.post(url, params={"ack": "m"}, headers=reader).status_code == 403
    assert httpx.delete(url, headers=reader).status_code == 403
    assert httpx.post(url, params={"ack": "m"}, headers=writer).status_code == 204
    assert httpx.get(url).status_code == 401


def test_a_cursor_survives_a_restart_on_sqlite(start_server: ServerFactory, tmp_path: Path) -> None:
    backend = f"sqlite:///{tmp_path}/store.db"
    server = start_server(backend)
    queue = f"{server.url}/v1.0/a/q"
    httpx.put(subscription(server.url, "a", "s"), json={"start": "oldest"})
    put(queue, "m1", "m2")
    ack(server.url, "a", "s", "m1")
    assert server.stop() == 0
    again = start_server(backend)
    assert read(f"{again.url}/v1.0/a/q", "s") == ["m2"]


def test_a_subscription_through_a_ring_of_two_members(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    """Messages spread over both members (replicas 2); the subscription on the first."""
    members = [(f"sqlite:///{tmp_path}/m{i}.db", "az1") for i in range(2)]
    server = start_server(ring_url(tmp_path / "ring.toml", 2, members))
    queue = f"{server.url}/v1.0/a/q"
    created = httpx.put(subscription(server.url, "a", "s"), json={"start": "oldest"})
    assert created.status_code == 201
    # Ids the server makes, in time order: the ring lists the members' messages merged
    # in that order.
    put_ids = [httpx.put(queue, json=[{"body": f"m{i}"}]).json()[0] for i in range(6)]
    assert read(queue, "s", limit=3) == put_ids[:3]
    ack(server.url, "a", "s", put_ids[2])
    assert read(queue, "s") == put_ids[3:]
    assert httpx.get(f"{queue}/-/subscriptions").json() == ["s"]


def test_a_document_from_before_the_last_error_reads_and_a_bad_one_is_refused() -> None:
    """Servers of a store upgrade one at a time: each version reads the other's documents
    (an earlier one passes `last_error` by: it is beside `delivery`, not in it)."""
    earlier = (
        b'{"cursor":"m1","created":1.5,"webhook":null,"delivery":{"holder":null,"until":0.0,'
        b'"failures":0,"next_attempt":0.0,"disabled":null,"dead_lettered":0},"cursor_sent":2.5}'
    )
    assert decode("s", checked("s", earlier)) == Subscription("s", "m1", 1.5, cursor_sent=2.5)
    failed = Subscription("s", "m1", 1.5, last_error=DeliveryError(3.5, "m2", "HTTP 500"))
    assert orjson.loads(encode(failed))["delivery"] == orjson.loads(earlier)["delivery"]
    assert decode("s", checked("s", encode(failed))) == failed
    mistyped = earlier[:-1] + b',"last_error":{"at":"x","message":"m2","error":"e"}}'
    for bad in (mistyped, b"[]", b"{"):
        with pytest.raises(InvalidRequest):
            checked("s", bad)
