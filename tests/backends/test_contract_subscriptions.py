"""The storage contract, continued: subscriptions (`burrow.subscriptions`).

Each is one opaque document, stored by compare-and-set so that concurrent cursor moves
and leases cannot lose one another's change, and kept apart from the queue's messages.
"""

from __future__ import annotations

import asyncio

import pytest

from burrow.backends.base import Backend
from burrow.errors import NoMatch
from burrow.model import Filters
from burrow.subscriptions import Delivery, Subscription, Webhook, encode
from tests.backends.test_contract import A, Q, fill


def doc(cursor: str) -> bytes:
    """A document as `burrow.subscriptions` writes it (what the http backend's remote
    server takes), told apart by its cursor."""
    return encode(Subscription("s", cursor, 1767225600.25))


async def test_a_subscription_is_compared_and_set(backend: Backend) -> None:
    assert await backend.get_subscription(A, Q, "s") is None
    assert await backend.set_subscription(A, Q, "s", doc("v1"), expected=doc("v0")) is False
    assert await backend.set_subscription(A, Q, "s", doc("v1"), expected=None) is True
    assert await backend.set_subscription(A, Q, "s", doc("v9"), expected=None) is False
    assert await backend.get_subscription(A, Q, "s") == doc("v1")
    assert await backend.set_subscription(A, Q, "s", doc("v2"), expected=doc("no")) is False
    # Stored as given, to the byte: a webhook's secret, text beyond ASCII.
    hook = Webhook("http://127.0.0.1:9/h", "whsec_" + "A" * 32, 8, "é-dead")
    full = encode(Subscription("s", "é", 1.5, hook, Delivery("p1", 2.5, 1, 3.5, None, 4)))
    assert await backend.set_subscription(A, Q, "s", full, expected=doc("v1")) is True
    assert await backend.get_subscription(A, Q, "s") == full
    for elsewhere in (("other", Q, "s"), (A, "q2", "s"), (A, Q, "t")):
        assert await backend.get_subscription(*elsewhere) is None


async def test_concurrent_compare_and_sets_store_one(backend: Backend) -> None:
    await backend.set_subscription(A, Q, "s", doc("0"), expected=None)
    stored = await asyncio.gather(
        *(backend.set_subscription(A, Q, "s", doc(f"{i}"), doc("0")) for i in range(1, 9))
    )
    assert stored.count(True) == 1
    assert await backend.get_subscription(A, Q, "s") == doc(f"{stored.index(True) + 1}")


async def test_subscriptions_live_apart_from_messages(backend: Backend) -> None:
    await backend.set_subscription(A, "empty", "s", doc("d"), expected=None)
    with pytest.raises(NoMatch):  # a queue with a subscription holds no message for it
        await backend.get_queues(A, Filters())
    await fill(backend, "m")
    await backend.set_subscription(A, Q, "s", doc("d"), expected=None)
    await backend.delete_queues(A, Filters())
    assert await backend.get_subscription(A, Q, "s") == doc("d")
    await fill(backend, "m")
    await backend.delete_accounts(Filters())
    assert await backend.get_subscription(A, Q, "s") == doc("d")
    assert await backend.delete_subscription(A, Q, "s") is True
    assert await backend.delete_subscription(A, Q, "s") is False
    assert await backend.get_subscription(A, Q, "s") is None
    assert await backend.get_subscription(A, "empty", "s") == doc("d")
    await fill(backend, "m")
    await backend.set_subscription(A, Q, "s", doc("d"), expected=None)
    await backend.delete_subscription(A, Q, "s")
    assert (await backend.get_message(A, Q, "m")).id == "m"


async def test_a_queues_subscriptions_list_in_name_order(backend: Backend) -> None:
    with pytest.raises(NoMatch):
        await backend.list_subscriptions(A, Q, Filters())
    for name in ("é", "b", "a2", "z", "a"):  # code point order: é (U+00E9) after z
        await backend.set_subscription(A, Q, name, doc("d"), expected=None)
    await backend.set_subscription(A, "q2", "0", doc("d"), expected=None)
    await backend.set_subscription("other", Q, "0", doc("d"), expected=None)
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
        await backend.set_subscription(*key, doc("d"), expected=None)
    ordered = sorted(keys)
    assert await backend.list_all_subscriptions(None, 10) == ordered
    assert await backend.list_all_subscriptions(None, 2) == ordered[:2]
    assert await backend.list_all_subscriptions(ordered[1], 2) == ordered[2:4]
    assert await backend.list_all_subscriptions((A, "q", "b"), 10) == ordered[2:]
    assert await backend.list_all_subscriptions(ordered[-1], 10) == []
