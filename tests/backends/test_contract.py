"""The storage contract: every backend must pass all of it, unchanged."""

from __future__ import annotations

import asyncio
import time

import pytest

from burrow.backends.base import Backend
from burrow.errors import MessageNotFound, NoMatch, QuotaExceeded
from burrow.model import (
    ALL_ITEMS,
    Attributes,
    Filters,
    Message,
    MessageCounts,
    NewMessage,
    Quota,
)
from tests.waiting import CLOCK_SLACK, LONG_POLL, eventually, still_waiting, within

A, Q = "acct", "queue"


def new(message_id: str, body: bytes = b"body", ttl: int = 600, hide: int = 0) -> NewMessage:
    return NewMessage(message_id, body, ttl, hide)


async def fill(backend: Backend, *ids: str, account: str = A, queue: str = Q) -> None:
    await backend.put_messages(account, queue, [new(i, i.encode()) for i in ids])


def by_state(counts: MessageCounts) -> tuple[int, int, int]:
    """Visible, in flight, delayed."""
    return counts.visible, counts.in_flight, counts.delayed


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


async def listed(backend: Backend, filters: Filters = ALL_ITEMS) -> list[str]:
    """The ids `get_messages` answers, [] for none."""
    try:
        return ids(await backend.get_messages(A, Q, filters))
    except NoMatch:
        return []


async def test_put_then_get_one(backend: Backend) -> None:
    assert await backend.put_message(A, Q, new("m1", b"hello", ttl=100)) is True
    message = await backend.get_message(A, Q, "m1")
    assert message.body == b"hello"
    assert 99 <= message.ttl <= 100
    assert message.hide == 0


async def test_replace_resets_attributes_and_keeps_place(backend: Backend) -> None:
    await fill(backend, "m1", "m2", "m3")
    created = await backend.put_message(A, Q, new("m1", b"new", ttl=0, hide=30))
    assert created is False
    message = await backend.get_message(A, Q, "m1")
    assert (message.body, message.ttl) == (b"new", 0)
    assert 29 <= message.hide <= 30
    listed = await backend.get_messages(A, Q, Filters(match_hidden=True))
    assert ids(listed) == ["m1", "m2", "m3"]


async def test_binary_bodies_and_odd_ids_round_trip(backend: Backend) -> None:
    body = bytes(range(256)) * 4
    odd = "ü n%i?c#o&d+e=\u2603.."  # anything printable but `/` (see `Service.check_id`)
    await backend.put_message(A, Q, new(odd, body))
    assert (await backend.get_message(A, Q, odd)).body == body
    assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == [odd]


async def test_empty_body(backend: Backend) -> None:
    await backend.put_message(A, Q, new("m", b""))
    assert (await backend.get_message(A, Q, "m")).body == b""


async def test_listing_is_fifo_with_limit_and_marker(backend: Backend) -> None:
    await fill(backend, "c", "a", "b", "d")
    assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["c", "a", "b", "d"]
    assert ids(await backend.get_messages(A, Q, Filters(limit=2))) == ["c", "a"]
    assert ids(await backend.get_messages(A, Q, Filters(marker="a"))) == ["b", "d"]
    assert ids(await backend.get_messages(A, Q, Filters(marker="a", limit=1))) == ["b"]
    unknown = await backend.get_messages(A, Q, Filters(marker="zzz"))
    assert ids(unknown) == ["c", "a", "b", "d"]
    with pytest.raises(NoMatch):
        await backend.get_messages(A, Q, Filters(marker="d"))


async def test_missing_things_raise(backend: Backend) -> None:
    with pytest.raises(NoMatch):
        await backend.get_messages(A, Q, ALL_ITEMS)
    with pytest.raises(NoMatch):
        await backend.get_queues(A, ALL_ITEMS)
    with pytest.raises(NoMatch):
        await backend.get_accounts(ALL_ITEMS)
    for call in (
        backend.get_message(A, Q, "x"),
        backend.update_message(A, Q, "x", Attributes(hide=1)),
        backend.delete_message(A, Q, "x"),
    ):
        with pytest.raises(MessageNotFound):
            await call
    with pytest.raises(NoMatch):
        await backend.delete_messages(A, Q, ALL_ITEMS)
    with pytest.raises(NoMatch):
        await backend.update_messages(A, Q, Attributes(hide=1), ALL_ITEMS)


