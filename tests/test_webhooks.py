"""Webhook delivery by real servers to a real local endpoint (tests/webhook_receiver.py):
order, signatures, retries, dead letters, 410, Retry-After, a kill -9, two servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.waiting import wait_until
from tests.webhook_receiver import Delivery, Receiver, always, failing_first, running

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Quick timings, so that retries and a dead server's lease take a test seconds: a POST
# that takes over 1 s fails; a lease runs out 3 s after its holder died.
TIMINGS = """[server]
webhook_timeout = 1.0
webhook_lease = 3.0
webhook_backoff = 0.05
webhook_max_backoff = 0.2
webhook_scan_every = 0.1
"""


@pytest.fixture
def quick(tmp_path: Path) -> tuple[str, str]:
    """`serve`'s arguments for `TIMINGS`."""
    config = tmp_path / "webhooks.toml"
    config.write_text(TIMINGS)
    return ("--config", str(config))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(Receiver()) as started:
        yield started


def subscribe(
    server: BurrowServer, account: str, queue: str, name: str, url: str, **webhook: Any
) -> dict[str, Any]:
    response = httpx.put(
        f"{server.url}/v1.0/{account}/{queue}/-/subscriptions/{name}",
        json={"start": "oldest", "webhook": {"url": url, **webhook}},
    )
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def subscription(server: BurrowServer, account: str, queue: str, name: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1.0/{account}/{queue}/-/subscriptions/{name}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def put(server: BurrowServer, account: str, queue: str, count: int, start: int = 0) -> list[str]:
    """Put messages `m-00start`… one batch; their ids, in queue order."""
    ids = [f"m-{n:04d}" for n in range(start, start + count)]
    batch = [{"id": id, "body": f"body of {id}"} for id in ids]
    response = httpx.put(f"{server.url}/v1.0/{account}/{queue}", json=batch)
    assert response.status_code in (200, 201), response.text
    return ids


def held(server: BurrowServer, account: str, queue: str) -> list[str]:
    """The ids of the messages a queue holds, in order."""
    response = httpx.get(
        f"{server.url}/v1.0/{account}/{queue}", params={"detail": "id", "limit": 1000}
    )
    return [] if response.status_code == 404 else response.json()


def test_an_endpoint_that_fails_twice_gets_every_message_in_order_signed(
    start_server: ServerFactory, quick: tuple[str, str], receiver: Receiver, account: str
) -> None:
    server = start_server("memory://", *quick)
    receiver.answer = failing_first(2)
    ids = put(server, account, "orders", 5)
    made = subscribe(server, account, "orders", "billing", receiver.url + "/billing")
    secret = made["webhook"]["secret"]  # made by the server, shown this once
    assert secret.startswith("whsec_")
    assert "secret" not in subscription(server, account, "orders", "billing")["webhook"]

    wait_until(lambda: receiver.accepted_ids() == ids, "every message delivered")
    posts = receiver.received()
    assert [d.message_id for d in posts] == [id for id in ids for _ in range(3)]
    for delivery in posts:
        assert delivery.path == "/billing"
        assert delivery.verified(secret)["body"] == f"body of {delivery.message_id}"
    wait_until(
        lambda: subscription(server, account, "orders", "billing")["cursor"] == ids[-1],
        "the cursor at the last message",
    )
    delivery = subscription(server, account, "orders", "billing")["delivery"]
    assert delivery["failures"] == 0
    # The last failure stays in sight after the deliveries went on: the last message's.
    assert delivery["last_error"]["message"] == ids[-1]
    assert delivery["last_error"]["error"] == "HTTP 500"
    assert receiver.overlaps == []


def test_an_endpoint_that_always_fails_sends_each_message_to_the_dead_letter_queue(
    start_server: ServerFactory, quick: tuple[str, str], receiver: Receiver, account: str
) -> None:
    server = start_server("memory://", *quick)
    receiver.answer = always(500)
    subscribe(server, account, "orders", "billing", receiver.url, max_attempts=3, secret=SECRET)
    ids = put(server, account, "orders", 2)

    wait_until(lambda: held(server, account, "orders-dead") == ids, "both dead-lettered")
    assert [d.message_id for d in receiver.received()] == [ids[0]] * 3 + [ids[1]] * 3
    found = subscription(server, account, "orders", "billing")
    assert (found["cursor"], found["delivery"]["dead_lettered"]) == (ids[-1], 2)
    error = found["delivery"]["last_error"]
    assert (error["message"], error["error"]) == (ids[-1], "HTTP 500")
    assert abs(error["at"] - time.time()) < 60  # epoch seconds
    body = httpx.get(f"{server.url}/v1.0/{account}/orders-dead/{ids[0]}").json()["body"]
    assert body == f"body of {ids[0]}"
    assert held(server, account, "orders") == ids, "the queue keeps its messages"


def test_410_disables_the_webhook_until_it_is_set_again(
    start_server: ServerFactory, quick: tuple[str, str], receiver: Receiver, account: str
) -> None:
    server = start_server("memory://", *quick)
    receiver.answer = lambda d: (410 if d.path == "/gone" else 204, {})
    subscribe(server, account, "orders", "gone", receiver.url + "/gone", secret=SECRET)
    first = put(server, account, "orders", 1)
    wait_until(
        lambda: subscription(server, account, "orders", "gone")["delivery"]["disabled"],
        "the webhook disabled",
    )
    gone = subscription(server, account, "orders", "gone")["delivery"]
    assert "410" in gone["disabled"]
    assert (gone["last_error"]["message"], gone["last_error"]["error"]) == (
        first[0],
        "HTTP 410 Gone",
    )
    later = put(server, account, "orders", 2, start=1)
    # Another subscription of the queue getting the later messages shows the scans went on.
    subscribe(server, account, "orders", "live", receiver.url + "/live", secret=SECRET)
    wait_until(lambda: receiver.accepted_ids("/live") == first + later, "the live one delivered")
    assert [d.message_id for d in receiver.received("/gone")] == first
    assert subscription(server, account, "orders", "gone")["cursor"] is None

    receiver.answer = always(204)
    response = httpx.put(  # set again: enabled, from where its cursor stayed
        f"{server.url}/v1.0/{account}/orders/-/subscriptions/gone",
        json={"webhook": {"url": receiver.url + "/gone", "secret": SECRET}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["delivery"]["last_error"] is None  # its state starts anew
    wait_until(lambda: receiver.accepted_ids("/gone") == first + later, "delivered once enabled")


def test_429_is_retried_after_the_wait_its_retry_after_asks(
    start_server: ServerFactory, quick: tuple[str, str], receiver: Receiver, account: str
) -> None:
    server = start_server("memory://", *quick)
    receiver.answer = lambda d: (429, {"retry-after": "1"}) if d.attempt == 1 else (204, {})
    subscribe(server, account, "orders", "billing", receiver.url, secret=SECRET)
    ids = put(server, account, "orders", 1)
    wait_until(lambda: receiver.accepted_ids() == ids, "delivered after the 429")
    first, second = receiver.received()
    assert second.arrived - first.arrived >= 1.0  # the backoff alone would be 0.05 s


def test_a_subscription_made_again_during_a_post_keeps_nothing_of_the_old_webhooks_outcome(
    start_server: ServerFactory, tmp_path: Path, receiver: Receiver, account: str
) -> None:
    # A POST may stay open long enough here to delete and make the subscription again.
    (tmp_path / "slow.toml").write_text(
        "[server]\nwebhook_timeout = 60.0\nwebhook_lease = 121.0\nwebhook_scan_every = 0.1\n"
    )
    server = start_server("memory://", "--config", str(tmp_path / "slow.toml"))
    arrived, answer_now = threading.Event(), threading.Event()

    def answer(delivery: Delivery) -> tuple[int, dict[str, str]]:
        if delivery.path == "/new":
            return 204, {}
        arrived.set()
        answer_now.wait(timeout=60)
        return 500, {}

    receiver.answer = answer
    ids = put(server, account, "orders", 2)
    subscribe(server, account, "orders", "billing", receiver.url + "/old", secret=SECRET)
    assert arrived.wait(timeout=60), "the first POST open"
    path = f"{server.url}/v1.0/{account}/orders/-/subscriptions/billing"
    assert httpx.delete(path).status_code == 204
    subscribe(server, account, "orders", "billing", receiver.url + "/new", secret=SECRET)
    answer_now.set()  # the old webhook's POST fails now

    wait_until(lambda: receiver.accepted_ids("/new") == ids, "the new webhook gets both")
    found = subscription(server, account, "orders", "billing")
    assert found["cursor"] == ids[-1]
    assert (found["delivery"]["failures"], found["delivery"]["last_error"]) == (0, None)
    assert [d.message_id for d in receiver.received("/old")] == ids[:1]


def test_a_server_killed_mid_delivery_loses_nothing_and_delivers_the_rest_once_restarted(
    start_server: ServerFactory, quick: tuple[str, str], receiver: Receiver, account: str
) -> None:
    receiver.hold = 0.02
    server = start_server("sqlite:///burrow.db", *quick)
    port = server.url.rsplit(":", 1)[1]
    ids = put(server, account, "orders", 60)
    subscribe(server, account, "orders", "billing", receiver.url, secret=SECRET)
    wait_until(lambda: len(receiver.accepted_ids()) >= 10, "deliveries under way")
    server.kill()
    acknowledged = len(receiver.accepted_ids())
    assert acknowledged < len(ids), "killed before the end"

    restarted = start_server("sqlite:///burrow.db", *quick, "--port", port)
    wait_until(lambda: set(receiver.accepted_ids()) == set(ids), "the rest delivered")
    accepted = receiver.accepted_ids()
    assert list(dict.fromkeys(accepted)) == ids, "in order, nothing skipped"
    # At most the one POST answered but not yet acknowledged at the kill comes again.
    assert len(accepted) - len(ids) <= 1
    wait_until(
        lambda: subscription(restarted, account, "orders", "billing")["cursor"] == ids[-1],
        "the cursor at the last message",
    )


@pytest.mark.parametrize("engine", ["redis", "postgres"])
def test_two_servers_on_one_store_never_deliver_a_subscription_at_once(
    request: pytest.FixtureRequest,
    start_server: ServerFactory,
    quick: tuple[str, str],
    receiver: Receiver,
    account: str,
    engine: str,
) -> None:
    backend = request.getfixturevalue(f"{engine}_backend_url")
    receiver.hold = 0.01  # a POST is open a while: another one meanwhile is an overlap
    first, second = start_server(backend, *quick), start_server(backend, *quick)
    names = [f"s{n}" for n in range(6)]
    for name in names:
        subscribe(first, account, "orders", name, f"{receiver.url}/{name}", secret=SECRET)
    ids = put(first, account, "orders", 20)
    wait_until(lambda: len(receiver.accepted_ids()) >= 30, "deliveries under way")
    first.stop()  # its leases are given up: the other server takes them over
    more = put(second, account, "orders", 10, start=20)

    def all_delivered() -> bool:
        return all(set(receiver.accepted_ids(f"/{n}")) == set(ids + more) for n in names)

    wait_until(all_delivered, "every subscription's messages delivered")
    assert receiver.overlaps == []
    for name in names:
        assert receiver.accepted_ids(f"/{name}") == ids + more, f"{name}: once each, in order"


def test_a_server_storing_through_another_delivers_its_webhooks(
    start_server: ServerFactory,
    quick: tuple[str, str],
    receiver: Receiver,
    account: str,
    tmp_path: Path,
) -> None:
    """A proxy (the `http` backend) finds the subscriptions on its remote server, takes
    their leases and moves their cursors there; the remote delivers none itself here."""
    (tmp_path / "quiet.toml").write_text("[server]\nwebhooks = false\n")
    remote = start_server("memory://", "--config", str(tmp_path / "quiet.toml"))
    proxy = start_server(remote.url, *quick)
    receiver.answer = failing_first(1)
    subscribe(proxy, account, "orders", "billing", receiver.url, secret=SECRET)
    ids = put(proxy, account, "orders", 5)
    wait_until(lambda: receiver.accepted_ids() == ids, "every message delivered")
    wait_until(
        lambda: subscription(remote, account, "orders", "billing")["cursor"] == ids[-1],
        "the cursor at the last message, on the remote",
    )
    stored = subscription(remote, account, "orders", "billing")["delivery"]
    assert stored["holder"] is not None  # the proxy's lease, kept while it delivers
    assert stored["last_error"]["error"] == "HTTP 500"
    assert receiver.overlaps == []
