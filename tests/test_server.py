"""`burrow serve` as a process: defaults, config, graceful shutdown, and kill -9 durability."""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory


async def test_shutdown_answers_waiters_and_finishes(start_server: ServerFactory) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        waiter = asyncio.create_task(http.get("/v1.0/a/q", params={"wait": 60}))
        await asyncio.sleep(0.5)  # the long poll reaches the server and goes to sleep
        assert not waiter.done()
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        response = await waiter
        assert response.status_code == 404
        assert time.monotonic() - started < 2
    assert server.process.wait(10) in (0, -signal.SIGTERM)  # type: ignore[union-attr]
    assert "Burrow stopped" in server.log()


def test_acknowledged_writes_survive_kill_9(start_server: ServerFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/durable.db"
    server = start_server(url)

    async def produce() -> list[str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def put(i: int) -> str:
                response = await http.put(f"/v1.0/a/q/m{i:04}", content=f"body {i}".encode())
                assert response.status_code == 201
                return f"m{i:04}"

            acked = list(await asyncio.gather(*(put(i) for i in range(300))))
            claimed = await http.post("/v1.0/a/q", params={"limit": 5, "hide": 300})
            assert claimed.status_code == 204
            return acked

    acked = asyncio.run(produce())
    server.kill()
    restarted = start_server(url)
    with httpx.Client(base_url=restarted.url) as http:
        listed = http.get("/v1.0/a/q", params={"match_hidden": "true", "limit": 1000}).json()
        visible = http.get("/v1.0/a/q", params={"detail": "id", "limit": 1000}).json()
    assert sorted(m["id"] for m in listed) == sorted(acked)  # concurrent PUTs: any order
    assert all(m["body"] == f"body {int(m['id'][1:])}" for m in listed)
    assert len(visible) == 295  # the five claimed messages are still hidden


def test_default_backend_is_sqlite_under_data(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server(None)
    assert httpx.put(server.url + "/v1.0/a/q/m", content=b"x").status_code == 201
    assert (tmp_path / "data" / "burrow.db").exists()


def test_config_file_sets_limits(start_server: ServerFactory, tmp_path: Path) -> None:
    config = tmp_path / "burrow.toml"
    config.write_text("[limits]\nmax_body_bytes = 10\nmax_limit = 5\n")
    server = start_server("memory://", "--config", str(config))
    assert httpx.put(server.url + "/v1.0/a/q/m", content=b"x" * 11).status_code == 413
    assert httpx.put(server.url + "/v1.0/a/q/m", content=b"x" * 10).status_code == 201
    assert httpx.get(server.url + "/v1.0/a/q", params={"limit": 6}).status_code == 400


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "burrow", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serves_https_with_a_certificate(start_server: ServerFactory, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server = start_server("memory://", "--tls-cert", str(cert), "--tls-key", str(key))
    assert server.url.startswith("https://")
    trusted = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=server.url, verify=trusted) as https:
        assert https.put("/v1.0/a/q/m", content=b"secret").status_code == 201
        assert https.get("/v1.0/a/q/m", params={"detail": "body"}).content == b"secret"
    plain = server.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(plain + "/", timeout=5)
