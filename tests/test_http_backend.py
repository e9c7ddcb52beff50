"""A Burrow server on the `http` backend: a proxy in front of another Burrow server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.test_auth import add_key


def test_a_long_poll_through_the_proxy_waits_remotely_and_wakes(
    start_server: ServerFactory,
) -> None:
    remote = start_server("memory://", "--access-log")
    proxy = start_server(f"http://{remote.url.removeprefix('http://')}")
    httpx.put(f"{remote.url}/v1.0/a/q/m1", content=b"old")
    answer: list[httpx.Response] = []
    # A follower: waits for a message after m1, which the remote does not have yet.
    waiter = threading.Thread(
        target=lambda: answer.append(
            httpx.get(f"{proxy.url}/v1.0/a/q", params={"marker": "m1", "wait": 10}, timeout=20)
        )
    )
    waiter.start()
    time.sleep(1.5)
    requests_while_waiting = remote.log().count("GET /v1.0/a/q?")
    put_at = time.monotonic()
    httpx.put(f"{remote.url}/v1.0/a/q/m2", content=b"new")
    waiter.join(15)
    woke_after = time.monotonic() - put_at
    assert [m["id"] for m in answer[0].json()] == ["m2"]
    assert woke_after < 0.2
    # One attempt and one remote wait, not a loop of them.
    assert 1 <= requests_while_waiting <= 3


def test_the_proxy_passes_its_quotas_to_the_remote(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    remote = start_server("memory://")
    (tmp_path / "proxy.toml").write_text("[limits]\nmax_queue_messages = 2\n")
    proxy = start_server(remote.url, "--config", str(tmp_path / "proxy.toml"))
    assert (
        httpx.put(f"{proxy.url}/v1.0/a/q", json=[{"body": "1"}, {"body": "2"}]).status_code == 201
    )
    refused = httpx.put(f"{proxy.url}/v1.0/a/q/m3", content=b"3")
    assert (refused.status_code, refused.json()["quota"]) == (409, "max_queue_messages")
    assert httpx.put(f"{remote.url}/v1.0/a/q/m3", content=b"3").status_code == 201


def test_the_proxy_carries_its_own_token_and_a_refusal_is_a_503(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys.json"
    token = add_key(keyfile, "admin")
    remote = start_server("memory://", "--auth", f"keys:{keyfile}")
    host = remote.url.removeprefix("http://")
    with_token = start_server(f"http://{token}@{host}")
    without = start_server(f"http://{host}")
    assert httpx.put(f"{with_token.url}/v1.0/a/q/m", content=b"x").status_code == 201
    assert httpx.get(f"{with_token.url}/v1.0/a/q/m").json()["body"] == "x"
    refused = httpx.get(f"{without.url}/v1.0/a/q/m")
    assert refused.status_code == 503
    assert "refused this server" in refused.json()["error"]


def test_an_unreachable_remote_is_a_503(start_server: ServerFactory) -> None:
    remote = start_server("memory://")
    proxy = start_server(remote.url)
    remote.kill()
    response = httpx.get(f"{proxy.url}/v1.0/a/q", params={"wait": 2})
    assert response.status_code == 503
    assert httpx.get(f"{proxy.url}/health").status_code == 200
