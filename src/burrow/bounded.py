"""Bounded work per request: listings within `max_response_bytes`, purges in chunks.

A backend answers a listing, claim or pop with whole messages, bodies included, so
what one call holds in memory is its `limit` times the largest body. The service
therefore asks in steps of as many messages as are sure to fit in what is left of
the response's byte budget (every stored body being at most `max_body_bytes`), and
stops at the message boundary where the next step would not fit: the client pages
on with `marker`. Claims and pops are capped the same way, before they take
anything, so whatever they hide or delete is in the answer.

A purge (a delete whose answer carries no messages and that gives no `limit`)
deletes a chunk at a time, each chunk one backend call, so other requests run
between chunks; the deleted messages are not kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from burrow.config import Limits
from burrow.errors import BurrowError, NoMatch
from burrow.model import Filters, Message

logger = logging.getLogger(__name__)

Take = Callable[[Filters], Awaitable[list[Message]]]
"""One backend call on the request's queue (a listing, claim or pop) with these filters."""

# Messages per purge step at most, whatever their size: a step of 250 holds a SQLite
# server's loop for a few ms (1000: four times as long, for hardly a quicker purge).
PURGE_CHUNK = 250
PURGE_PAUSE = 0.001  # seconds between two purge steps


async def take_within(
    take: Take, filters: Filters, limits: Limits, *, bodies: bool, consumes: bool
) -> list[Message]:
    """Up to `filters.limit` (not None) matches, their bodies within `max_response_bytes`.

    `bodies`: the answer carries the bodies; else they are dropped after each step and
    only bound the step. `consumes`: what a step takes stops matching (a pop; a claim
    that hides visible messages), so the next step starts after the request's own
    marker; otherwise after the last message taken. The answer holds at least one
    message, and never one twice (should that last message be deleted before the next
    step, the backend starts that step from the start of the queue: a repeat ends the
    answer).
    """
    assert filters.limit is not None
    budget, largest = limits.max_response_bytes, limits.max_body_bytes
    if filters.limit * largest <= budget:
        return await take(filters)  # the usual case: one call, sure to fit
    taken: list[Message] = []
    seen: set[str] = set()
    room, marker = budget, filters.marker
    while len(taken) < filters.limit:
        fits = max(0, room) // largest
        step = min(filters.limit - len(taken), fits if taken else max(1, fits))
        if step == 0:
            break
        try:
            found = await take(Filters(step, marker, filters.match_hidden))
        except NoMatch:
            if not taken:
                raise
            break
        except BurrowError as error:
            if not taken:
                raise
            # What the earlier steps took (hid, deleted) must still be answered.
            logger.warning("a listing stopped after %d messages: %s", len(taken), error.message)
            break
        fresh = [m for m in found if m.id not in seen]
        seen.update(m.id for m in fresh)
        if bodies:
            room -= sum(len(m.body) for m in fresh)
            taken += fresh
        else:
            for message in fresh:  # (each a new object from the backend: its own to drop)
                message.body = b""
            taken += fresh
        if len(fresh) < step:
            break  # the queue has no more matches, or started over
        if not consumes:
            marker = found[-1].id
    return taken


async def purge(take: Take, filters: Filters, limits: Limits) -> None:
    """Delete every match of `filters` (whose `limit` is None) a chunk at a time.

    The first chunk is as many messages as fit in `max_response_bytes` at the largest
    body size; later ones are sized by the largest body seen in the one before (at most
    `PURGE_CHUNK`), so a chunk's bodies in memory stay near that budget. Ends at the
    first chunk that finds fewer than it asked for: messages put meanwhile may or may
    not be deleted. Raises `NoMatch` when nothing matched at all.
    """
    step = max(1, min(PURGE_CHUNK, limits.max_response_bytes // limits.max_body_bytes))
    deleted = await take(Filters(step, filters.marker, filters.match_hidden))
    while len(deleted) >= step:
        biggest = max(1, max(len(m.body) for m in deleted))
        step = max(1, min(PURGE_CHUNK, limits.max_response_bytes // biggest))
        # Requests that came meanwhile run to their end here: each of their steps would
        # otherwise wait behind a chunk on a backend that never waits (memory).
        await asyncio.sleep(PURGE_PAUSE)
        try:
            deleted = await take(Filters(step, filters.marker, filters.match_hidden))
        except NoMatch:
            return  # the chunk before took the last ones
