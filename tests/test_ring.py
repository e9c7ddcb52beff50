"""The ring backend: placement, reading across a set of members, zones and failover, and
where it keeps what SQS needs besides messages."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from burrow.backends import file_path, open_backend
from burrow.backends.ring import RingBackend
from burrow.backends.ring_placement import Member, RingConfig, load_ring
from burrow.backends.ring_routing import find
from burrow.backends.sqlite import SQLiteBackend
from burrow.errors import BackendUnavailable, InvalidRequest, MessageNotFound, NoMatch
from burrow.ids import new_id
from burrow.model import ALL_ITEMS, Attributes, Filters, Message, MessageCounts, NewMessage
from burrow.placement import message_key, rendezvous
from tests.backends.test_contract import by_state
from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.waiting import PATIENCE

A, Q = "acct", "q"


def ring_file(
    path: Path, members: list[tuple[str, str]], zone: str = "az1", replicas: int = 3
) -> Path:
    path.write_text(
        f'[ring]\nzone = "{zone}"\nreplicas = {replicas}\n'
        + "".join(f'[[ring.member]]\nurl = "{url}"\nzone = "{z}"\n' for url, z in members)
    )
    return path


# Placement ------------------------------------------------------------------------------


def test_adding_a_member_moves_about_one_nth_of_the_placements() -> None:
    members = [Member(f"http://10.0.0.{i}:8080", "az1") for i in range(6)]
    before = RingConfig("az1", 3, tuple(members))
    after = RingConfig("az1", 3, (*members, Member("http://10.0.0.99:8080", "az1")))
    accounts = [f"account-{i}" for i in range(10_000)]
    moved = sum(
        len(set(before.account_set(a, "az1")) - set(after.account_set(a, "az1"))) for a in accounts
    )
    share = moved / (len(accounts) * 3)
    # One member in seven now holds its share of the placements, taken evenly from the others.
    assert 1 / 7 - 0.02 < share < 1 / 7 + 0.02
    for account in accounts:  # and each account that moved lost one member, to the new one
        lost = set(before.account_set(account, "az1")) - set(after.account_set(account, "az1"))
        assert len(lost) <= 1


def test_sets_are_spread_evenly_and_stable() -> None:
    members = tuple(Member(f"http://10.0.0.{i}:8080", f"az{i % 2 + 1}") for i in range(6))
    ring = RingConfig("az1", 2, members)
    counts = {m: 0 for m in members}
    for i in range(3000):
        first = ring.account_set(f"a{i}", "az1")
        assert first == ring.account_set(f"a{i}", "az1") and len(first) == 2
        for member in first + ring.account_set(f"a{i}", "az2"):
            counts[member] += 1
    assert all(1800 < n < 2200 for n in counts.values())  # 3000 x 2 / 3 each


ONE = '[[ring.member]]\nurl = "http://x:1"\nzone = "az1"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[ring]\nzone = "az1"\n', "at least one"),
        ('[ring]\nzone = "az9"\n' + ONE, "ring.zone"),
        ('[ring]\nzone = "az1"\nreplicas = 0\n' + ONE, "replicas"),
        ('[ring]\nzone = "az1"\n[[ring.member]]\nurl = "http://x:1"\n', "exactly a url and a zone"),
        ('[ring]\nzone = "az1"\nweight = 2\n', "unknown ring setting"),
        ("zone = 1\n", "expected a [ring] table"),
    ],
)
def test_bad_ring_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "ring.toml").write_text(text)
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        load_ring(tmp_path / "ring.toml")


def test_ring_show_prints_where_an_account_lives(tmp_path: Path) -> None:
    members = [(f"http://127.0.0.1:{8000 + i}", f"az{i % 2 + 1}") for i in range(4)]
    path = ring_file(tmp_path / "ring.toml", members, replicas=1)
    shown = subprocess.run(
        [sys.executable, "-m", "burrow", "ring", "show", str(path), "--account", "acme"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    ring = load_ring(path)
    for zone in ("az1", "az2"):
        (member,) = ring.account_set("acme", zone)
        assert f"  {zone}: {member.url}" in shown


# One zone, three SQLite members holding every account ------------------------------------


@pytest.fixture
async def spread(tmp_path: Path) -> AsyncIterator[RingBackend]:
    members = [(f"sqlite:///{tmp_path}/m{i}.db", "az1") for i in range(3)]
    backend = open_backend(f"ring:///{ring_file(tmp_path / 'ring.toml', members)}")
    assert isinstance(backend, RingBackend)
    async with backend:
        yield backend


def new(i: int) -> NewMessage:
    return NewMessage(f"m{i:03}", b"x", 600, 0)


def made(count: int) -> list[NewMessage]:
    """Messages with ids the server would make (time-ordered), in creation order."""
    return [NewMessage(new_id(), b"x", 600, 0) for _ in range(count)]


async def page_through(ring: RingBackend, limit: int, marker: str | None = None) -> list[str]:
    """Every id listed after `marker`, page after page of `limit`."""
    paged: list[str] = []
    while True:
        try:
            page = await ring.get_messages(A, Q, Filters(limit=limit, marker=marker))
        except NoMatch:
            return paged
        assert len(page) <= limit
        paged += [m.id for m in page]
        marker = page[-1].id


async def test_messages_spread_over_the_set_are_listed_in_creation_order(
    spread: RingBackend, tmp_path: Path
) -> None:
    messages = made(60)
    for start in range(0, 60, 7):  # batches spread over the members, too
        await spread.put_messages(A, Q, messages[start : start + 7])
    created = [m.id for m in messages]
    for state in spread.members.live_set(A):
        held = [m.id for m in await state.backend.get_messages(A, Q, ALL_ITEMS)]
        assert 10 <= len(held) and held == [i for i in created if i in held]
    assert [m.id for m in await spread.get_messages(A, Q, ALL_ITEMS)] == created
    # Paging with limit and marker walks the same order, without gaps or repeats, on
    # this proxy (which remembers its pages) and on another (which works them out).
    assert await page_through(spread, 7) == created
    other = open_backend(f"ring:///{tmp_path / 'ring.toml'}")
    async with other:
        assert isinstance(other, RingBackend)
        assert await page_through(other, 7) == created
        assert await page_through(other, 5, marker=created[22]) == created[23:]


async def test_a_follower_sees_what_any_member_gets_after_its_marker(
    spread: RingBackend,
) -> None:
    first, then = made(20), made(20)
    await spread.put_messages(A, Q, first)
    assert await page_through(spread, 6) == [m.id for m in first]
    await spread.put_messages(A, Q, then)  # onto every member, before and after the last
    assert await page_through(spread, 6, marker=first[-1].id) == [m.id for m in then]


async def test_claims_and_pops_take_the_oldest_across_members(spread: RingBackend) -> None:
    messages = made(40)
    await spread.put_messages(A, Q, messages)
    claimed = [
        m.id
        for _ in range(4)
        for m in await spread.update_messages(A, Q, Attributes(hide=60), Filters(limit=7))
    ]
    assert claimed == [m.id for m in messages[:28]]
    popped = [m.id for m in await spread.delete_messages(A, Q, Filters(limit=5))]
    assert popped == [m.id for m in messages[28:33]]


class Recording(SQLiteBackend):
    """A member that notes the filters of every listing it is asked for."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.asked: list[Filters] = []

    async def get_messages(self, account: str, queue: str, filters: Filters) -> list[Message]:
        self.asked.append(filters)
        return await super().get_messages(account, queue, filters)


