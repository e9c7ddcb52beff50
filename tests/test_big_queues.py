"""Big queues: an answer's bodies stay within `max_response_bytes`, and big deletes let
other requests through while they run.

Listings, claims and pops are cut at a message boundary; paging on (with `marker`, or
by claiming and popping again) reaches every message exactly once, and no claimed or
popped message is left out of an answer. A purge or a delete of an account goes a
chunk at a time: requests from others are answered in between, and see it half done.
"""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from burrow.backends.memory import MemoryBackend, Queue
from burrow.backends.memory_messages import BODY
from burrow.model import Attributes, Filters, NewMessage
from tests.local_servers import LOCAL_BACKENDS, start_local
from tests.servers import BurrowServer

LARGEST = 1000  # max_body_bytes of the test server
CAP = 20 * LARGEST  # its max_response_bytes
Q = "/v1.0/a/q"
COUNT = 300


@pytest.fixture(scope="module", params=LOCAL_BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BurrowServer]:
    workdir = tmp_path_factory.mktemp(request.param)
    config = workdir / "burrow.toml"
    config.write_text(f"[limits]\nmax_body_bytes = {LARGEST}\nmax_response_bytes = {CAP}\n")
    started = start_local(request.param, workdir, "--config", str(config))
    yield started
    started.kill()