async def test_hidden_messages_are_skipped_unless_asked(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new("v1"), new("h", hide=60), new("v2")])
    assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["v1", "v2"]
    hidden = await backend.get_messages(A, Q, Filters(match_hidden=True))
    assert ids(hidden) == ["v1", "h", "v2"]
    assert 59 <= hidden[1].hide <= 60
    assert (await backend.get_message(A, Q, "h")).id == "h"
    assert ids(await backend.delete_messages(A, Q, ALL_ITEMS)) == ["v1", "v2"]
    with pytest.raises(NoMatch):
        await backend.get_messages(A, Q, ALL_ITEMS)
    assert ids(await backend.get_messages(A, Q, Filters(match_hidden=True))) == ["h"]


async def test_claim_hides_what_it_returns(backend: Backend) -> None:
    await fill(backend, "m1", "m2", "m3")
    claimed = await backend.update_messages(A, Q, Attributes(hide=60), Filters(limit=2))
    assert ids(claimed) == ["m1", "m2"]
    assert all(59 <= m.hide <= 60 for m in claimed)
    assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["m3"]


async def test_update_with_no_attributes_changes_nothing(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new("m1", ttl=100, hide=50)])
    (same,) = await backend.update_messages(A, Q, Attributes(), Filters(match_hidden=True))
    assert 99 <= same.ttl <= 100 and 49 <= same.hide <= 50


async def test_update_one_message_sets_only_given_attributes(backend: Backend) -> None:
    await backend.put_message(A, Q, new("m", ttl=100, hide=50))
    updated = await backend.update_message(A, Q, "m", Attributes(hide=0))
    assert updated.hide == 0 and 99 <= updated.ttl <= 100
    updated = await backend.update_message(A, Q, "m", Attributes(ttl=0))
    assert updated.ttl == 0 and updated.hide == 0
    assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["m"]


async def test_delete_one_returns_it_and_empties_queue_and_account(backend: Backend) -> None:
    await fill(backend, "m")
    deleted = await backend.delete_message(A, Q, "m")
    assert (deleted.id, deleted.body) == ("m", b"m")
    with pytest.raises(MessageNotFound):
        await backend.get_message(A, Q, "m")
    with pytest.raises(NoMatch):
        await backend.get_queues(A, ALL_ITEMS)
    with pytest.raises(NoMatch):
        await backend.get_accounts(ALL_ITEMS)


async def test_accounts_and_queues_list_in_creation_order(backend: Backend) -> None:
    await fill(backend, "m", account="b", queue="q2")
    await fill(backend, "m", account="a", queue="q1")
    await fill(backend, "m", account="b", queue="q1")
    await fill(backend, "m", account="c", queue="q1")
    assert await backend.get_accounts(ALL_ITEMS) == ["b", "a", "c"]
    assert await backend.get_accounts(Filters(marker="b", limit=1)) == ["a"]
    assert await backend.get_accounts(Filters(marker="nope")) == ["b", "a", "c"]
    assert await backend.get_queues("b", ALL_ITEMS) == ["q2", "q1"]
    assert await backend.get_queues("b", Filters(marker="q2")) == ["q1"]
    with pytest.raises(NoMatch):
        await backend.get_queues("b", Filters(marker="q1"))


async def test_delete_queues_and_accounts_include_hidden(backend: Backend) -> None:
    await backend.put_messages("a", "q1", [new("m", hide=60)])
    await backend.put_messages("a", "q2", [new("m")])
    await backend.put_messages("b", "q1", [new("m", hide=60)])
    assert await backend.delete_queues("a", Filters(limit=1)) == ["q1"]
    assert await backend.get_queues("a", ALL_ITEMS) == ["q2"]
    assert await backend.delete_accounts(Filters(marker="a")) == ["b"]
    assert await backend.get_accounts(ALL_ITEMS) == ["a"]
    assert await backend.delete_accounts(ALL_ITEMS) == ["a"]
    with pytest.raises(NoMatch):
        await backend.get_accounts(ALL_ITEMS)


async def test_accounts_and_queues_are_isolated(backend: Backend) -> None:
    await fill(backend, "m", account="a", queue="q")
    await backend.put_message("b", "q", new("m", b"other"))
    assert (await backend.get_message("a", "q", "m")).body == b"m"
    await backend.delete_queues("b", ALL_ITEMS)
    assert (await backend.get_message("a", "q", "m")).body == b"m"
    with pytest.raises(MessageNotFound):
        await backend.get_message("a", "other", "m")


