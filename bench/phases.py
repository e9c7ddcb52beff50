"""The benchmark phases: what each closed-loop connection does, one step at a time.

Each phase is a workload (see `loadgen.Workload`) built for one account and queue, so
phases never see each other's messages. A step credits each message it moved (put,
claimed-and-deleted, or popped) as the response that moved it arrives, with
`conn.credit(n)`; that is what `msgs/s` counts.

An `Api` bundles one wire protocol's phases with the unmeasured requests around them
(readiness, prefill, cleanup): `BURROW` here, `ZAQAR` in `zaqar_phases.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import orjson

from bench.loadgen import Connection, LoadError, Recorder, Workload, build_request

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


class Draining:
    """Shared by the claim phases: counts calls that found the queue empty.

    A non-empty answer has status `ok` and a JSON list of messages, or an object
    holding that list under `key`."""

    ok = 200
    key: str | None = None

    def __init__(self) -> None:
        self.empty = 0
        self.bad_body = 0

    def _items(self, status: int, body: bytes) -> list[dict[str, object]]:
        if status != self.ok:
            if status in (204, 404):
                self.empty += 1
            return []
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.bad_body += 1
            return []
        if self.key is not None and isinstance(items, dict):
            items = items.get(self.key)
        if not isinstance(items, list):
            self.bad_body += 1
            return []
        if not items:
            self.empty += 1
        return items


class ClaimDelete(Draining):
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


class ClaimAck(Draining):
    """`POST /v1.0/{a}/{q}?limit=10&hide=60&detail=id` → 200 ids; then one
    `POST /v1.0/{a}/{q}/-/delete` of them (200, the ids deleted): 2 requests a batch."""

    def __init__(self, host: str, account: str, queue: str, limit: int = BATCH) -> None:
        super().__init__()
        base = f"/v1.0/{_q(account)}/{_q(queue)}"
        self.claim = _head("POST", f"{base}?limit={limit}&hide={CLAIM_HIDE}&detail=id", host, 0)
        self.ack_head = f"POST {base}/-/delete HTTP/1.1\r\nHost: {host}\r\n".encode()

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        status, body = await conn.request(self.claim, 200)
        if not self._items(status, body):
            return
        head = self.ack_head + b"Content-Type: application/json\r\nContent-Length: "
        raw = head + str(len(body)).encode() + b"\r\n\r\n" + body  # the claim's id list
        st, answer = await conn.request(raw, 200)
        conn.credit(len(self._items(st, answer)))  # an ack that deleted none counts empty


class ClaimPop(Draining):
    """`DELETE /v1.0/{a}/{q}?limit=10&detail=all` → 200 list of the deleted messages."""

    def __init__(self, host: str, account: str, queue: str, limit: int = BATCH) -> None:
        super().__init__()
        self.raw = self.pop_request(host, account, queue, limit)

    @staticmethod
    def pop_request(host: str, account: str, queue: str, limit: int) -> bytes:
        target = f"/v1.0/{_q(account)}/{_q(queue)}?limit={limit}&detail=all"
        return _head("DELETE", target, host, None)

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
        PhaseSpec(
            "claim-ack",
            "POST claim 10 (hide=60, detail=id) then POST -/delete of the 10 (200)",
            ClaimAck,
            prefill=True,
        ),
        PhaseSpec("claim-pop", "DELETE ?limit=10&detail=all (pop 10)", ClaimPop, prefill=True),
        PhaseSpec("latency", "put-1 on a single connection", PutOne, single=True),
    )
}


# --------------------------------------------------------------------------- setup helpers


@dataclass(frozen=True)
class Api:
    """One wire protocol: its phases, and the unmeasured requests around them.

    Each request builder takes the Host header first; `fill` and `cleanup` also take
    the account (Zaqar: project) and queue."""

    phases: dict[str, PhaseSpec]
    ping: Callable[[str], bytes]  # answered 200 or 204 once the server is up
    fill: Callable[[str, str, str, int], bytes]  # puts n messages (PREFILL_TTL) → 201
    cleanup: Callable[[str, str, str], bytes]  # deletes what a row left → 200/204/404
    fill_batch: int = 500  # messages per prefill request


def _burrow_fill(host: str, account: str, queue: str, n: int) -> bytes:
    target = f"/v1.0/{_q(account)}/{_q(queue)}?ttl={PREFILL_TTL}"
    return build_request("PUT", target, host, batch_body(n), "application/json")


BURROW = Api(
    phases=PHASES,
    ping=lambda host: _head("GET", "/", host, None),
    fill=_burrow_fill,
    # The whole account: the queue and anything else a row made.
    cleanup=lambda host, account, queue: _head("DELETE", f"/v1.0/{_q(account)}", host, None),
)

READY = (200, 204)  # what `Api.ping` answers when the server is up


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
    api: Api,
    host: str,
    port: int,
    account: str,
    queue: str,
    count: int,
    connections: int = 4,
    time_limit: float = 120.0,
) -> tuple[int, float, dict[str, int]]:
    """Insert `count` messages with batch requests; bounded by count and `time_limit`.

    Returns (messages inserted, seconds taken, failures by status).
    """
    batch = api.fill_batch
    raw = api.fill(f"{host}:{port}", account, queue, batch)
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


async def cleanup(
    api: Api, host: str, port: int, account: str, queue: str, seconds: float = 60.0
) -> int:
    """Delete what a row left (unmeasured); returns the status (0 = failed)."""
    raw = api.cleanup(f"{host}:{port}", account, queue)
    status, _ = await one_request(host, port, raw, seconds)
    return status