@pytest.fixture
def http(server: BurrowServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client
        client.delete("/v1.0")


def fill(http: httpx.Client, path: str = Q, count: int = COUNT, size: int = 0) -> dict[str, str]:
    """`count` messages, bodies of random sizes up to the largest (or all of `size`)."""
    rng = random.Random(count)
    bodies = {f"m{i:05}": "x" * (size or rng.randint(1, LARGEST)) for i in range(count)}
    items = list(bodies.items())
    for start in range(0, count, 1000):
        batch = [{"id": i, "body": body} for i, body in items[start : start + 1000]]
        assert http.put(path, json=batch, params={"ttl": 0}).status_code == 201
    return bodies


def answers(http: httpx.Client, method: str, by_marker: bool, **params: Any) -> list[list[Any]]:
    """Each answer to `method` on the queue at `limit=1000` until a 404."""
    query: dict[str, Any] = {"limit": 1000, "detail": "all", **params}
    found: list[list[Any]] = []
    while (response := http.request(method, Q, params=query)).status_code == 200:
        found.append(response.json())
        assert len(found) <= COUNT, "paging does not end"
        if by_marker:
            query["marker"] = found[-1][-1]["id"]
    assert response.status_code == 404, response.text
    return found


def check_pages(found: list[list[Any]], bodies: dict[str, str]) -> None:
    """Every message once, in order, with its body; each answer within the cap, and cut
    only where the next message might not have fitted."""
    assert [m["id"] for page in found for m in page] == list(bodies)
    for page in found:
        assert all(m["body"] == bodies[m["id"]] for m in page)
        size = sum(len(m["body"]) for m in page)
        assert size <= CAP or len(page) == 1
    for page in found[:-1]:
        assert CAP - sum(len(m["body"]) for m in page) < LARGEST
    assert len(found) > 4  # the cap cut the answers short (4 would hold every body)


def test_a_listing_is_cut_at_the_byte_cap_and_marker_goes_on(http: httpx.Client) -> None:
    bodies = fill(http)
    check_pages(answers(http, "GET", by_marker=True), bodies)
    # Without bodies in the answer the cap does not cut it.
    ids = http.get(Q, params={"limit": 1000, "detail": "id"}).json()
    assert ids == list(bodies)
    listed = http.get(Q, params={"limit": 1000, "detail": "attributes"}).json()
    assert [m["id"] for m in listed] == list(bodies)


def test_claims_within_the_cap_take_every_message_once(http: httpx.Client) -> None:
    bodies = fill(http)
    check_pages(answers(http, "POST", by_marker=False, hide=600), bodies)
    hidden = http.get(Q, params={"limit": 1000, "match_hidden": "true", "detail": "attributes"})
    assert all(m["hide"] > 0 for m in hidden.json())  # claimed, and answered: none lost


def test_pops_within_the_cap_take_every_message_once(http: httpx.Client) -> None:
    bodies = fill(http)
    check_pages(answers(http, "DELETE", by_marker=False), bodies)
    assert http.get(Q, params={"match_hidden": "true"}).status_code == 404


def test_claims_with_match_hidden_go_on_after_the_last_one(http: httpx.Client) -> None:
    bodies = fill(http)
    # Claimed messages still match: each next step must start after the last one taken.
    check_pages(answers(http, "POST", by_marker=True, hide=600, match_hidden="true"), bodies)


def test_a_pop_after_a_marker_stays_after_it(http: httpx.Client) -> None:
    bodies = fill(http)
    ids = list(bodies)
    popped = http.delete(Q, params={"limit": 1000, "detail": "id", "marker": ids[9]}).json()
    assert popped == ids[10:]
    assert http.get(Q, params={"detail": "id"}).json() == ids[:10]


def test_one_message_bigger_than_the_cap_still_comes(tmp_path: Path) -> None:
    config = tmp_path / "burrow.toml"
    config.write_text("[limits]\nmax_body_bytes = 1000\nmax_response_bytes = 10\n")
    server = start_local("memory", tmp_path, "--config", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            bodies = fill(http, count=5, size=500)
            assert len(http.get(Q).json()) == 1
            popped = [http.delete(Q, params={"detail": "all"}).json() for _ in bodies]
            assert [m["id"] for answer in popped for m in answer] == list(bodies)
    finally:
        server.kill()


def test_concurrent_claimers_lose_and_share_nothing(
    http: httpx.Client, server: BurrowServer
) -> None:
    bodies = fill(http)
    claimed: list[list[str]] = [[] for _ in range(4)]

    def claimer(mine: list[str]) -> None:
        with httpx.Client(base_url=server.url, timeout=120) as own:
            query: dict[str, Any] = {"limit": 1000, "hide": 600, "detail": "all"}
            while (response := own.post(Q, params=query)).status_code == 200:
                mine += [m["id"] for m in response.json()]
            assert response.status_code == 404, response.text

    threads = [threading.Thread(target=claimer, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    every = [i for mine in claimed for i in mine]
    assert sorted(every) == list(bodies)  # each message claimed by exactly one claimer


BIG = 20_000


def watch(http: httpx.Client, path: str, server: BurrowServer) -> tuple[set[str], int]:
    """Delete `path` while another client lists the queue again and again: the first id
    of each answer it got while the delete ran, and how many of its requests those were."""
    seen: set[str] = set()
    looking, deleting, done = threading.Event(), threading.Event(), threading.Event()
    answered = 0

    def look() -> None:
        nonlocal answered
        with httpx.Client(base_url=server.url, timeout=120) as other:
            while not done.is_set():
                response = other.get(Q, params={"detail": "id", "limit": 1})
                looking.set()
                if deleting.is_set() and not done.is_set():  # answered while it ran
                    answered += 1
                    seen.add(response.json()[0] if response.status_code == 200 else "404")

    looker = threading.Thread(target=look)
    looker.start()
    try:
        assert looking.wait(60)
        deleting.set()
        assert http.delete(path).status_code == 204
    finally:
        done.set()
        looker.join(120)
    return seen, answered


def test_a_purge_lets_other_requests_through(http: httpx.Client, server: BurrowServer) -> None:
    ids = list(fill(http, count=BIG, size=200))  # a purge step takes CAP // 200 = 100
    assert http.put("/v1.0/other/q/kept", content=b"x").status_code == 201
    seen, answered = watch(http, Q, server)
    assert answered > 0
    # Half done: the purge had started (the first message gone) and not finished.
    assert seen - {ids[0], "404"}, seen
    assert http.get(Q, params={"match_hidden": "true"}).status_code == 404
    assert http.get("/v1.0/other/q/kept").status_code == 200


def test_deleting_an_account_lets_other_requests_through(
    http: httpx.Client, server: BurrowServer
) -> None:
    ids = list(fill(http, count=BIG, size=200))
    assert http.put("/v1.0/other/q/kept", content=b"x").status_code == 201
    seen, answered = watch(http, "/v1.0/a", server)
    assert answered > 0
    if server.backend == "memory://":
        # The account goes at once; only freeing its messages is spread out.
        assert seen <= {ids[0], "404"}
    else:  # SQLite deletes a chunk of rows per write
        assert seen - {ids[0], "404"}, seen
    assert http.get("/v1.0/a").status_code == 404
    assert http.get("/v1.0/other/q/kept").status_code == 200


# The memory backend's order index: a listing after a marker starts at the marker.


def test_a_queue_lists_after_any_marker_through_removes_and_trims() -> None:
    rng = random.Random(7)
    queue = Queue()
    reference: list[str] = []  # ids in order, kept by hand
    for step in range(20_000):
        if reference and rng.random() < 0.5:
            # Mostly from the front (a queue being read), sometimes anywhere.
            victim = reference[0] if rng.random() < 0.8 else rng.choice(reference)
            queue.remove(victim)
            reference.remove(victim)
        else:
            message_id = f"m{rng.randrange(5_000)}"
            if message_id not in queue:
                reference.append(message_id)
            queue.add(NewMessage(message_id, b"x" * rng.randrange(10), 0, 0), 0.0)
        if step % 1000 == 0 and reference:
            marker = rng.choice(reference)
            assert list(queue.after(marker)) == reference[reference.index(marker) + 1 :]
    assert list(queue.after(None)) == list(queue.after("unknown")) == reference
    assert queue.bytes == sum(len(m[BODY]) for m in queue.values())
    assert len(queue.order) <= 2 * len(queue) + 1024  # stale slots stay bounded


def test_a_queue_grown_past_many_splits_keeps_every_message_and_its_order() -> None:
    """A big queue's table grows a shard at a time (`SplitDict`): after 100,000 puts and
    removes in random places, lookups, the listing order and the count still agree."""
    rng = random.Random(11)
    queue = Queue()
    ids = [f"m{i}" for i in range(100_000)]
    for message_id in ids:
        queue.add(NewMessage(message_id, b"x", 0, 0), 0.0)
    gone = set(rng.sample(ids, 60_000))
    for message_id in gone:
        queue.remove(message_id)
    kept = [i for i in ids if i not in gone]
    assert list(queue.after(None)) == kept
    assert len(queue) == len(kept) and sorted(queue) == sorted(kept)
    assert all(queue[i][0] == i for i in kept) and not any(i in queue for i in gone)
    assert list(queue.after(kept[1000])) == kept[1001:]


# The memory backend's messages: nothing for the garbage collector to walk.


async def test_stored_messages_leave_the_collector_nothing_to_walk() -> None:
    """A pass over the collector's older generations walked every stored message (170 to
    190 ms with a million, every request waiting); the collector now leaves each one out
    from its first collection on, claimed or not."""
    backend = MemoryBackend()
    gc.collect()
    before = len(gc.get_objects())
    for start in range(0, 10_000, 1000):
        batch = range(start, start + 1000)
        await backend.put_messages(
            "a", "q", [NewMessage(f"m{i}", b"x" * 100, 600, 0) for i in batch]
        )
    claim = Attributes(hide=60, receipt="r")
    assert len(await backend.update_messages("a", "q", claim, Filters(limit=500))) == 500
    gc.collect()
    assert len(gc.get_objects()) - before < 100


async def _purged_within(backend: MemoryBackend, seconds: float = 10.0) -> int:
    """Sweep until a sweep drops something (or `seconds` pass); what it dropped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if purged := await backend.purge_expired():
            return purged
        await asyncio.sleep(0.1)
    return 0


async def test_the_expiry_sweep_walks_a_queue_only_once_a_message_is_due() -> None:
    """The sweep passes by a queue until its soonest expiry (walking a million messages
    cost 200 ms of CPU a second); what it keeps, and what is put later, set the next."""
    backend = MemoryBackend()
    await backend.put_messages("a", "q", [NewMessage("soon", b"x", 1, 0)])
    await backend.put_messages("a", "q", [NewMessage("later", b"x", 600, 0)])
    assert await _purged_within(backend) == 1
    await backend.put_messages("a", "q", [NewMessage("again", b"x", 1, 0)])
    assert await _purged_within(backend) == 1
    assert [m.id for m in await backend.get_messages("a", "q", Filters())] == ["later"]
