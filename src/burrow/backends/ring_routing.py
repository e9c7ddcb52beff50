"""Which member of a ring owns what, and the calls that go to that one owner.

A message lives on the first live member of its id's order within the account's set
(`for_id`): a put goes there (or to the next member while that one is down), and a
call by id asks the members in that order until one has it. A document of an account
(a queue's info, a subscription) lives on the first live member of the set that holds
it (`holder`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from burrow.backends.base import Backend, DeleteTarget
from burrow.backends.ring_members import MemberState, RingMembers, on
from burrow.errors import BackendUnavailable, MessageNotFound
from burrow.model import Message, NewMessage, Quota
from burrow.placement import each_in_its_order, message_key, rendezvous


def for_id(
    states: list[MemberState], account: str, queue: str, message_id: str
) -> list[MemberState]:
    by_member = {s.member: s for s in states}
    order = rendezvous(message_key(account, queue, message_id), list(by_member))
    return [by_member[m] for m in order]


async def find(
    members: list[MemberState], account: str, queue: str, message_id: str
) -> MemberState | None:
    """The member holding a message, asked in the id's order."""
    for state in for_id(members, account, queue, message_id):
        try:
            await on(state, lambda b: b.get_message(account, queue, message_id))
        except (MessageNotFound, BackendUnavailable):
            continue
        return state
    return None


async def put_messages(
    members: RingMembers,
    account: str,
    queue: str,
    messages: list[NewMessage],
    quota: Quota,
) -> list[bool]:
    """Each message to the first live member of its id's order (quotas apply per member).

    A batch is sent as one write per member, each atomic; a member that fails
    gets its share re-placed on the next member of each id's order.
    """
    created: dict[str, bool] = {}
    pending = messages

    async def put(backend: Backend, group: list[NewMessage]) -> list[bool]:
        return await backend.put_messages(account, queue, group, quota)

    while pending:
        groups: dict[MemberState, list[NewMessage]] = {}
        live = members.live_set(account)
        for message in pending:
            target = for_id(live, account, queue, message.id)[0]
            groups.setdefault(target, []).append(message)
        pending = []
        for state, group in groups.items():
            try:
                flags = await on(state, put, group)
            except BackendUnavailable:
                pending += group  # the member is marked down now: the next round skips it
                continue
            created.update(zip((m.id for m in group), flags, strict=True))
    return [created[m.id] for m in messages]


async def by_id(
    members: RingMembers,
    account: str,
    queue: str,
    message_id: str,
    call: Callable[[Backend], Awaitable[Message]],
) -> Message:
    """`call` on the members in the id's order, until one has the message."""
    for state in for_id(members.live_set(account), account, queue, message_id):
        try:
            return await on(state, call)
        except (MessageNotFound, BackendUnavailable):
            continue
    raise MessageNotFound(message_id)


async def delete_listed(
    members: RingMembers, account: str, queue: str, targets: list[DeleteTarget]
) -> list[Message]:
    """Each listed message deleted on the members in its id's order: one call to each
    member a round, with the ids the members before did not delete."""
    live = members.live_set(account)
    receipts = dict(targets)
    deleted: dict[str, Message] = {}

    async def delete(state: MemberState, ids: list[str]) -> list[str]:
        listed = [(i, receipts[i]) for i in ids]
        gone = await on(state, lambda b: b.delete_listed_messages(account, queue, listed))
        deleted.update((m.id, m) for m in gone)
        return [m.id for m in gone]

    await each_in_its_order(list(receipts), lambda i: for_id(live, account, queue, i), delete)
    return [deleted[i] for i in receipts if i in deleted]


async def holder(
    members: RingMembers, account: str, get: Callable[[Backend], Awaitable[bytes | None]]
) -> tuple[MemberState, bytes | None]:
    """The first live member (in set order) holding a document of the account (a
    queue's info, a subscription), and that document; with none, the first live
    member and None. `BackendUnavailable` when a member that could hold it did not
    answer: its document is not known to be absent."""
    live = members.live_set(account)
    unanswered: BackendUnavailable | None = None
    for state in live:
        try:
            info = await on(state, get)
        except BackendUnavailable as error:
            unanswered = error
            continue
        if info is not None:
            return state, info
    if unanswered is not None:
        raise unanswered
    return live[0], None
