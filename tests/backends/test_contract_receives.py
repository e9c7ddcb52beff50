"""The storage contract, continued: receives and their receipts, meta, counts, queue info.

What the SQS frontend needs of every backend (docs/sqs.md): a receive counted and its
receipt stored in the same atomic step as the claim, a later call with a stale receipt
touching nothing, and queue info kept apart from messages.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from burrow.backends.base import Backend, DeleteTarget
from burrow.errors import MessageNotFound, NoMatch
from burrow.model import ALL_ITEMS, Attributes, Filters, MessageCounts, NewMessage
from tests.backends.test_contract import A, Q, by_state, ids, new
from tests.waiting import CLOCK_SLACK


def receive(hide: int, receipt: str) -> Attributes:
    return Attributes(hide=hide, receipt=receipt)


async def test_a_new_message_has_no_receives_and_its_sent_time(backend: Backend) -> None:
    before = time.time()
    await backend.put_message(A, Q, NewMessage("m", b"b", 600, 0, b"\x00meta\xff"))
    message = await backend.get_message(A, Q, "m")
    assert (message.receives, message.receipt, message.first_received) == (0, "", 0.0)
    assert before - CLOCK_SLACK <= message.sent <= time.time() + CLOCK_SLACK
    assert message.meta == b"\x00meta\xff"
    (listed,) = await backend.get_messages(A, Q, Filters())
    assert (listed.meta, listed.sent) == (message.meta, message.sent)


async def test_a_receive_counts_and_stores_its_receipt(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new("m1"), new("m2"), new("m3")])
    first = await backend.update_messages(A, Q, receive(1, "r1"), Filters(limit=2))
    assert ids(first) == ["m1", "m2"]
    assert [(m.receives, m.receipt) for m in first] == [(1, "r1"), (1, "r1")]
    assert all(m.first_received > 0 and m.hide >= 1 for m in first)
    stored = await backend.get_message(A, Q, "m1")
    assert (stored.receives, stored.receipt) == (1, "r1")
    assert stored.first_received == pytest.approx(first[0].first_received, abs=0.01)
    untouched = await backend.get_message(A, Q, "m3")
    assert (untouched.receives, untouched.receipt) == (0, "")


async def test_a_second_receive_keeps_the_first_receive_time(backend: Backend) -> None:
    await backend.put_message(A, Q, new("m"))
    (first,) = await backend.update_messages(A, Q, receive(1, "r1"), Filters(limit=1))
    with pytest.raises(NoMatch):  # hidden by the receive
        await backend.update_messages(A, Q, receive(1, "r2"), Filters(limit=1))
    await backend.update_message(A, Q, "m", Attributes(hide=0), receipt="r1")
    (second,) = await backend.update_messages(A, Q, receive(30, "r2"), Filters(limit=1))
    assert (second.receives, second.receipt) == (2, "r2")
    assert second.first_received == pytest.approx(first.first_received, abs=0.01)


async def test_an_update_without_a_receipt_is_no_receive(backend: Backend) -> None:
    await backend.put_message(A, Q, new("m"))
    await backend.update_messages(A, Q, Attributes(hide=30), Filters())
    await backend.update_message(A, Q, "m", Attributes(hide=0))
    message = await backend.get_message(A, Q, "m")
    assert (message.receives, message.receipt, message.first_received) == (0, "", 0.0)


async def test_a_stale_receipt_touches_nothing(backend: Backend) -> None:
    await backend.put_message(A, Q, new("m"))
    await backend.update_messages(A, Q, receive(1, "old"), Filters())
    await backend.update_message(A, Q, "m", Attributes(hide=0), receipt="old")
    await backend.update_messages(A, Q, receive(60, "new"), Filters())
    with pytest.raises(MessageNotFound):
        await backend.delete_message(A, Q, "m", receipt="old")
    with pytest.raises(MessageNotFound):
        await backend.update_message(A, Q, "m", Attributes(hide=0), receipt="old")
    message = await backend.get_message(A, Q, "m")
    assert message.hide > 30 and message.receipt == "new"
    deleted = await backend.delete_message(A, Q, "m", receipt="new")
    assert deleted.id == "m"
    with pytest.raises(MessageNotFound):
        await backend.get_message(A, Q, "m")


async def test_a_receipt_names_one_message_only(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new("m1"), new("m2")])
    await backend.update_messages(A, Q, receive(60, "r"), Filters(limit=1))
    with pytest.raises(MessageNotFound):  # m2 was never received with it
        await backend.delete_message(A, Q, "m2", receipt="r")
    assert (await backend.get_message(A, Q, "m2")).id == "m2"


async def test_a_replace_starts_receives_and_meta_anew(backend: Backend) -> None:
    await backend.put_message(A, Q, NewMessage("m", b"b", 600, 0, b"old meta"))
    await backend.update_messages(A, Q, receive(60, "r"), Filters())
    await backend.put_message(A, Q, NewMessage("m", b"c", 600, 0, b"new meta"))
    message = await backend.get_message(A, Q, "m")
    assert (message.receives, message.receipt, message.first_received) == (0, "", 0.0)
    assert (message.body, message.meta) == (b"c", b"new meta")
    with pytest.raises(MessageNotFound):
        await backend.delete_message(A, Q, "m", receipt="r")


async def test_concurrent_receives_never_share_a_message(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new(f"m{i:03}") for i in range(60)])

    async def receiver(n: int) -> list[tuple[str, str]]:
        got: list[tuple[str, str]] = []
        while True:
            try:
                taken = await backend.update_messages(
                    A, Q, receive(60, f"r{n}-{len(got)}"), Filters(limit=3)
                )
            except NoMatch:
                return got
            got += [(m.id, m.receipt) for m in taken]

    results = await asyncio.gather(*(receiver(n) for n in range(6)))
    taken = [pair for result in results for pair in result]
    assert sorted(i for i, _ in taken) == [f"m{i:03}" for i in range(60)]
    for message_id, receipt in taken:  # each stored receipt is the one its receiver got
        assert (await backend.get_message(A, Q, message_id)).receipt == receipt


async def test_counts_by_state(backend: Backend) -> None:
    assert by_state(await backend.count_messages(A, Q)) == (0, 0, 0)
    await backend.put_messages(
        A, Q, [new("v1"), new("v2"), new("v3"), new("d1", hide=60), new("x", ttl=1)]
    )
    await backend.update_messages(A, Q, receive(60, "r"), Filters(limit=1))  # v1
    await backend.update_messages(A, Q, Attributes(hide=60), Filters(limit=1))  # v2
    await asyncio.sleep(1 + CLOCK_SLACK)  # x expires
    # v2 was hidden by a claim that was no receive: delayed, as SQS would call it.
    counts = await backend.count_messages(A, Q)
    assert by_state(counts) == (1, 1, 2)
    # The expired last message is no end of the queue.
    assert counts.newest == pytest.approx((await backend.get_message(A, Q, "d1")).sent)
    assert await backend.count_messages(A, "other") == MessageCounts()


async def test_counts_know_the_bytes_and_when_the_ends_were_put(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new("a", b"12345"), new("b", b"xy", hide=60)])
    await backend.put_message(A, Q, new("c", b"abc"))
    sent = {m.id: m.sent for m in await backend.get_messages(A, Q, Filters(match_hidden=True))}
    assert sent["a"] <= sent["b"] <= sent["c"]
    counts = await backend.count_messages(A, Q)
    assert (counts.bytes, counts.oldest, counts.newest) == pytest.approx((10, sent["a"], sent["c"]))
    await backend.update_messages(A, Q, receive(60, "r"), Filters(limit=1))  # a: no change
    assert await backend.count_messages(A, Q) == MessageCounts(
        1, 1, 1, 10, counts.oldest, counts.newest
    )
    await backend.delete_message(A, Q, "a")
    await backend.put_message(A, Q, new("c", b"abcdef"))  # a replace: c's new put time
    replaced = (await backend.get_message(A, Q, "c")).sent
    counts = await backend.count_messages(A, Q)
    assert (counts.bytes, counts.oldest, counts.newest) == pytest.approx((8, sent["b"], replaced))
    await backend.delete_messages(A, Q, Filters(match_hidden=True))
    assert await backend.count_messages(A, Q) == MessageCounts()


async def test_queue_info_is_compared_and_set(backend: Backend) -> None:
    assert await backend.get_queue_info(A, Q) is None
    assert await backend.set_queue_info(A, Q, b"v1", expected=b"v0") is False
    assert await backend.set_queue_info(A, Q, b"v1", expected=None) is True
    assert await backend.set_queue_info(A, Q, b"v9", expected=None) is False
    assert await backend.get_queue_info(A, Q) == b"v1"
    assert await backend.set_queue_info(A, Q, b"v2", expected=b"wrong") is False
    assert await backend.set_queue_info(A, Q, b'{"v": 2}\x00', expected=b"v1") is True
    assert await backend.get_queue_info(A, Q) == b'{"v": 2}\x00'
    assert await backend.get_queue_info("other", Q) is None


async def test_queue_info_lives_apart_from_messages(backend: Backend) -> None:
    await backend.set_queue_info(A, "empty", b"info", expected=None)
    with pytest.raises(NoMatch):  # a v1.0 listing shows queues holding messages only
        await backend.get_queues(A, Filters())
    await backend.put_message(A, Q, new("m"))
    await backend.set_queue_info(A, Q, b"info", expected=None)
    await backend.delete_queues(A, Filters())
    assert await backend.get_queue_info(A, Q) == b"info"
    assert await backend.delete_queue_info(A, Q) is True
    assert await backend.delete_queue_info(A, Q) is False
    assert await backend.get_queue_info(A, Q) is None
    await backend.put_message(A, Q, new("m"))
    await backend.delete_queue_info(A, Q)
    assert (await backend.get_message(A, Q, "m")).id == "m"


async def test_queue_infos_list_in_order_with_marker_and_limit(backend: Backend) -> None:
    with pytest.raises(NoMatch):
        await backend.list_queue_infos(A, Filters())
    for name in ("q3", "q1", "q2", "q0"):
        await backend.set_queue_info(A, name, b"i", expected=None)
    await backend.set_queue_info(A, "q3", b"changed", expected=b"i")  # keeps its place
    await backend.set_queue_info("other", "z", b"i", expected=None)
    assert await backend.list_queue_infos(A, Filters()) == ["q3", "q1", "q2", "q0"]
    assert await backend.list_queue_infos(A, Filters(limit=2)) == ["q3", "q1"]
    assert await backend.list_queue_infos(A, Filters(limit=2, marker="q1")) == ["q2", "q0"]
    with pytest.raises(NoMatch):
        await backend.list_queue_infos(A, Filters(marker="q0"))
    await backend.delete_queue_info(A, "q1")
    assert await backend.list_queue_infos(A, Filters()) == ["q3", "q2", "q0"]
    assert await backend.list_queue_infos("other", Filters()) == ["z"]


async def test_delete_listed_deletes_what_it_finds_in_the_order_given(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new("m1", b"1"), new("m2", b"2", hide=60), new("m3", b"3")])
    await backend.put_messages(A, Q, [new("m4")])
    deleted = await backend.delete_listed_messages(
        A, Q, [("m3", None), ("gone", None), ("m2", None), ("m1", None)]
    )
    assert ids(deleted) == ["m3", "m2", "m1"]  # a hidden one too; the unknown one passed by
    assert [m.body for m in deleted] == [b"3", b"2", b"1"]
    assert ids(await backend.get_messages(A, Q, Filters(match_hidden=True))) == ["m4"]
    assert await backend.delete_listed_messages(A, Q, [("m1", None)]) == []


async def test_delete_listed_with_receipts_deletes_only_the_latest_receive(
    backend: Backend,
) -> None:
    await backend.put_messages(A, Q, [new("m1"), new("m2"), new("m3")])
    await backend.update_messages(A, Q, receive(60, "r1"), Filters(limit=2))
    targets: list[DeleteTarget] = [("m1", "r1"), ("m2", "stale"), ("m3", "r1")]  # m3: unread
    assert ids(await backend.delete_listed_messages(A, Q, targets)) == ["m1"]
    assert ids(await backend.get_messages(A, Q, Filters(match_hidden=True))) == ["m2", "m3"]


async def test_delete_listed_of_a_queue_s_last_messages_empties_it(backend: Backend) -> None:
    await backend.put_messages(A, Q, [new("m1"), new("m2")])
    await backend.delete_listed_messages(A, Q, [("m1", None), ("m2", None)])
    with pytest.raises(NoMatch):
        await backend.get_queues(A, ALL_ITEMS)
    counts = await backend.count_messages(A, Q)
    assert counts == MessageCounts()