async def test_batch_put_is_ordered_and_reports_creation(backend: Backend) -> None:
    await fill(backend, "b")
    created = await backend.put_messages(A, Q, [new("a"), new("b", b"x"), new("c")])
    assert created == [True, False, True]
    assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["b", "a", "c"]


async def test_expired_messages_vanish(backend: Backend) -> None:
    started = time.time()
    await backend.put_messages(A, Q, [new("short", ttl=1), new("long", ttl=60)])

    async def expired() -> bool:
        return await listed(backend, Filters(match_hidden=True)) == ["long"]

    gone = await eventually(expired, "the message with ttl=1 to expire")
    assert gone >= started + 1 - CLOCK_SLACK, "expired before its ttl ran out"
    with pytest.raises(MessageNotFound):
        await backend.get_message(A, Q, "short")
    assert await backend.put_message(A, Q, new("short")) is True
    assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["long", "short"]


async def test_expired_only_queue_is_not_listed(backend: Backend) -> None:
    started = time.time()
    await backend.put_messages(A, Q, [new("m", ttl=1)])

    async def unlisted() -> bool:
        try:
            await backend.get_queues(A, ALL_ITEMS)
        except NoMatch:
            return True
        return False

    gone = await eventually(unlisted, "the queue of an expired message to go")
    assert gone >= started + 1 - CLOCK_SLACK, "the queue went before its message expired"
    with pytest.raises(NoMatch):
        await backend.get_accounts(ALL_ITEMS)


async def test_hidden_message_reappears(backend: Backend) -> None:
    started = time.time()
    await backend.put_messages(A, Q, [new("m", hide=1)])

    async def shown() -> bool:
        return await listed(backend) == ["m"]

    visible = await eventually(shown, "the message with hide=1 to show")
    assert visible >= started + 1 - CLOCK_SLACK, "shown before its hide ran out"


async def test_concurrent_claimers_never_share_a_message(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new(f"m{i:03}") for i in range(200)])

    async def claimer() -> list[str]:
        got: list[str] = []
        while True:
            try:
                claimed = await backend.update_messages(A, Q, Attributes(hide=60), Filters(limit=3))
            except NoMatch:
                return got
            got.extend(ids(claimed))

    results = await asyncio.gather(*(claimer() for _ in range(16)))
    everything = [i for result in results for i in result]
    assert sorted(everything) == [f"m{i:03}" for i in range(200)]


async def test_concurrent_pops_never_share_a_message(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new(f"m{i:03}") for i in range(200)])

    async def popper() -> list[str]:
        got: list[str] = []
        while True:
            try:
                got.extend(ids(await backend.delete_messages(A, Q, Filters(limit=5))))
            except NoMatch:
                return got

    results = await asyncio.gather(*(popper() for _ in range(16)))
    assert sorted(i for result in results for i in result) == [f"m{i:03}" for i in range(200)]


async def test_subscription_wakes_on_write(backend: Backend) -> None:
    with backend.subscribe(A, Q) as subscription:
        waiter = asyncio.create_task(subscription.wait(LONG_POLL))
        await still_waiting(waiter, pause=0.05)
        await backend.put_message(A, Q, new("m"))
        assert await within(waiter, "the wake-up by a write") is True


async def test_subscription_sees_a_write_made_before_waiting(backend: Backend) -> None:
    with backend.subscribe(A, Q) as subscription:
        await backend.put_message(A, Q, new("m"))
        assert await within(subscription.wait(LONG_POLL), "the wake-up by a write") is True


async def test_subscription_wakes_when_hidden_message_shows(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new("m")])
    with backend.subscribe(A, Q) as subscription:
        claimed = time.time()
        await backend.update_messages(A, Q, Attributes(hide=1), ALL_ITEMS)
        await subscription.wait(0)  # consume the wake-up of the claim itself
        woken = within(subscription.wait(LONG_POLL), "the wake-up as the claim lapses")
        assert await woken is True
        woke = time.time()
    assert woke >= claimed + 1 - CLOCK_SLACK, "woken before the claim lapsed"
    assert ids(await backend.get_messages(A, Q, ALL_ITEMS)) == ["m"]


