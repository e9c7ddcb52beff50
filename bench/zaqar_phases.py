"""The benchmark phases in OpenStack Zaqar's v2 API, for the Burrow / Zaqar comparison.

Same 100-byte bodies, batches of 10 and crediting rule as `phases.py`: a step credits
each message it moved as the response that moved it arrives. A row's account becomes
Zaqar's project (`X-Project-ID`); every request also carries the `Client-ID` UUID that
Zaqar requires.

- put-1, latency: `POST /v2/queues/q/messages` with one message → 201;
- put-batch-10: the same with 10 messages → 201;
- claim-delete: `POST /v2/queues/q/claims?limit=10` → 201, then `DELETE` each message's
  `href` (`/v2/queues/q/messages/{id}?claim_id={claim}`) → 204;
- claim-bulk-delete: the claim, then one `DELETE /v2/queues/q/messages?ids=…&claim_ids=…`
  → 204;
- claim-pop: `DELETE /v2/queues/q/messages?pop=10` → 200.
"""

from __future__ import annotations

import uuid
from functools import partial
from urllib.parse import quote

import orjson

from bench import phases
from bench.loadgen import Connection, FixedRequest, build_request
from bench.phases import (
    BATCH,
    BODY,
    CLAIM_HIDE,
    PREFILL_TTL,
    PUT_TTL,
    Api,
    Draining,
    PhaseSpec,
)

CLIENT_ID = str(uuid.uuid4())
CLAIM_GRACE = 60


def _request(method: str, target: str, host: str, project: str, body: bytes = b"") -> bytes:
    headers = [("X-Project-ID", project), ("Client-ID", CLIENT_ID)]
    return build_request(method, target, host, body, "application/json", headers)


def _base(queue: str) -> str:
    return f"/v2/queues/{quote(queue, safe='')}"


def _post_body(n: int, ttl: int) -> bytes:
    return orjson.dumps({"messages": [{"ttl": ttl, "body": BODY.decode()}] * n})


def post(host: str, project: str, queue: str, size: int = 1) -> FixedRequest:
    """`POST /v2/queues/{q}/messages` with `size` messages → 201 (server ids)."""
    raw = _request("POST", f"{_base(queue)}/messages", host, project, _post_body(size, PUT_TTL))
    return FixedRequest(raw, 201, size)


class _Claiming(Draining):
    """Claims `limit` messages: 201 `{"messages": [{"id", "href", …}]}`, 204 when empty."""

    ok = 201
    key = "messages"

    def __init__(self, host: str, project: str, queue: str, limit: int = BATCH) -> None:
        super().__init__()
        self.host, self.project, self.base = host, project, _base(queue)
        claim = orjson.dumps({"ttl": CLAIM_HIDE, "grace": CLAIM_GRACE})
        target = f"{self.base}/claims?limit={limit}"
        self.claim = _request("POST", target, host, project, claim)

    async def _claimed(self, conn: Connection) -> list[tuple[str, str]]:
        """(id, href) of each message claimed; the href carries `?claim_id=`."""
        status, body = await conn.request(self.claim, 201)
        out = []
        for item in self._items(status, body):
            mid, href = item.get("id"), item.get("href")
            if isinstance(mid, str) and isinstance(href, str) and "?claim_id=" in href:
                out.append((mid, href))
            else:
                self.bad_body += 1
        return out


class ClaimDelete(_Claiming):
    """Claim 10, then `DELETE` each message's href (`…/messages/{id}?claim_id=…`) → 204."""

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        for _, href in await self._claimed(conn):
            status, _ = await conn.request(_request("DELETE", href, self.host, self.project), 204)
            if status == 204:
                conn.credit(1)


class ClaimBulkDelete(_Claiming):
    """Claim 10, then one `DELETE …/messages?ids=a,b,…&claim_ids=c` → 204."""

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        claimed = await self._claimed(conn)
        if not claimed:
            return
        ids = ",".join(mid for mid, _ in claimed)
        claim_ids = ",".join(dict.fromkeys(href.split("?claim_id=", 1)[1] for _, href in claimed))
        target = f"{self.base}/messages?ids={ids}&claim_ids={claim_ids}"
        status, _ = await conn.request(_request("DELETE", target, self.host, self.project), 204)
        if status == 204:
            conn.credit(len(claimed))


class ClaimPop(phases.ClaimPop):
    """`DELETE /v2/queues/{q}/messages?pop=10` → 200 `{"messages": […]}` ([] when empty)."""

    key = "messages"

    @staticmethod
    def pop_request(host: str, project: str, queue: str, limit: int) -> bytes:
        return _request("DELETE", f"{_base(queue)}/messages?pop={limit}", host, project)


ZAQAR_PHASES: dict[str, PhaseSpec] = {
    p.name: p
    for p in (
        PhaseSpec("put-1", "POST one 100-byte message (201)", post),
        PhaseSpec("put-batch-10", "POST 10 messages (201)", partial(post, size=BATCH)),
        PhaseSpec(
            "claim-delete",
            "POST claim 10 (ttl=60, grace=60) then DELETE each with ?claim_id= (204)",
            ClaimDelete,
            prefill=True,
        ),
        PhaseSpec(
            "claim-bulk-delete",
            "POST claim 10 then one DELETE ?ids=…&claim_ids=… (204)",
            ClaimBulkDelete,
            prefill=True,
        ),
        PhaseSpec("claim-pop", "DELETE ?pop=10 (200)", ClaimPop, prefill=True),
        PhaseSpec("latency", "put-1 on a single connection", post, single=True),
    )
}


def _fill(host: str, project: str, queue: str, n: int) -> bytes:
    return _request("POST", f"{_base(queue)}/messages", host, project, _post_body(n, PREFILL_TTL))


ZAQAR = Api(
    phases=ZAQAR_PHASES,
    ping=lambda host: _request("GET", "/v2/ping", host, "bench"),
    fill=_fill,
    # The redis driver leaves the messages of a deleted queue behind; the redis-server
    # is a throwaway one, so that only costs memory.
    cleanup=lambda host, project, queue: _request("DELETE", _base(queue), host, project),
    fill_batch=100,
)