async def test_a_page_asks_each_member_for_one_page_after_its_own_place(tmp_path: Path) -> None:
    members = [(f"sqlite:///{tmp_path}/m{i}.db", "az1") for i in range(3)]
    config = load_ring(ring_file(tmp_path / "ring.toml", members))
    recorders: list[Recording] = []

    def open_member(url: str) -> Recording:
        recorders.append(Recording(file_path(url, "sqlite")))
        return recorders[-1]

    async with RingBackend(config, open_member) as ring:
        await ring.put_messages(A, Q, made(300))
        page = await ring.get_messages(A, Q, Filters(limit=10))
        later = await ring.get_messages(A, Q, Filters(limit=10, marker=page[-1].id))
        asked = [list(member.asked) for member in recorders]
        held = [  # (read past the recording)
            {m.id for m in await SQLiteBackend.get_messages(member, A, Q, Filters(limit=300))}
            for member in recorders
        ]
    first_page, second_page = zip(*asked, strict=True)
    assert {f.limit for f in first_page + second_page} == {10}
    assert all(f.marker is None for f in first_page)
    # After the page, each member goes on after the last of its own messages in it (from
    # its start if it had none there: a member may hold none of a page's few messages).
    for own, then in zip(held, second_page, strict=True):
        given = [m.id for m in page if m.id in own]
        assert then.marker == (given[-1] if given else None)
    assert page[-1].id in {then.marker for then in second_page}
    assert [m.id for m in page + later] == sorted(m.id for m in page + later)


