"""Rate limits: 429 with Retry-After, per account and per credential, and a flood
from one tenant does not stop another from being served promptly."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.servers import BurrowServer
from tests.test_auth import add_key
from tests.waiting import eventually

# The p99 of a tenant's requests while another's flood is turned away: generous, for a busy
# machine, and still far from what starving it would take (the flood lasts until it is served).
VICTIM_P99 = 1.0


def limited_server(
    start_server: ServerFactory, tmp_path: Path, limits: str, *extra: str
) -> BurrowServer:
    config = tmp_path / "burrow.toml"
    config.write_text(f"[limits]\n{limits}\n")
    return start_server("memory://", "--config", str(config), *extra)


def served_until_refused(
    send: Callable[[int], httpx.Response], rate: float, burst: int
) -> httpx.Response:
    """Send until a 429 and return it, checking how many were served before.

    All of the burst, and no more than the rate refilled meanwhile: on a busy machine
    the requests take longer and the bucket gets back more of its tokens.
    """
    started = time.monotonic()
    for served in range(burst + 100):
        response = send(served)
        if response.status_code == 429:
            refilled = math.ceil(rate * (time.monotonic() - started))
            assert burst <= served <= burst + refilled, (served, burst, refilled)
            return response
        assert response.status_code == 404
    raise AssertionError("never refused")


def test_account_over_its_rate_gets_429(start_server: ServerFactory, tmp_path: Path) -> None:
    server = limited_server(start_server, tmp_path, "rate_per_account = 2\nburst_per_account = 5")
    with httpx.Client(base_url=server.url) as http:
        refused = served_until_refused(lambda _: http.get("/v1.0/a/q"), rate=2, burst=5)
        assert refused.headers["retry-after"] == "1"  # 2 tokens/s: one is back within 0.5 s
        assert "per account" in refused.json()["error"]
        assert http.get("/v1.0/b/q").status_code == 404  # another tenant is not affected
        time.sleep(int(refused.headers["retry-after"]))
        assert http.get("/v1.0/a/q").status_code == 404  # served again after Retry-After
    assert "429 x1 on account a by key -: rate limited" in server.log()


def test_credential_over_its_rate_gets_429(start_server: ServerFactory, tmp_path: Path) -> None:
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "writer", "a", "b")
    limits = "rate_per_credential = 1\nburst_per_credential = 3"
    url = limited_server(start_server, tmp_path, limits, "--auth", f"keys:{keyfile}").url
    headers = {"X-Auth-Token": token}
    with httpx.Client(base_url=url, headers=headers) as http:
        refused = served_until_refused(lambda n: http.get(f"/v1.0/{'ab'[n % 2]}/q"), 1, 3)
        assert "per credential" in refused.json()["error"]


async def test_a_flooding_tenant_does_not_starve_another(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    limits = "rate_per_account = 20\nburst_per_account = 20"
    url = limited_server(start_server, tmp_path, limits).url
    flood_statuses: Counter[int] = Counter()
    victim_done = asyncio.Event()

    async def flood(http: httpx.AsyncClient) -> None:
        while not victim_done.is_set():
            flood_statuses[(await http.put("/v1.0/flood/q/m", content=b"x")).status_code] += 1

    async def flood_refused() -> bool:
        return flood_statuses[429] > 0

    limits_a = httpx.Limits(max_connections=32)
    latencies: list[float] = []
    async with (
        httpx.AsyncClient(base_url=url, limits=limits_a) as flooder,
        httpx.AsyncClient(base_url=url) as victim,
    ):
        flooders = [asyncio.create_task(flood(flooder)) for _ in range(32)]
        try:
            await eventually(flood_refused, "the flood to be turned away")
            for _ in range(10):
                started = time.monotonic()
                response = await victim.put("/v1.0/victim/q/m", content=b"x")
                latencies.append(time.monotonic() - started)
                assert response.status_code in (201, 204)
                await asyncio.sleep(0.1)  # ~10 requests/s: within its own limit
        finally:
            victim_done.set()
            await asyncio.gather(*flooders)
    assert flood_statuses[429] > flood_statuses[204]  # the flood was turned away meanwhile
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    assert p99 < VICTIM_P99, f"victim p99 {p99 * 1000:.0f} ms over {len(latencies)} requests"
