"""`burrow serve --log-format json` and `X-Request-Id`, against a real server."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.waiting import wait_until


def lines(server: BurrowServer) -> list[dict[str, Any]]:
    """Every line of the server's log, each of which must be a JSON object."""
    return [json.loads(line) for line in server.log().splitlines()]


def access_line(server: BurrowServer, request_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def logged() -> bool:
        found[:] = [line for line in lines(server) if line.get("request_id") == request_id]
        return bool(found)

    wait_until(logged, f"the access line of request {request_id}")
    (line,) = found
    return line


def test_json_lines_carry_the_request_id_the_response_echoes(start_server: ServerFactory) -> None:
    server = start_server("memory://", "--log-format", "json", "--access-log")
    with httpx.Client(base_url=server.url) as http:
        given = http.put("/v1.0/a/q/m", content=b"x", headers={"X-Request-Id": "trace-42 b"})
        made = [http.get("/v1.0/a/q/nope").headers["x-request-id"] for _ in range(2)]
        too_long = http.get("/health", headers={"X-Request-Id": "x" * 129})
        empty = http.get("/health", headers={"X-Request-Id": ""})
    assert given.headers["x-request-id"] == "trace-42 b"  # a client's own, kept
    assert made[0] != made[1]  # one made for each request without
    for refused in (too_long, empty):
        assert refused.headers["x-request-id"] not in ("x" * 129, "", *made)
    line = access_line(server, "trace-42 b")
    assert {k: line[k] for k in ("level", "logger", "method", "path", "status")} == {
        "level": "info",
        "logger": "uvicorn.access",
        "method": "PUT",
        "path": "/v1.0/a/q/m",
        "status": 201,
    }
    assert 0 < line["duration"] < 30
    assert access_line(server, made[1])["status"] == 404
    # Every line is an object with its time, level, logger and message; the ready line too.
    every = lines(server)
    assert all({"time", "level", "logger", "message"} <= set(one) for one in every)
    assert any(one["message"].startswith("Burrow ready at ") for one in every)
