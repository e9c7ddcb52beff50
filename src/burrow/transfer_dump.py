"""The dump `burrow export` writes and `burrow import` reads: JSON lines (docs/transfer.md).

    {"format": "burrow-dump", "version": 1, "source": ..., "time": ..., "accounts": ...}
    {"type": "info", "account": A, "queue": Q, "info": TEXT}
    {"type": "message", "account": A, "queue": Q, "id": ID, "ttl": N, "hide": N,
     "body": TEXT, "meta": BASE64}
    {"type": "end", "account": A, "queue": Q, "count": N, "sha256": HEX}
    {"type": "done", "queues": N, "messages": N}

A body or info that is not valid UTF-8 is `body_b64` / `info_b64` instead (standard
base64 with padding); meta is always base64. `end` closes each queue with its count and
`Digest`; `done` closes the dump, so that a cut-short one is noticed.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import IO, Any

import orjson

from burrow.backends.base import Backend
from burrow.errors import BurrowError
from burrow.model import NewMessage
from burrow.transfer import BATCH, Batch, Digest, End, Info, Step, pipeline, source_steps

FORMAT = "burrow-dump"
VERSION = 1
MAX_ID_LENGTH = 255


class DumpError(BurrowError):
    """A line of a dump that cannot be imported: nothing of it was written."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


def _line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


def _encoded(name: str, value: bytes) -> dict[str, str]:
    try:
        return {name: value.decode()}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(value).decode()}


class DumpWriter:
    """Writes the steps of a source as a dump, with each queue's and the dump's trailer."""

    def __init__(self, out: IO[bytes], source: str, accounts: Sequence[str]) -> None:
        self._out = out
        self._digest = Digest()
        self.queues = 0
        self.messages = 0
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        head = {"format": FORMAT, "version": VERSION, "source": source, "time": stamp}
        out.write(_line({**head, "accounts": list(accounts) or None}))

    def write(self, step: Step) -> None:
        where = {"account": step.account, "queue": step.queue}
        if isinstance(step, Info):
            self._out.write(_line({"type": "info", **where, **_encoded("info", step.document)}))
        elif isinstance(step, Batch):
            self._digest.add(step.messages)
            self.messages += len(step.messages)
            self._out.write(b"".join(_line(_message(where, m)) for m in step.messages))
        else:
            digest, self._digest = self._digest, Digest()
            self.queues += 1
            end = {"count": digest.count, "sha256": digest.hexdigest()}
            self._out.write(_line({"type": "end", **where, **end}))

    def close(self) -> None:
        self._out.write(_line({"type": "done", "queues": self.queues, "messages": self.messages}))
        self._out.flush()


def _message(where: dict[str, str], message: NewMessage) -> dict[str, Any]:
    return {
        "type": "message",
        **where,
        "id": message.id,
        "ttl": message.ttl,
        "hide": message.hide,
        **_encoded("body", message.body),
        "meta": base64.b64encode(message.meta).decode(),
    }


class DumpReader:
    """The steps a dump holds, checked line by line, in batches of up to `size` messages.

    The first `skip` lines are read and checked but not written (resuming an import).
    Each queue's `end` line is compared with what the dump held for it: `mismatches`
    says where they differ, and where the dump ends without its `done` line.
    """

    def __init__(self, lines: Iterable[bytes], skip: int = 0, size: int = BATCH) -> None:
        self._lines = lines
        self._skip = skip
        self._size = size
        self.header: dict[str, Any] = {}
        self.mismatches: list[str] = []
        self.verified = 0
        self.messages = 0
        self._done = False
        self._digests: dict[tuple[str, str], Digest] = {}

    def steps(self) -> Iterator[Step]:
        """Each step as soon as its lines are read and checked; a malformed line raises
        `DumpError` once the steps before it are out."""
        pending = _Pending(self._size)
        number = 0
        try:
            for number, raw in enumerate(self._lines, 1):
                yield from self._step(number, _record(number, raw), pending)
        except DumpError as error:
            yield from pending.flush(error.line - 1)
            raise
        if number == 0:
            raise DumpError(1, "the dump is empty: it must start with its header line")
        yield from pending.flush(number)
        if not self._done:
            self.mismatches.append(f"the dump ends at line {number} without its done line")

    def _step(self, number: int, record: dict[str, Any], pending: _Pending) -> Iterator[Step]:
        if number == 1:
            self.header = _header(record)
            return
        if self._done:
            raise DumpError(number, "nothing may follow the dump's done line")
        kind = record.get("type")
        if kind == "done":
            yield from pending.flush(number - 1)
            self._done = True
            return
        account, queue = _place(record, number)
        if kind == "message":
            message = _new_message(record, number)
            self._digests.setdefault((account, queue), Digest()).add([message])
            self.messages += 1
            if number > self._skip:
                yield from pending.add(account, queue, message, number)
            return
        if kind not in ("info", "end"):
            raise DumpError(number, f"unknown type {kind!r}: info, message, end or done")
        document = _bytes(record, "info", number) if kind == "info" else b""
        yield from pending.flush(number - 1)
        if kind == "end":
            self._compare(record, number, account, queue)
            yield End(account, queue, number)
        elif number > self._skip:
            yield Info(account, queue, document, number)

    def _compare(self, record: dict[str, Any], number: int, account: str, queue: str) -> None:
        count, checksum = _number(record, "count", number), _text(record, "sha256", number)
        held = self._digests.pop((account, queue), None) or Digest()
        if (held.count, held.hexdigest()) == (count, checksum):
            self.verified += 1
        else:
            said = f"its end line (line {number})"
            self.mismatches.append(
                f"{account}/{queue}: the dump holds {held.count} messages, {said} says {count}"
                if held.count != count
                else f"{account}/{queue}: the dump's messages do not have the checksum {said} says"
            )


