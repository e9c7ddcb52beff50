"""The benchmark phases: what each closed-loop connection does, one step at a time.

Each phase is a workload (see `loadgen.Workload`) built for one account and queue, so
phases never see each other's messages. A step credits each message it moved (put,
claimed-and-deleted, or popped) as the response that moved it arrives, with
`conn.credit(n)`; that is what `msgs/s` counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import orjson

from loadgen import Connection, LoadError, Recorder, Workload, build_request

BODY_SIZE = 100
BODY = b"m" * BODY_SIZE
BATCH = 10  # messages per batch PUT, claim and pop
PUT_TTL = 600
CLAIM_HIDE = 60
PREFILL_TTL = 3600


def _head(method: str, target: str, host: str, body_len: int | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    if body_len is not None:
        lines += ["Content-Type: application/octet-stream", f"Content-Length: {body_len}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _q(name: str) -> str:
    return quote(name, safe="")


def batch_body(n: int, body: bytes = BODY) -> bytes:
    """A batch PUT body: a JSON list of `n` messages with server-generated ids."""
    return orjson.dumps([{"body": body.decode()}] * n)


class PutOne:
    """`PUT /v1.0/{a}/{q}/{unique-id}?ttl=600` with a 100-byte body → 201."""

    def __init__(self, host: str, account: str, queue: str) -> None:
        # The request is prefix + id + suffix; only the id changes.
        self.prefix = f"PUT /v1.0/{_q(account)}/{_q(queue)}/".encode()
        self.suffix = (
            f"?ttl={PUT_TTL} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {BODY_SIZE}\r\n\r\n"
        ).encode() + BODY
        self.tag = f"{time.time_ns():x}".encode()

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        raw = b"%s%s-%d-%d%s" % (self.prefix, self.tag, worker, seq, self.suffix)
        status, _ = await conn.request(raw, 201)
        if status == 201:
            conn.credit(1)


class PutBatch:
    """`PUT /v1.0/{a}/{q}?ttl=600` with a JSON list of 10 messages → 201 (server ids)."""

    def __init__(self, host: str, account: str, queue: str, size: int = BATCH) -> None:
        body = batch_body(size)
        target = f"/v1.0/{_q(account)}/{_q(queue)}?ttl={PUT_TTL}"
        self.raw = build_request("PUT", target, host, body, "application/json")
        self.size = size

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        status, _ = await conn.request(self.raw, 201)
        if status == 201:
            conn.credit(self.size)


class _Draining:
    """Shared by the claim phases: counts calls that found the queue empty."""

    def __init__(self) -> None:
        self.empty = 0
        self.bad_body = 0

    def _items(self, status: int, body: bytes) -> list[dict[str, object]]:
        if status != 200:
            if status in (204, 404):
                self.empty += 1
            return []
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.bad_body += 1
            return []
        if not isinstance(items, list):
            self.bad_body += 1
            return []
        return items


class ClaimDelete(_Draining):
    """`POST /v1.0/{a}/{q}?limit=10&hide=60&detail=all` → 200 list; then DELETE each (204)."""

    def __init__(self, host: str, account: str, queue: str, limit: int = BATCH) -> None:
        super().__init__()
        base = f"/v1.0/{_q(account)}/{_q(queue)}"
        self.claim = _head("POST", f"{base}?limit={limit}&hide={CLAIM_HIDE}&detail=all", host, 0)
        self.del_prefix = f"DELETE {base}/".encode()
        self.del_suffix = f" HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        status, body = await conn.request(self.claim, 200)
        for item in self._items(status, body):
            mid = item.get("id") if isinstance(item, dict) else None
            if not isinstance(mid, str):
                self.bad_body += 1
                continue
            raw = self.del_prefix + _q(mid).encode() + self.del_suffix
            st, _ = await conn.request(raw, 204)
            if st == 204:
                conn.credit(1)


class ClaimPop(_Draining):
    """`DELETE /v1.0/{a}/{q}?limit=10&detail=all` → 200 list of the deleted messages."""

    def __init__(self, host: str, account: str, queue: str, limit: int = BATCH) -> None:
        super().__init__()
        target = f"/v1.0/{_q(account)}/{_q(queue)}?limit={limit}&detail=all"
        self.raw = _head("DELETE", target, host, None)

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        status, body = await conn.request(self.raw, 200)
        conn.credit(len(self._items(status, body)))


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    description: str
    make: Callable[[str, str, str], Workload]  # (host header, account, queue) → workload
    prefill: bool = False  # the queue must hold messages before the phase starts
    single: bool = False  # one connection, whatever --concurrency says


PHASES: dict[str, PhaseSpec] = {
    p.name: p
    for p in (
        PhaseSpec("put-1", "PUT one 100-byte message by id (201)", PutOne),
        PhaseSpec("put-batch-10", "PUT a JSON batch of 10 messages (201)", PutBatch),
        PhaseSpec(
            "claim-delete",
            "POST claim 10 (hide=60) then DELETE each by id (204)",
            ClaimDelete,
            prefill=True,
        ),
        PhaseSpec("claim-pop", "DELETE ?limit=10&detail=all (pop 10)", ClaimPop, prefill=True),
        PhaseSpec("latency", "put-1 on a single connection", PutOne, single=True),
    )
}


# --------------------------------------------------------------------------- setup helpers


async def one_request(host: str, port: int, raw: bytes, seconds: float = 30.0) -> tuple[int, bytes]:
    """A single unmeasured request on a fresh connection (status 0 on failure)."""
    conn = Connection(host, port, Recorder())
    try:
        async with asyncio.timeout(seconds):
            return await conn.request(raw, 200)
    except (TimeoutError, LoadError):
        return 0, b""
    finally:
        conn.close()


async def prefill(
    host: str,
    port: int,
    account: str,
    queue: str,
    count: int,
    batch: int = 500,
    connections: int = 4,
    time_limit: float = 120.0,
) -> tuple[int, float, dict[str, int]]:
    """Insert `count` messages with batch PUTs; bounded by count and `time_limit`.

    Returns (messages inserted, seconds taken, failures by status).
    """
    host_header = f"{host}:{port}"
    target = f"/v1.0/{_q(account)}/{_q(queue)}?ttl={PREFILL_TTL}"
    raw = build_request("PUT", target, host_header, batch_body(batch), "application/json")
    rec = Recorder()
    remaining = [(count + batch - 1) // batch]
    inserted = [0]
    t0 = time.perf_counter()
    deadline = t0 + time_limit

    async def filler() -> None:
        conn = Connection(host, port, rec)
        try:
            while remaining[0] > 0 and time.perf_counter() < deadline:
                remaining[0] -= 1
                status, _ = await conn.request(raw, 201)
                if status == 201:
                    inserted[0] += batch
        finally:
            conn.close()

    tasks = [asyncio.create_task(filler()) for _ in range(connections)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), time_limit + 30)
    except (TimeoutError, LoadError):
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return inserted[0], time.perf_counter() - t0, dict(rec.warmup_errors)


async def delete_account(host: str, port: int, account: str, seconds: float = 60.0) -> int:
    """`DELETE /v1.0/{account}` (cleanup after a phase); returns the status (0 = failed)."""
    raw = _head("DELETE", f"/v1.0/{_q(account)}", f"{host}:{port}", None)
    status, _ = await one_request(host, port, raw, seconds)
    return status
