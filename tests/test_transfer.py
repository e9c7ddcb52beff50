"""`burrow export` and `burrow import`: a dump carries every queue from one backend to
another (each pair of memory, SQLite, Redis and PostgreSQL), and bad dumps are refused."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from burrow.backends import open_backend
from burrow.backends.base import Backend
from burrow.model import Filters, Message, NewMessage
from burrow.transfer import pages, queues_of
from burrow.transfer_dump import DumpReader, DumpWriter, export_dump, import_dump
from tests.engines.postgres import TEMPLATE, PostgresCluster

KINDS = ["memory", "sqlite", "redis", "postgres"]
ALL = Filters(match_hidden=True)
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


def burrow(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "burrow", *args]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=120, check=False)


@pytest.fixture
async def dumped(tmp_path: Path) -> tuple[str, bytes]:
    """A SQLite source holding MESSAGES and INFOS, and its dump (`burrow export` to stdout)."""
    source = f"sqlite:///{tmp_path}/source.db"
    async with open_backend(source) as backend:
        await fill(backend)
    exported = burrow("export", "--backend", source)
    assert exported.returncode == 0, exported.stderr
    assert b"export: 4 of 4 messages" in exported.stderr  # progress: never on stdout
    return source, exported.stdout


async def test_a_dump_on_stdout_imports_from_stdin(
    tmp_path: Path, dumped: tuple[str, bytes]
) -> None:
    source, dump = dumped
    header, *_, done = map(orjson.loads, dump.splitlines())
    assert (header["format"], header["version"], header["source"]) == (
        "burrow-dump",
        1,
        f"sqlite {tmp_path}/source.db",
    )
    assert done == {"type": "done", "queues": 3, "messages": 4}
    target = f"sqlite:///{tmp_path}/target.db"
    imported = burrow("import", "--backend", target, stdin=dump)
    assert imported.returncode == 0, imported.stderr
    assert b"3 queues' end lines verified" in imported.stdout
    async with open_backend(source) as ours, open_backend(target) as theirs:
        original, copied = await contents(ours), await contents(theirs)
    assert list(copied) == list(original)
    for place, queue in original.items():
        assert_same(copied[place], queue)


async def test_a_malformed_line_is_named_and_the_rest_goes_on_with_skip(
    tmp_path: Path, dumped: tuple[str, bytes]
) -> None:
    lines = dumped[1].splitlines(keepends=True)
    assert orjson.loads(lines[3])["id"] == "a2"
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join([*lines[:3], lines[3].replace(b'"ttl":300', b'"ttl":"300"')]))
    target = f"sqlite:///{tmp_path}/target.db"
    refused = burrow("import", "--backend", target, "--input", str(broken))
    assert refused.returncode == 2
    assert b"line 4: 'ttl' must be a whole number" in refused.stderr
    assert b"--skip 3" in refused.stderr
    async with open_backend(target) as backend:  # the lines before it, not the bad one
        assert [m.id for m in await backend.get_messages("alpha", "jobs", ALL)] == ["z1"]

    broken.write_bytes(b"".join(lines))  # fixed
    resumed = burrow("import", "--backend", target, "--input", str(broken), "--skip", "3")
    assert resumed.returncode == 0, resumed.stderr
    async with open_backend(target) as backend:
        listed = await backend.get_messages("alpha", "jobs", ALL)
    assert [m.id for m in listed] == ["z1", "a2", "m3"]


async def test_a_dump_edited_after_export_fails_its_end_line(
    tmp_path: Path, dumped: tuple[str, bytes]
) -> None:
    edited = dumped[1].replace(b'"id":"z1"', b'"id":"z9"')
    imported = burrow("import", "--backend", f"sqlite:///{tmp_path}/target.db", stdin=edited)
    assert imported.returncode == 1
    assert b"mismatch: alpha/jobs: the dump's messages do not have the checksum" in imported.stdout


def test_an_unknown_scheme_is_a_usage_error() -> None:
    for command in (
        ["export", "--backend", "mongodb://db"],
        ["import", "--backend", "mongodb://db"],
        ["migrate", "--from", "mongodb://db", "--to", "memory://"],
    ):
        refused = burrow(*command)
        assert refused.returncode == 2
        assert b"backend 'mongodb://db': unknown scheme 'mongodb'; use one of" in refused.stderr