class _Pending:
    """Messages read for the next batch: of one queue, no id twice, at most `size`."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._where = ("", "")
        self._messages: dict[str, NewMessage] = {}

    def add(self, account: str, queue: str, message: NewMessage, line: int) -> Iterator[Batch]:
        if (account, queue) != self._where or message.id in self._messages:
            yield from self.flush(line - 1)
            self._where = (account, queue)
        self._messages[message.id] = message
        if len(self._messages) >= self._size:
            yield from self.flush(line)

    def flush(self, line: int) -> Iterator[Batch]:
        if self._messages:
            yield Batch(*self._where, list(self._messages.values()), line)
            self._messages = {}


def _record(number: int, raw: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise DumpError(number, f"not JSON: {error}") from None
    if not isinstance(record, dict):
        raise DumpError(number, "not a JSON object")
    return record


def _header(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("format") != FORMAT:
        raise DumpError(1, f"not a Burrow dump: the first line must have format {FORMAT!r}")
    if record.get("version") != VERSION:
        raise DumpError(1, f"dump version {record.get('version')!r}: this Burrow reads {VERSION}")
    _text(record, "source", 1)
    _text(record, "time", 1)
    return record


def _text(record: dict[str, Any], name: str, number: int) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise DumpError(number, f"{name!r} must be a string")
    return value


def _name(record: dict[str, Any], name: str, number: int) -> str:
    """An account, queue or message id, by the service's rules (backend keys rely on them)."""
    value = _text(record, name, number)
    if not value or len(value) > MAX_ID_LENGTH:
        raise DumpError(number, f"{name!r} must have 1 to {MAX_ID_LENGTH} characters")
    if value in (".", "..") or "/" in value or not value.isprintable():
        raise DumpError(number, f"{name!r} contains characters that are not allowed")
    return value


def _place(record: dict[str, Any], number: int) -> tuple[str, str]:
    return _name(record, "account", number), _name(record, "queue", number)


def _number(record: dict[str, Any], name: str, number: int) -> int:
    value = record.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DumpError(number, f"{name!r} must be a whole number, 0 or more")
    return value


def _base64(value: str, name: str, number: int) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DumpError(number, f"{name!r} is not base64") from None


def _bytes(record: dict[str, Any], name: str, number: int) -> bytes:
    """`name` as text, or `name_b64` as base64: exactly one of them."""
    encoded = f"{name}_b64"
    if (name in record) == (encoded in record):
        raise DumpError(number, f"a line must have one of {name!r} and {encoded!r}")
    if name in record:
        return _text(record, name, number).encode()
    return _base64(_text(record, encoded, number), encoded, number)


def _new_message(record: dict[str, Any], number: int) -> NewMessage:
    meta = record.get("meta", "")
    if not isinstance(meta, str):
        raise DumpError(number, "'meta' must be a base64 string")
    return NewMessage(
        _name(record, "id", number),
        _bytes(record, "body", number),
        _number(record, "ttl", number),
        _number(record, "hide", number),
        _base64(meta, "meta", number),
    )


async def export_dump(
    source: Backend,
    writer: DumpWriter,
    queues: Iterable[tuple[str, str]],
    batch: int = BATCH,
    exported: Callable[[int], None] = lambda _: None,
) -> None:
    """Write the queues of `source` to `writer`, and the dump's closing line; `exported`
    is told of each batch's number of messages."""
    async for step in source_steps(source, queues, size=batch):
        writer.write(step)
        if isinstance(step, Batch):
            exported(len(step.messages))
    writer.close()


async def import_dump(
    target: Backend, reader: DumpReader, committed: Callable[[Step], None] = lambda _: None
) -> None:
    """Write what `reader` holds to `target`; `committed` is told of each written step.

    A malformed line raises `DumpError` once the lines before it are written.
    """

    async def steps() -> AsyncIterator[Step]:
        for step in reader.steps():
            yield step

    await pipeline(steps(), target, committed)
