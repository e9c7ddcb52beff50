"""Reading a server's SSE streams in tests (the client's parser, over plain httpx)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from burrow.client.events import EventParser, message_of
from burrow.model import Message

NO_POOL_LIMIT = httpx.Limits(max_connections=None, max_keepalive_connections=0)


@contextlib.asynccontextmanager
async def sse(
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[AsyncIterator[Message]]:
    """The messages of the stream at `url`, once the server has answered (its first
    line came); the stream is closed on leaving."""
    async with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"] == "text/event-stream"
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith(":")  # the server's first comment

        async def messages() -> AsyncIterator[Message]:
            parser = EventParser()
            async for line in lines:
                event = parser.line(line)
                if event is not None:
                    yield message_of(event)

        yield messages()


async def read_events(
    http: httpx.AsyncClient,
    url: str,
    count: int,
    *,
    headers: dict[str, str] | None = None,
    opened: asyncio.Event | None = None,
) -> list[Message]:
    """The first `count` messages of the stream at `url`; `opened` is set once the
    server has answered."""
    found: list[Message] = []
    async with sse(http, url, headers) as messages:
        if opened is not None:
            opened.set()
        async for message in messages:
            found.append(message)
            if len(found) == count:
                return found
    raise AssertionError(f"the stream ended after {len(found)} of {count} messages")


def rss_bytes(pid: int) -> int:
    """A process's resident set size (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")
