"""Documents the v1.0 API stores whole (a queue's info, a subscription's): written by
compare-and-set, on `If-Match` (their tag, or `*`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from burrow.codec import info_tag
from burrow.config import Limits
from burrow.frontends import v1_answers as answer
from burrow.frontends.asgi import Receive, Response, Scope, headers, read_body

IF_MATCH = frozenset({b"if-match"})


async def compare_and_set(
    s: Scope,
    r: Receive,
    limits: Limits,
    get: Callable[[], Awaitable[bytes | None]],
    store: Callable[[bytes, bytes | None], Awaitable[bool]],
) -> Response:
    """Store the body as a document (a queue's info, a subscription's) only if there is
    none; with `If-Match`, only if the stored one is the one of that tag (`*`: any).
    409 when not stored."""
    document = await read_body(s, r, limits.max_body_bytes, limits.body_timeout)
    wanted = headers(s, IF_MATCH).get(b"if-match")
    expected = None
    if wanted is not None:
        expected = await get()
        tag = wanted.decode("latin-1").strip()
        if expected is None or tag not in ("*", info_tag(expected)):
            return answer.not_stored("the stored document is not the one If-Match names")
    if not await store(document, expected):
        return answer.not_stored("the document changed meanwhile, or there is one already")
    return Response(204, headers=[(b"etag", info_tag(document).encode())])
