"""Servers that forward to other servers (`http`, `ring`) log upstream calls at debug only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import BurrowServer
from tests.test_ring import ring_file

UPSTREAM_LINE = "HTTP Request: "


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[BurrowServer]:
    server = BurrowServer(tmp_path, "memory://").start()
    yield server
    server.kill()


def forwarded_calls(proxy: BurrowServer, upstream: BurrowServer, name: str) -> str:
    """Put and get a message through `proxy`; its log after both calls."""
    try:
        with httpx.Client(base_url=proxy.url) as client:
            assert client.put(f"/v1.0/acct/q/{name}", content=b"x").status_code == 201
            assert client.get("/v1.0/acct/q", params={"detail": "id"}).status_code == 200
        assert httpx.get(f"{upstream.url}/v1.0/acct/q/{name}").status_code == 200
        return proxy.log()
    finally:
        proxy.kill()


def test_proxies_do_not_log_each_upstream_call_at_info(
    upstream: BurrowServer, tmp_path: Path
) -> None:
    ring = ring_file(tmp_path / "ring.toml", [(upstream.url, "az1")], replicas=1)
    for name, backend in (("via-http", upstream.url), ("via-ring", f"ring:///{ring}")):
        log = forwarded_calls(BurrowServer(tmp_path, backend).start(), upstream, name)
        assert UPSTREAM_LINE not in log, log


def test_debug_logging_shows_upstream_calls(upstream: BurrowServer, tmp_path: Path) -> None:
    proxy = BurrowServer(tmp_path, upstream.url, "--log-level", "debug").start()
    lines = forwarded_calls(proxy, upstream, "m").splitlines()
    calls = [line for line in lines if UPSTREAM_LINE in line]
    assert len(calls) >= 2, lines
