"""Bad input gets a clear 4xx JSON error, changes nothing, and the server stays healthy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    query: str = ""
    body: bytes | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, http: httpx.Client) -> httpx.Response:
        url = self.path + (f"?{self.query}" if self.query else "")
        kwargs: dict[str, Any] = {"headers": self.headers}
        if self.json is not None:
            kwargs["json"] = self.json
        elif self.body is not None:
            kwargs["content"] = self.body
        return http.request(self.method, httpx.URL(url), **kwargs)


def chunked(size: int) -> Iterator[bytes]:
    """A body sent without Content-Length."""
    for _ in range(size // 65536 + 1):
        yield b"x" * 65536


Q = "/v1.0/acct/q"
M = "/v1.0/acct/q/m"
CASES = {
    "limit not a number": Case("GET", Q, 400, "limit=abc"),
    "limit negative": Case("GET", Q, 400, "limit=-1"),
    "limit zero": Case("GET", Q, 400, "limit=0"),
    "limit fraction": Case("GET", Q, 400, "limit=1.5"),
    "limit with sign": Case("GET", Q, 400, "limit=+1"),
    "limit huge": Case("GET", Q, 400, "limit=" + "9" * 40),
    "limit over maximum": Case("GET", Q, 400, "limit=1001"),
    "limit empty": Case("GET", Q, 400, "limit="),
    "wait negative": Case("GET", Q, 400, "wait=-1"),
    "wait over maximum": Case("GET", Q, 400, "wait=301"),
    # v1.0 read every filter on every call but PUT: where one does nothing it is still checked.
    "wait not a number on one message": Case("GET", M, 400, "wait=soon"),
    "wait negative on accounts": Case("GET", "/v1.0", 400, "wait=-1"),
    "match_hidden not boolean on queues": Case("GET", "/v1.0/acct", 400, "match_hidden=1"),
    "limit not a number on one message": Case("DELETE", M, 400, "limit=all"),
    "detail on a one-message PUT": Case("PUT", M, 400, "detail=id", b"x"),
    "ttl not a number": Case("PUT", M, 400, "ttl=soon", b"x"),
    "hide negative": Case("PUT", M, 400, "hide=-5", b"x"),
    "ttl over maximum": Case("PUT", M, 400, "ttl=99999999", b"x"),
    "hide bad on post": Case("POST", Q, 400, "hide=x"),
    "unknown detail": Case("GET", Q, 400, "detail=everything"),
    "message detail on queues": Case("GET", "/v1.0/acct", 400, "detail=body"),
    "match_hidden not boolean": Case("GET", Q, 400, "match_hidden=yes"),
    "match_hidden empty": Case("GET", Q, 400, "match_hidden="),
    "unknown parameter": Case("GET", Q, 400, "color=blue"),
    "repeated parameter": Case("GET", Q, 400, "limit=1&limit=2"),
    "ttl on a read": Case("GET", Q, 400, "ttl=5"),
    "bad percent in query": Case("GET", Q, 400, "marker=%zz"),
    "invalid utf-8 in query": Case("GET", Q, 400, "marker=%ff"),
    "oversize body": Case("PUT", M, 413, body=b"x" * (MAX_BODY + 1)),
    "oversize chunked body": Case("PUT", M, 413, body=b"".join(chunked(MAX_BODY + 1))),
    "overlong message id": Case("PUT", Q + "/" + "m" * 256, 400, body=b"x"),
    "overlong account id": Case("GET", "/v1.0/" + "a" * 256, 400),
    "control character in id": Case("PUT", Q + "/a%01b", 400, body=b"x"),
    "dot-dot id": Case("PUT", Q + "/%2E%2E", 400, body=b"x"),
    "dot id": Case("GET", "/v1.0/acct/%2E", 400),
    "encoded slash in id": Case("PUT", Q + "/a%2Fb", 400, body=b"x"),
    "bad percent-encoding in path": Case("GET", Q + "/%zz", 400),
    "invalid utf-8 in path": Case("GET", Q + "/%ff%fe", 400),
    "PATCH a queue": Case("PATCH", Q, 405),
    "PUT the account list": Case("PUT", "/v1.0", 405, body=b"x"),
    "POST an account": Case("POST", "/v1.0/acct", 405),
    "DELETE the root": Case("DELETE", "/", 405),
    "POST health": Case("POST", "/health", 405),
    "HEAD a message": Case("HEAD", M, 405),
    "extra path segment": Case("GET", M + "/extra", 404),
    "unknown version": Case("GET", "/v2.0/acct", 404),
    "unknown top-level path": Case("GET", "/nope", 404),
    "empty segment": Case("GET", "/v1.0/acct//m", 404),
    "trailing slash": Case("GET", "/v1.0/acct/", 404),
    "query on root": Case("GET", "/", 400, "limit=1"),
    "batch not json": Case("PUT", Q, 400, body=b"{nope"),
    "batch not a list": Case("PUT", Q, 400, json={"body": "x"}),
    "batch empty": Case("PUT", Q, 400, json=[]),
    "batch entry not object": Case("PUT", Q, 400, json=["x"]),
    "batch unknown field": Case("PUT", Q, 400, json=[{"body": "x", "color": 1}]),
    "batch body not string": Case("PUT", Q, 400, json=[{"body": 5}]),
    "batch bad base64": Case("PUT", Q, 400, json=[{"body": "!!", "base64": True}]),
    "batch ttl as string": Case("PUT", Q, 400, json=[{"body": "x", "ttl": "5"}]),
    "batch ttl boolean": Case("PUT", Q, 400, json=[{"body": "x", "ttl": True}]),
    "batch repeated id": Case("PUT", Q, 400, json=[{"id": "a", "body": ""}] * 2),
    "batch bad id": Case("PUT", Q, 400, json=[{"id": "", "body": "x"}]),
    "batch too many": Case("PUT", Q, 413, json=[{"body": ""}] * 1001),
    "batch message too big": Case("PUT", Q, 413, json=[{"body": "x" * (MAX_BODY + 1)}]),
    "batch too big": Case("PUT", Q, 413, body=b"[" + b" " * (4 * 1024 * 1024) + b"]"),
    "batch deep nesting": Case("PUT", Q, 400, body=b"[" * 5000 + b"]" * 5000),
}


@pytest.fixture(scope="module")
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(http: httpx.Client, name: str) -> None:
    canary = "/v1.0/canary-bad-input/q/m"
    http.put(canary, content=b"keep", params={"ttl": 0})
    case = CASES[name]
    response = case.send(http)
    assert response.status_code == case.status, response.text
    if case.method != "HEAD":
        assert isinstance(response.json()["error"], str)
    if case.status == 405:
        assert response.headers["allow"]
    assert http.get("/health").status_code == 200
    assert http.get("/v1.0/acct").status_code == 404  # nothing was stored
    assert http.get(canary, params={"detail": "body"}).content == b"keep"