async def test_queues_are_listed_in_the_order_their_members_agree_on(
    spread: RingBackend,
) -> None:
    """`beta` is created after `zeta` and before `alpha`, on one member only."""
    states = spread.members.live_set(A)
    lone = states[-1].member

    def messages(queue: str, count: int, only_on_lone: bool = False) -> list[NewMessage]:
        ids = (f"id{i}" for i in range(1000))
        if only_on_lone:
            members = [s.member for s in states]
            ids = (i for i in ids if rendezvous(message_key(A, queue, i), members)[0] == lone)
        return [NewMessage(i, b"x", 600, 0) for _, i in zip(range(count), ids, strict=False)]

    await spread.put_messages(A, "zeta", messages("zeta", 30))
    await spread.put_messages(A, "beta", messages("beta", 2, only_on_lone=True))
    await spread.put_messages(A, "alpha", messages("alpha", 30))
    held = [await s.backend.get_queues(A, ALL_ITEMS) for s in states]
    assert held[0] == ["zeta", "alpha"] and held[-1] == ["zeta", "beta", "alpha"]
    assert await spread.get_queues(A, ALL_ITEMS) == ["zeta", "beta", "alpha"]
    assert await spread.get_queues(A, Filters(limit=1, marker="zeta")) == ["beta"]
    assert await spread.get_accounts(ALL_ITEMS) == [A]


async def test_a_stale_copy_on_a_second_member_is_listed_once_and_passed_by_markers(
    spread: RingBackend, tmp_path: Path
) -> None:
    messages = made(12)
    await spread.put_messages(A, Q, messages)
    copied = messages[5]
    order = rendezvous(message_key(A, Q, copied.id), [s.member for s in spread.members.live_set(A)])
    fallback = next(s for s in spread.members.live_set(A) if s.member == order[1])
    # As if written there while its first choice was down, before the rewrite.
    await fallback.backend.put_message(A, Q, NewMessage(copied.id, b"stale", 600, 0))
    created = [m.id for m in messages]
    listed = await spread.get_messages(A, Q, ALL_ITEMS)
    assert [m.id for m in listed] == created
    assert next(m.body for m in listed if m.id == copied.id) == b"x"
    # The listing deletes the stale copy in the background.
    for _ in range(200):
        try:
            await fallback.backend.get_message(A, Q, copied.id)
        except MessageNotFound:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the stale copy is still there")
    # Then another proxy, handed the marker, goes on after it. (Before the repair, such a
    # proxy may list messages after the marker twice: at least once, not exactly once.)
    other = open_backend(f"ring:///{tmp_path / 'ring.toml'}")
    async with other:
        assert isinstance(other, RingBackend)
        assert await page_through(other, 4, marker=copied.id) == created[6:]


async def test_claims_across_members_are_exactly_once_and_within_limit(
    spread: RingBackend,
) -> None:
    await spread.put_messages(A, Q, [new(i) for i in range(300)])
    claimed: list[str] = []

    async def claimer() -> None:
        while True:
            try:
                got = await spread.update_messages(A, Q, Attributes(hide=60), Filters(limit=7))
            except NoMatch:
                return
            assert len(got) <= 7
            claimed.extend(m.id for m in got)

    await asyncio.gather(*(claimer() for _ in range(16)))
    assert sorted(claimed) == [f"m{i:03}" for i in range(300)]