async def test_subscription_times_out_and_ignores_other_queues(backend: Backend) -> None:
    with backend.subscribe(A, Q) as subscription:
        await backend.put_message(A, "other", new("m"))
        await backend.put_message("other", Q, new("m"))
        started = time.monotonic()
        assert await subscription.wait(0.2) is True
        assert time.monotonic() - started >= 0.19


async def test_close_releases_waiters(backend: Backend) -> None:
    subscription = backend.subscribe(A, Q)
    waiter = asyncio.create_task(subscription.wait(LONG_POLL))
    await still_waiting(waiter, pause=0.05)
    await backend.close()
    assert await within(waiter, "the waiter's release") is False
    subscription.close()


async def test_order_survives_many_deletions_from_the_front(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new(f"m{i:04}") for i in range(3000)])
    for _ in range(25):
        await backend.delete_messages(A, Q, Filters(limit=100))
    await backend.delete_message(A, Q, "m2600")
    assert await backend.put_message(A, Q, new("m2501", b"again")) is False
    listed = await backend.get_messages(A, Q, Filters(limit=3))
    assert ids(listed) == ["m2500", "m2501", "m2502"]
    assert listed[1].body == b"again"
    remaining = await backend.get_messages(A, Q, Filters(marker="m2998"))
    assert ids(remaining) == ["m2999"]


async def test_queue_message_quota_refuses_the_whole_batch(backend: Backend) -> None:
    quota = Quota(max_queue_messages=3)
    await backend.put_messages(A, Q, [new("m1"), new("m2", hide=60)], quota)
    with pytest.raises(QuotaExceeded) as refused:
        await backend.put_messages(A, Q, [new("m3"), new("m4")], quota)
    assert refused.value.quota == "max_queue_messages"
    assert ids(await backend.get_messages(A, Q, Filters(match_hidden=True))) == ["m1", "m2"]
    # Replacing stored messages adds none; another queue has its own count.
    assert await backend.put_messages(A, Q, [new("m1"), new("m3")], quota) == [False, True]
    await backend.put_messages(A, "other", [new("m1"), new("m2"), new("m3")], quota)
    await backend.delete_message(A, Q, "m2")
    assert await backend.put_message(A, Q, new("m4"), quota) is True


async def test_account_queue_quota_counts_queues_holding_messages(backend: Backend) -> None:
    quota = Quota(max_account_queues=2)
    await backend.put_message(A, "q1", new("m"), quota)
    await backend.put_message(A, "q2", new("m"), quota)
    await backend.put_message(A, "q2", new("m2"), quota)
    with pytest.raises(QuotaExceeded) as refused:
        await backend.put_message(A, "q3", new("m"), quota)
    assert refused.value.quota == "max_account_queues"
    await backend.put_message("other", "q3", new("m"), quota)
    await backend.delete_queues(A, Filters(limit=1))
    await backend.put_message(A, "q3", new("m"), quota)
    assert await backend.get_queues(A, ALL_ITEMS) == ["q2", "q3"]


async def test_account_byte_quota_counts_bodies_across_queues(backend: Backend) -> None:
    quota = Quota(max_account_bytes=10)
    await backend.put_message(A, "q1", new("a", b"12345"), quota)
    await backend.put_message(A, "q2", new("b", b"123"), quota)
    with pytest.raises(QuotaExceeded) as refused:
        await backend.put_message(A, "q2", new("c", b"123"), quota)
    assert refused.value.quota == "max_account_bytes"
    with pytest.raises(QuotaExceeded):
        await backend.put_message(A, "q1", new("a", b"12345678"), quota)
    assert (await backend.get_message(A, "q1", "a")).body == b"12345"
    # A replace counts its new body instead of the old one.
    await backend.put_message(A, "q1", new("a", b"1234567"), quota)
    await backend.delete_messages(A, "q1", ALL_ITEMS)
    await backend.put_message(A, "q1", new("c", b"1234567"), quota)
    await backend.put_message("other", "q1", new("c", b"1234567890"), quota)


async def test_concurrent_writers_cannot_overshoot_a_quota(backend: Backend) -> None:
    quota = Quota(max_queue_messages=10)

    async def put(i: int) -> bool:
        try:
            await backend.put_messages(A, Q, [new(f"m{i}a"), new(f"m{i}b")], quota)
        except QuotaExceeded:
            return False
        return True

    results = await asyncio.gather(*(put(i) for i in range(20)))
    assert results.count(True) == 5
    assert len(await backend.get_messages(A, Q, ALL_ITEMS)) == 10
