"""`burrow export` and `burrow import`: a dump carries every queue from one backend to
another (each pair of memory, SQLite, Redis and PostgreSQL), and bad dumps are refused."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from burrow.backends import open_backend
from burrow.backends.base import Backend
from burrow.model import Message, NewMessage
from burrow.transfer import pages, queues_of
from burrow.transfer_dump import DumpReader, DumpWriter, export_dump, import_dump
from tests.engines.postgres import TEMPLATE, PostgresCluster

KINDS = ["memory", "sqlite", "redis", "postgres"]
# What the source holds: creation order is not id order; a binary body and meta; a
# message that never expires, a hidden one; an info on a queue with messages, a binary
# one on a queue without.
MESSAGES = {
    ("alpha", "jobs"): [
        NewMessage("z1", "héllo ✓".encode(), 0, 0),
        NewMessage("a2", b"\xff\x00\xfe", 300, 0, b"\x01attrs"),
        NewMessage("m3", b"", 600, 120),
    ],
    ("beta", "two words"): [NewMessage("only", b'{"json": true}', 900, 0)],
}
INFOS = {("alpha", "jobs"): b'{"DelaySeconds": "0"}', ("alpha", "bare"): b"\x80\x81 binary"}


@pytest.fixture
def second_postgres_url(postgres_server: PostgresCluster) -> Iterator[str]:
    """A database of its own beside `postgres_backend_url`'s, for postgres → postgres."""
    postgres_server.execute("CREATE DATABASE burrow_transfer_target TEMPLATE " + TEMPLATE)
    yield postgres_server.url("burrow_transfer_target")
    postgres_server.execute("DROP DATABASE burrow_transfer_target WITH (FORCE)")


def store(request: pytest.FixtureRequest, kind: str, tmp_path: Path, second: bool) -> str:
    """An empty store of `kind`; `second` gives another one than the first of that kind."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/{'target' if second else 'source'}.db"
    url: str = request.getfixturevalue(f"{kind}_backend_url")
    if not second:
        return url
    if kind == "redis":  # the fixture flushed every database of the server
        return url.removesuffix("/0") + "/1"
    return str(request.getfixturevalue("second_postgres_url"))


async def fill(backend: Backend) -> None:
    for (account, queue), messages in MESSAGES.items():
        await backend.put_messages(account, queue, messages)
    for (account, queue), info in INFOS.items():
        assert await backend.set_queue_info(account, queue, info, None)


async def contents(backend: Backend) -> dict[tuple[str, str], tuple[list[Message], bytes | None]]:
    found = {}
    for account, queue in await queues_of(backend):
        messages = [m async for page in pages(backend, account, queue) for m in page]
        found[account, queue] = (messages, await backend.get_queue_info(account, queue))
    return found


def assert_same(
    copied: tuple[list[Message], bytes | None], original: tuple[list[Message], bytes | None]
) -> None:
    (messages, info), (expected, expected_info) = copied, original
    assert info == expected_info
    assert [(m.id, m.body, m.meta) for m in messages] == [(m.id, m.body, m.meta) for m in expected]
    for message, source in zip(messages, expected, strict=True):
        assert (message.ttl == 0) == (source.ttl == 0)  # never expiring stays so
        assert abs(message.ttl - source.ttl) <= 2
        assert (message.hide == 0) == (source.hide == 0)
        assert abs(message.hide - source.hide) <= 2


@pytest.mark.parametrize("target_kind", KINDS)
@pytest.mark.parametrize("source_kind", KINDS)
async def test_export_then_import_copies_every_queue(
    request: pytest.FixtureRequest, tmp_path: Path, source_kind: str, target_kind: str
) -> None:
    source_url = store(request, source_kind, tmp_path, second=False)
    target_url = store(request, target_kind, tmp_path, second=source_kind == target_kind)
    dump = io.BytesIO()
    async with open_backend(source_url) as source:
        await fill(source)
        await export_dump(source, DumpWriter(dump, "test", []), await queues_of(source))
        original = await contents(source)
    reader = DumpReader(dump.getvalue().splitlines())
    async with open_backend(target_url) as target:
        await import_dump(target, reader)
        copied = await contents(target)
    assert list(copied) == list(original)  # the same queues, in the same order
    for place, queue in original.items():
        assert_same(copied[place], queue)
    assert (reader.verified, reader.mismatches, reader.messages) == (3, [], 4)