async def test_pops_across_members_are_exactly_once(spread: RingBackend) -> None:
    await spread.put_messages(A, Q, [new(i) for i in range(100)])
    popped = await asyncio.gather(
        *(spread.delete_messages(A, Q, Filters(limit=30)) for _ in range(3))
    )
    taken = [m.id for batch in popped for m in batch]
    assert [len(batch) for batch in popped] == [30, 30, 30]
    rest = [m.id for m in await spread.delete_messages(A, Q, Filters(limit=30))]
    assert sorted(taken + rest) == [f"m{i:03}" for i in range(100)]


async def test_a_wait_on_the_set_wakes_on_a_write_to_any_member(spread: RingBackend) -> None:
    for i in range(6):  # ids that land on different members
        with spread.subscribe(A, Q) as subscription:

            async def put_soon(i: int = i) -> None:
                await asyncio.sleep(0.05)
                await spread.put_message(A, Q, new(i))

            writer = asyncio.create_task(put_soon())
            started = time.monotonic()
            assert await subscription.wait(5) is True
            assert time.monotonic() - started < 0.15
            await writer


# What SQS needs besides messages: queue infos on the account's first live member,
# counts added up over the set, calls on one receive ------------------------------------


async def test_an_accounts_infos_live_on_its_first_member(spread: RingBackend) -> None:
    for name in ("q3", "q1", "q2"):
        assert await spread.set_queue_info(A, name, b"i", expected=None)
    first, *others = spread.members.live_set(A)
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
    first, second, third = spread.members.live_set(A)
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
        await state.backend.count_messages(A, Q) != MessageCounts()
        for state in spread.members.live_set(A)
    ]
    assert all(holding), "the messages are not spread: the test proves nothing"
    received = await spread.update_messages(
        A, Q, Attributes(hide=60, receipt="r"), Filters(limit=12)
    )
    assert len(received) == 12 and {m.receipt for m in received} == {"r"}
    await spread.update_messages(A, Q, Attributes(hide=60), Filters(limit=5))
    assert by_state(await spread.count_messages(A, Q)) == (13, 12, 5)


async def test_a_call_on_one_receive_finds_its_member(spread: RingBackend) -> None:
    await spread.put_messages(A, Q, made(9))
    received = await spread.update_messages(A, Q, Attributes(hide=60, receipt="r"), Filters())
    holders = {(await find(spread.members.live_set(A), A, Q, m.id)) for m in received}
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
        first = next(s for s in servers if s.url == ring.members.live_set(A)[0].member.url)
        port = first.url.rsplit(":", 1)[1]
        first.kill()
        # Until the ring has seen the member fail, a read cannot tell "none" from "not known".
        with pytest.raises(BackendUnavailable):
            await ring.get_queue_info(A, "during")
        assert await ring.set_queue_info(A, "during", b"new", expected=None)
        back = start_server(f"sqlite:///{tmp_path}/m{servers.index(first)}.db", "--port", port)
        await _until_live(ring, back)
        assert ring.members.live_set(A)[0].member.url == back.url
        assert await ring.get_queue_info(A, "before") == b"kept"
        assert await ring.get_queue_info(A, "during") == b"new"  # found on the other member
        assert await ring.set_queue_info(A, "during", b"newer", expected=b"new")
        assert await ring.list_queue_infos(A, Filters()) == ["before", "during"]


async def _until_live(ring: RingBackend, server: BurrowServer) -> None:
    """Until the ring's probe has found the member answering again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while server.url not in {s.member.url for s in ring.members.live_set(A) if s.state == "up"}:
        assert loop.time() < deadline, f"{server.url} not back within {PATIENCE} s"
        await asyncio.sleep(0.05)  # (the probe runs every PROBE_INTERVAL: no event to wait on)
