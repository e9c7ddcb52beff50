"""The storage contract, continued: subscriptions (`burrow.subscriptions`).

Each is one opaque document, stored by compare-and-set so that concurrent cursor moves
and leases cannot lose one another's change, and kept apart from the queue's messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from burrow.backends import open_backend
from burrow.backends.base import Backend
from burrow.errors import NoMatch
from burrow.model import Filters
from tests.backends.conftest import BACKENDS
from tests.backends.test_contract import A, Q, fill


# Every backend but those reached through `http` (whose remote server has no raw
# subscription resource yet).
@pytest.fixture(params=[name for name in BACKENDS if name not in ("http", "sqlite-workers")])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    url: str = request.getfixturevalue(f"{request.param.replace('-', '_')}_backend_url")
    async with open_backend(url) as opened:
        yield opened


async def test_a_subscription_is_compared_and_set(backend: Backend) -> None:
    assert await backend.get_subscription(A, Q, "s") is None
    assert await backend.set_subscription(A, Q, "s", b"v1", expected=b"v0") is False
    assert await backend.set_subscription(A, Q, "s", b"v1", expected=None) is True
    assert await backend.set_subscription(A, Q, "s", b"v9", expected=None) is False
    assert await backend.get_subscription(A, Q, "s") == b"v1"
    assert await backend.set_subscription(A, Q, "s", b"v2", expected=b"wrong") is False
    assert await backend.set_subscription(A, Q, "s", b'{"c": 2}\x00', expected=b"v1") is True
    assert await backend.get_subscription(A, Q, "s") == b'{"c": 2}\x00'
    for elsewhere in (("other", Q, "s"), (A, "q2", "s"), (A, Q, "t")):
        assert await backend.get_subscription(*elsewhere) is None


async def test_concurrent_compare_and_sets_store_one(backend: Backend) -> None:
    await backend.set_subscription(A, Q, "s", b"0", expected=None)
    stored = await asyncio.gather(
        *(backend.set_subscription(A, Q, "s", f"{i}".encode(), b"0") for i in range(1, 9))
    )
    assert stored.count(True) == 1
    assert await backend.get_subscription(A, Q, "s") == f"{stored.index(True) + 1}".encode()


async def test_subscriptions_live_apart_from_messages(backend: Backend) -> None:
    await backend.set_subscription(A, "empty", "s", b"doc", expected=None)
    with pytest.raises(NoMatch):  # a queue with a subscription holds no message for it
        await backend.get_queues(A, Filters())
    await fill(backend, "m")
    await backend.set_subscription(A, Q, "s", b"doc", expected=None)
    await backend.delete_queues(A, Filters())
    assert await backend.get_subscription(A, Q, "s") == b"doc"
    await fill(backend, "m")
    await backend.delete_accounts(Filters())
    assert await backend.get_subscription(A, Q, "s") == b"doc"
    assert await backend.delete_subscription(A, Q, "s") is True
    assert await backend.delete_subscription(A, Q, "s") is False
    assert await backend.get_subscription(A, Q, "s") is None
    assert await backend.get_subscription(A, "empty", "s") == b"doc"
    await fill(backend, "m")
    await backend.set_subscription(A, Q, "s", b"doc", expected=None)
    await backend.delete_subscription(A, Q, "s")
    assert (await backend.get_message(A, Q, "m")).id == "m"


async def test_a_queues_subscriptions_list_in_name_order(backend: Backend) -> None:
    with pytest.raises(NoMatch):
        await backend.list_subscriptions(A, Q, Filters())
    for name in ("é", "b", "a2", "z", "a"):  # code point order: é (U+00E9) after z
        await backend.set_subscription(A, Q, name, b"d", expected=None)
    await backend.set_subscription(A, "q2", "0", b"d", expected=None)
    await backend.set_subscription("other", Q, "0", b"d", expected=None)
    assert await backend.list_subscriptions(A, Q, Filters()) == ["a", "a2", "b", "z", "é"]
    assert await backend.list_subscriptions(A, Q, Filters(limit=2)) == ["a", "a2"]
    assert await backend.list_subscriptions(A, Q, Filters(limit=2, marker="a2")) == ["b", "z"]
    # A marker needs no subscription of that name: it is a place in the order.
    assert await backend.list_subscriptions(A, Q, Filters(marker="c")) == ["z", "é"]
    with pytest.raises(NoMatch):
        await backend.list_subscriptions(A, Q, Filters(marker="é"))
    assert await backend.list_subscriptions(A, "q2", Filters()) == ["0"]


async def test_every_subscription_of_the_store_pages_in_order(backend: Backend) -> None:
    assert await backend.list_all_subscriptions(None, 10) == []
    keys = [("b", "q", "s"), (A, "q", "z"), (A, "q", "a"), (A, "p", "s"), ("other", "q", "s")]
    for key in keys:
        await backend.set_subscription(*key, b"d", expected=None)
    ordered = sorted(keys)
    assert await backend.list_all_subscriptions(None, 10) == ordered
    assert await backend.list_all_subscriptions(None, 2) == ordered[:2]
    assert await backend.list_all_subscriptions(ordered[1], 2) == ordered[2:4]
    assert await backend.list_all_subscriptions((A, "q", "b"), 10) == ordered[2:]
    assert await backend.list_all_subscriptions(ordered[-1], 10) == []
