"""Reading everything, and deleting everything, a page at a time.

A server answers a listing, claim or pop that gives no `limit` with one page
(its `[limits] default_limit`, 100 by default), and so deletes at most a page of
a queue per call. Where the client promises everything (`accounts()`,
`queues()`, `get()` with no limit, `delete_all()`, `delete()`) it pages on, per
server: listings with `marker`, from the last id of each page, until a page comes
back empty; deletes by repeating the call until it deletes nothing. A listing
therefore costs one request more than its pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from burrow.client.loops import Cursor

T = TypeVar("T")

Page = Callable[[str | None], Awaitable[list[T]]]
"""One server's page of a listing after a marker (None: from the start)."""


async def every_page(
    read: Page[T], key: Callable[[T], str], marker: str | None, first: list[T] | None = None
) -> list[T]:
    """Every item after `marker`, page after page (`first`: the first page, if read already).

    If a page's last item goes away before the next page is asked for, the server starts
    over from the beginning; the items listed already are skipped, not listed twice.
    """
    cursor = Cursor(key, marker, wait=0, memory=None)
    found = [] if first is None else cursor.advance(first)
    while not cursor.done:
        found += cursor.advance(await read(cursor.marker))
    return found


async def until_empty(delete: Callable[[], Awaitable[list[T]]]) -> list[T]:
    """What `delete` deletes, called again until it deletes nothing."""
    deleted: list[T] = []
    while batch := await delete():
        deleted += batch
    return deleted
