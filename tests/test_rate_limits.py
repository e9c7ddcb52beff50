"""Rate limits: 429 with Retry-After, per account and per credential, and a flood
from one tenant does not stop another from being served promptly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.test_auth import add_key


def limited_server(
    start_server: ServerFactory, tmp_path: Path, limits: str, *extra: str
) -> BurrowServer:
    config = tmp_path / "burrow.toml"
    config.write_text(f"[limits]\n{limits}\n")
    return start_server("memory://", "--config", str(config), *extra)


def test_account_over_its_rate_gets_429(start_server: ServerFactory, tmp_path: Path) -> None:
    server = limited_server(start_server, tmp_path, "rate_per_account = 2\nburst_per_account = 5")
    with httpx.Client(base_url=server.url) as http:
        statuses = [http.get("/v1.0/a/q").status_code for _ in range(5)]
        assert statuses == [404] * 5  # the burst
        refused = http.get("/v1.0/a/q")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "per account" in refused.json()["error"]
        assert http.get("/v1.0/b/q").status_code == 404  # another tenant is not affected
        time.sleep(0.6)  # 2 tokens/s: one is back after 0.5 s
        assert http.get("/v1.0/a/q").status_code == 404
    assert "429 x1 on account a by key -: rate limited" in server.log()


def test_credential_over_its_rate_gets_429(start_server: ServerFactory, tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "writer", "a", "b")
    limits = "rate_per_credential = 1\nburst_per_credential = 3"
    url = limited_server(start_server, tmp_path, limits, "--auth", f"keys:{keyfile}").url
    headers = {"X-Auth-Token": token}
    with httpx.Client(base_url=url, headers=headers) as http:
        assert [http.get(f"/v1.0/{a}/q").status_code for a in "aba"] == [404] * 3
        refused = http.get("/v1.0/b/q")
        assert refused.status_code == 429
        assert "per credential" in refused.json()["error"]


async def test_a_flooding_tenant_does_not_starve_another(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    limits = "rate_per_account = 20\nburst_per_account = 20"
    url = limited_server(start_server, tmp_path, limits).url
    flood_statuses: dict[int, int] = {}
    stop = time.monotonic() + 3

    async def flood(http: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            status = (await http.put("/v1.0/flood/q/m", content=b"x")).status_code
            flood_statuses[status] = flood_statuses.get(status, 0) + 1

    limits_a = httpx.Limits(max_connections=32)
    async with (
        httpx.AsyncClient(base_url=url, limits=limits_a) as flooder,
        httpx.AsyncClient(base_url=url) as victim,
    ):
        flooders = [asyncio.create_task(flood(flooder)) for _ in range(32)]
        await asyncio.sleep(0.5)
        latencies = []
        while time.monotonic() < stop - 0.2:
            started = time.monotonic()
            response = await victim.put("/v1.0/victim/q/m", content=b"x")
            latencies.append(time.monotonic() - started)
            assert response.status_code in (201, 204)
            await asyncio.sleep(0.1)  # ~10 requests/s: within its own limit
        await asyncio.gather(*flooders)
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    assert flood_statuses.get(429, 0) > flood_statuses.get(204, 0)  # the flood was turned away
    assert p99 < 0.25, f"victim p99 {p99 * 1000:.0f} ms over {len(latencies)} requests"
    assert len(latencies) >= 10  # ... while the other tenant kept being served
