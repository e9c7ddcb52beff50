"""Where a ring keeps what SQS needs besides messages: queue infos on the account's first
live member, counts added up over the set, receives across members."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from burrow.backends import open_backend
from burrow.backends.ring import RingBackend
from burrow.errors import BackendUnavailable, MessageNotFound, NoMatch
from burrow.model import Attributes, Filters, MessageCounts
from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.test_ring import A, Q, made, ring_file
from tests.waiting import PATIENCE


@pytest.fixture
async def spread(tmp_path: Path) -> AsyncIterator[RingBackend]:
    members = [(f"sqlite:///{tmp_path}/m{i}.db", "az1") for i in range(3)]
    backend = open_backend(f"ring:///{ring_file(tmp_path / 'ring.toml', members)}")
    assert isinstance(backend, RingBackend)
    async with backend:
        yield backend


async def test_an_accounts_infos_live_on_its_first_member(spread: RingBackend) -> None:
    for name in ("q3", "q1", "q2"):
        assert await spread.set_queue_info(A, name, b"i", expected=None)
    first, *others = spread.live_set(A)
    assert await first.backend.list_queue_infos(A, Filters()) == ["q3", "q1", "q2"]
    for state in others:
        with pytest.raises(NoMatch):
            await state.backend.list_queue_infos(A, Filters())
    assert await spread.list_queue_infos(A, Filters(limit=2, marker="q3")) == ["q1", "q2"]
    assert await spread.set_queue_info(A, "q1", b"j", expected=b"i")
    assert not await spread.set_queue_info(A, "q1", b"k", expected=b"i")
    assert await first.backend.get_queue_info(A, "q1") == b"j"


async def test_an_info_found_on_a_later_member_is_read_changed_and_deleted_there(
    spread: RingBackend,
) -> None:
    """As an info written while the first member was down is."""
    first, second, third = spread.live_set(A)
    await second.backend.set_queue_info(A, Q, b"written during an outage", expected=None)
    await third.backend.set_queue_info(A, Q, b"an older copy", expected=None)
    assert await spread.get_queue_info(A, Q) == b"written during an outage"
    assert await spread.set_queue_info(A, Q, b"changed", b"written during an outage")
    assert await second.backend.get_queue_info(A, Q) == b"changed"
    assert await first.backend.get_queue_info(A, Q) is None
    assert await spread.list_queue_infos(A, Filters()) == [Q]
    assert await spread.delete_queue_info(A, Q)
    for state in (first, second, third):  # no copy is left to come back
        assert await state.backend.get_queue_info(A, Q) is None
    assert not await spread.delete_queue_info(A, Q)


async def test_counts_add_up_the_members(spread: RingBackend) -> None:
    messages = made(30)
    await spread.put_messages(A, Q, messages)
    holding = [
        await state.backend.count_messages(A, Q) != MessageCounts() for state in spread.live_set(A)
    ]
    assert all(holding), "the messages are not spread: the test proves nothing"
    received = await spread.update_messages(
        A, Q, Attributes(hide=60, receipt="r"), Filters(limit=12)
    )
    assert len(received) == 12 and {m.receipt for m in received} == {"r"}
    await spread.update_messages(A, Q, Attributes(hide=60), Filters(limit=5))
    assert await spread.count_messages(A, Q) == MessageCounts(13, 12, 5)


async def test_a_call_on_one_receive_finds_its_member(spread: RingBackend) -> None:
    await spread.put_messages(A, Q, made(9))
    received = await spread.update_messages(A, Q, Attributes(hide=60, receipt="r"), Filters())
    holders = {(await spread._find(spread.live_set(A), A, Q, m.id)) for m in received}
    assert len(holders) > 1, "the messages are not spread: the test proves nothing"
    for message in received:
        with pytest.raises(MessageNotFound):
            await spread.delete_message(A, Q, message.id, receipt="stale")
        released = await spread.update_message(A, Q, message.id, Attributes(hide=0), "r")
        assert released.hide == 0
        assert (await spread.delete_message(A, Q, message.id, receipt="r")).id == message.id


async def test_while_the_first_member_is_down_the_next_takes_new_infos(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    servers = [start_server(f"sqlite:///{tmp_path}/m{i}.db") for i in range(2)]
    members = [(server.url, "az1") for server in servers]
    ring = open_backend(f"ring:///{ring_file(tmp_path / 'ring.toml', members, replicas=2)}")
    assert isinstance(ring, RingBackend)
    async with ring:
        await ring.set_queue_info(A, "before", b"kept", expected=None)
        first = next(s for s in servers if s.url == ring.live_set(A)[0].member.url)
        port = first.url.rsplit(":", 1)[1]
        first.kill()
        # Until the ring has seen the member fail, a read cannot tell "none" from "not known".
        with pytest.raises(BackendUnavailable):
            await ring.get_queue_info(A, "during")
        assert await ring.set_queue_info(A, "during", b"new", expected=None)
        back = start_server(f"sqlite:///{tmp_path}/m{servers.index(first)}.db", "--port", port)
        await _until_live(ring, back)
        assert ring.live_set(A)[0].member.url == back.url
        assert await ring.get_queue_info(A, "before") == b"kept"
        assert await ring.get_queue_info(A, "during") == b"new"  # found on the other member
        assert await ring.set_queue_info(A, "during", b"newer", expected=b"new")
        assert await ring.list_queue_infos(A, Filters()) == ["before", "during"]


async def _until_live(ring: RingBackend, server: BurrowServer) -> None:
    """Until the ring's probe has found the member answering again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while server.url not in {s.member.url for s in ring.live_set(A) if s.state == "up"}:
        assert loop.time() < deadline, f"{server.url} not back within {PATIENCE} s"
        await asyncio.sleep(0.05)  # (the probe runs every PROBE_INTERVAL: no event to wait on)
