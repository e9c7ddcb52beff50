"""On every backend: deletes bigger than a chunk leave nothing behind and touch nothing
else, and claims within the byte cap take every message exactly once.

Queue and account deletes go a chunk at a time in the backends (1000 messages on
PostgreSQL, 250 on SQLite); a purge goes a chunk at a time in the service (see
`burrow.bounded`), as do claims whose bodies would not fit in one answer.
"""

from __future__ import annotations

import pytest

from burrow.backends.base import Backend
from burrow.config import Limits
from burrow.errors import NoMatch
from burrow.model import ALL_ITEMS, Attributes, Detail, Filters, NewMessage
from burrow.service import Service

COUNT = 2600  # more than two chunks of 1000, and ten of 250
EVERYTHING = Filters(match_hidden=True)


async def fill(backend: Backend, account: str, queue: str, count: int, hide: int = 0) -> None:
    for start in range(0, count, 1000):
        batch = [
            NewMessage(f"{queue}-{i:05}", b"x" * 50, 0, hide if i % 10 == 0 else 0)
            for i in range(start, min(count, start + 1000))
        ]
        await backend.put_messages(account, queue, batch)


async def test_deleting_a_big_queue_takes_it_whole_and_nothing_else(backend: Backend) -> None:
    await fill(backend, "a", "big", COUNT, hide=60)  # a tenth hidden: they go too
    await fill(backend, "b", "q", 3)
    assert await backend.delete_queues("a", ALL_ITEMS) == ["big"]
    with pytest.raises(NoMatch):
        await backend.get_messages("a", "big", EVERYTHING)
    assert await backend.get_accounts(ALL_ITEMS) == ["b"]
    assert len(await backend.get_messages("b", "q", ALL_ITEMS)) == 3
    await fill(backend, "a", "big", COUNT, hide=60)
    assert sorted(await backend.delete_accounts(ALL_ITEMS)) == ["a", "b"]
    with pytest.raises(NoMatch):
        await backend.get_accounts(ALL_ITEMS)


async def test_a_big_purge_takes_every_visible_message(backend: Backend) -> None:
    service = Service(backend, Limits())
    await fill(backend, "a", "q", COUNT, hide=60)
    assert await service.delete_messages("a", "q", ALL_ITEMS, detail=Detail.NONE) == []
    kept = await backend.get_messages("a", "q", EVERYTHING)
    assert len(kept) == COUNT // 10 and all(m.hide > 0 for m in kept)
    with pytest.raises(NoMatch):
        await service.delete_messages("a", "q", ALL_ITEMS, detail=Detail.NONE)


async def test_claims_within_the_byte_cap_take_every_message_once(backend: Backend) -> None:
    limits = Limits(max_body_bytes=100, max_response_bytes=1000)  # 10 of 50 bytes fit
    service = Service(backend, limits)
    await fill(backend, "a", "q", 95)
    claimed: list[str] = []
    claim = Attributes(hide=600)
    while True:
        try:
            answer = await service.update_messages("a", "q", claim, Filters(100))
        except NoMatch:
            break
        assert 0 < sum(len(m.body) for m in answer) <= 1000
        claimed += [m.id for m in answer]
    assert sorted(claimed) == [f"q-{i:05}" for i in range(95)]
    hidden = await backend.get_messages("a", "q", EVERYTHING)
    assert all(m.hide > 0 for m in hidden)
