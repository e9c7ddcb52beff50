"""The audit log under attack: no client value can forge a line, and a flood of refused
credentials is turned away by address and logged in a few counted lines."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import BurrowServer
from tests.test_auth import add_key

# Every line the server writes starts this way (`burrow serve`'s logging format).
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ [A-Z]+ ")
FORGED = "2030-01-01 00:00:00,000 1 WARNING burrow.audit: 401 GET on account forged"
PATIENCE = 10.0  # seconds to wait for a line the server will write


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[BurrowServer, str]]:
    """A server with authentication on, logging at debug; and a writer token of `a`."""
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "writer", "a")
    server = BurrowServer(
        tmp_path, "memory://", "--auth", f"keys:{keyfile}", "--log-level", "debug"
    ).start()
    yield server, token
    server.kill()


def log_lines_after(server: BurrowServer, mark: int) -> list[str]:
    return server.log()[mark:].splitlines()


def test_no_client_value_forges_a_log_line(secured: tuple[BurrowServer, str]) -> None:
    server, token = secured
    newline = "%0A" + FORGED.replace(" ", "%20")
    mark = len(server.log())
    anonymous, writer = httpx.Client(base_url=server.url), httpx.Client(base_url=server.url)
    writer.headers["X-Auth-Token"] = token
    with anonymous, writer:
        # An account id with a line feed, without a token (the reported attack) and with one.
        assert anonymous.get(f"/v1.0/evil{newline}/q").status_code == 400
        assert writer.get(f"/v1.0/evil{newline}/q").status_code == 400
        # Other values the debug log names: the path, a parameter's name and value.
        assert writer.get(f"/v1.0/a/q{newline}").status_code == 400
        assert writer.get(f"/v1.0/a/q?x{newline}=1").status_code == 400
        assert writer.get(f"/v1.0/a/q?limit={newline}").status_code == 400
        assert anonymous.get(f"/nothing{newline}").status_code == 404
        # A 401 on an account that is allowed, and a 403, are logged with it.
        assert anonymous.get("/v1.0/a/q").status_code == 401
        assert writer.get("/v1.0/b/q").status_code == 403
    deadline = time.monotonic() + PATIENCE
    while "403 GET on account b" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = log_lines_after(server, mark)
    assert any("403 GET on account b" in line for line in lines), lines
    assert [line for line in lines if not TIMESTAMP.match(line)] == []
    assert [line for line in lines if line.startswith(FORGED)] == []  # only ever escaped


def test_a_flood_of_bad_tokens_is_refused_by_address_and_logged_in_aggregate(
    tmp_path: Path,
) -> None:
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "writer", "a")
    config = tmp_path / "burrow.toml"
    config.write_text(
        "[limits]\nauth_failure_rate_per_address = 2\nauth_failure_burst_per_address = 10\n"
    )
    server = BurrowServer(
        tmp_path, "memory://", "--auth", f"keys:{keyfile}", "--config", str(config)
    ).start()
    try:
        good, bad = {"X-Auth-Token": token}, {"X-Auth-Token": "0123456789ab.not-a-secret"}
        with httpx.Client(base_url=server.url) as http:
            # Valid requests are never counted, however many.
            assert {http.get("/v1.0/a/q", headers=good).status_code for _ in range(50)} == {404}
            started = time.monotonic()
            statuses = Counter(http.get("/v1.0/a/q", headers=bad).status_code for _ in range(300))
            elapsed = time.monotonic() - started
            # The burst, and the rate refilled meanwhile, reach the key check; then 429s.
            assert 10 <= statuses[401] <= 10 + 2 * elapsed + 1, (statuses, elapsed)
            assert statuses[401] + statuses[429] == 300
            # The address is refused before its credentials are looked at: a good token too.
            refused = http.get("/v1.0/a/q", headers=good)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert "failed authentications" in refused.json()["error"]
            statuses[429] += 1

        def logged(status: int) -> int:
            """The refusals of `status` the audit log counts."""
            found = re.findall(rf"burrow\.audit: {status} (?:x(\d+)|.*\(x(\d+))", server.log())
            return sum(int(a or b) for a, b in found)

        deadline = time.monotonic() + PATIENCE
        while (logged(401), logged(429)) != (statuses[401], statuses[429]):
            assert time.monotonic() < deadline, (statuses, server.log()[-3000:])
            time.sleep(0.05)
        audit_lines = [line for line in server.log().splitlines() if "burrow.audit" in line]
        # A line per kind and second at most (the first of each kind is written at once).
        assert len(audit_lines) <= 2 * (elapsed + 2), audit_lines
        assert "401 GET on account a by key -: unknown or revoked token (x1 from 127.0.0.1)" in (
            server.log()
        )
    finally:
        server.kill()
