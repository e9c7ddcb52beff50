"""A Burrow server on the `http` backend: a proxy in front of another Burrow server."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

from burrow.backends.base import SubscriptionKey
from burrow.backends.http import HttpBackend
from tests.conftest import ServerFactory
from tests.test_auth import add_key
from tests.waiting import LONG_POLL, PATIENCE, in_background, result_within, wait_until


def test_a_long_poll_through_the_proxy_waits_remotely_and_wakes(
    start_server: ServerFactory,
) -> None:
    remote = start_server("memory://", "--access-log")
    proxy = start_server(f"http://{remote.url.removeprefix('http://')}")
    httpx.put(f"{remote.url}/v1.0/a/q/m1", content=b"old")

    def remote_gets() -> int:  # the remote logs each request as it answers it
        return remote.log().count("GET /v1.0/a/q?")

    # A follower: waits for a message after m1, which the remote does not have yet.
    params: dict[str, str | int] = {"marker": "m1", "wait": LONG_POLL}
    follower = in_background(
        lambda: httpx.get(f"{proxy.url}/v1.0/a/q", params=params, timeout=LONG_POLL + PATIENCE)
    )
    wait_until(lambda: remote_gets() >= 1, "the proxy's first look at the remote")
    time.sleep(1)  # a loop of looks, if the proxy polled, would show in the log meanwhile
    # One look, then one remote wait (answered, and so logged, only when woken).
    assert remote_gets() <= 3, "the proxy polls the remote instead of waiting there"
    httpx.put(f"{remote.url}/v1.0/a/q/m2", content=b"new")
    answer = result_within(follower, "the follower's answer")
    assert [m["id"] for m in answer.json()] == ["m2"]


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
    health = httpx.get(f"{proxy.url}/health")  # the proxy cannot serve, and says so
    assert (health.status_code, health.json()["status"]) == (503, "failing")
    assert httpx.get(f"{proxy.url}/health?live").status_code == 200  # but it is up


def test_read_modify_writes_of_a_queue_info_through_two_proxies_lose_nothing(
    start_server: ServerFactory,
) -> None:
    """Each proxy's compare-and-set is one atomic step on the remote server."""
    remote = start_server("memory://")
    proxies = [start_server(remote.url).url, start_server(remote.url).url]
    assert httpx.put(f"{remote.url}/v1.0/a/q/-/info", content=b"0").status_code == 204

    def add(worker: int, times: int) -> int:
        conflicts = 0
        with httpx.Client(base_url=proxies[worker % 2]) as proxy:
            for _ in range(times):
                while True:
                    read = proxy.get("/v1.0/a/q/-/info")
                    more = str(int(read.content) + 1).encode()
                    tag = {"If-Match": read.headers["etag"]}
                    written = proxy.put("/v1.0/a/q/-/info", content=more, headers=tag)
                    if written.status_code == 204:
                        break
                    assert written.status_code == 409, written.text
                    conflicts += 1
        return conflicts

    with ThreadPoolExecutor(4) as pool:
        conflicts = sum(pool.map(add, range(4), [25] * 4))
    assert httpx.get(f"{remote.url}/v1.0/a/q/-/info").content == b"100"
    assert conflicts > 0, "the writers never met: the test proves nothing"


def test_a_receive_through_the_proxy_is_stored_by_the_remote(start_server: ServerFactory) -> None:
    remote = start_server("memory://")
    proxy = start_server(remote.url)
    httpx.put(f"{proxy.url}/v1.0/a/q/m", params={"meta": "AAEC"}, content=b"x")
    taken = httpx.post(f"{proxy.url}/v1.0/a/q", params={"hide": 60, "receipt": "r"})
    assert taken.status_code == 204
    stored = httpx.get(f"{remote.url}/v1.0/a/q/m", params={"detail": "full"}).json()
    assert (stored["receives"], stored["receipt"], stored["meta"]) == (1, "r", "AAEC")
    assert stored["first_received"] >= stored["sent"] > 0
    counts = httpx.get(f"{proxy.url}/v1.0/a/q/-/counts").json()
    put = stored["sent"]
    assert counts == {
        "visible": 0,
        "in_flight": 1,
        "delayed": 0,
        "bytes": 1,
        "oldest": put,
        "newest": put,
    }
    assert httpx.delete(f"{proxy.url}/v1.0/a/q/m", params={"receipt": "x"}).status_code == 404
    assert httpx.delete(f"{proxy.url}/v1.0/a/q/m", params={"receipt": "r"}).status_code == 204
    assert httpx.get(f"{remote.url}/v1.0/a/q/m").status_code == 404


def test_subscriptions_through_the_proxy_are_stored_on_the_remote_with_an_admins_token(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    """The stored document holds the webhook's secret: only an admin reads or writes it,
    so a proxy with a writer's token serves messages and answers 503 for subscriptions."""
    keyfile = tmp_path / "keys.json"
    admin = add_key(keyfile, "admin")
    writer = add_key(keyfile, "writer", "a")
    remote = start_server("memory://", "--auth", f"keys:{keyfile}")
    host = remote.url.removeprefix("http://")
    proxy = start_server(f"http://{admin}@{host}")
    hook = {"url": "http://127.0.0.1:9/hook"}
    made = httpx.put(f"{proxy.url}/v1.0/a/q/-/subscriptions/s", json={"webhook": hook})
    assert made.status_code == 201, made.text
    own = {"X-Auth-Token": admin}
    document = f"{remote.url}/v1.0/a/q/-/subscriptions/s?document=true"
    stored = httpx.get(document, headers=own)
    assert stored.status_code == 200, stored.text
    assert orjson.loads(stored.content)["webhook"]["secret"] == made.json()["webhook"]["secret"]
    assert httpx.get(document, headers={"X-Auth-Token": writer}).status_code == 403
    tag = {**own, "If-Match": stored.headers["etag"]}
    assert httpx.put(document, content=b"[]", headers=tag).status_code == 400
    assert httpx.put(document, content=stored.content, headers=own).status_code == 409
    listed = httpx.get(f"{remote.url}/v1.0", params={"subscriptions": "true"}, headers=own)
    assert listed.json() == ["a/q/s"]
    as_writer = start_server(f"http://{writer}@{host}")
    assert httpx.get(f"{as_writer.url}/v1.0/a/q/-/subscriptions/s").status_code == 503
    assert httpx.put(f"{as_writer.url}/v1.0/a/q/m", content=b"x").status_code == 201
    assert httpx.delete(f"{proxy.url}/v1.0/a/q/-/subscriptions/s").status_code == 204
    assert httpx.get(document, headers=own).status_code == 404


def test_every_subscription_pages_through_the_proxy_in_order(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    """The proxy's listing of every subscription (what its webhook delivery scans) pages
    through the remote's, whose pages are shorter (its default_limit)."""
    (tmp_path / "remote.toml").write_text("[limits]\ndefault_limit = 2\n")
    remote = start_server("memory://", "--config", str(tmp_path / "remote.toml"))
    keys = sorted(("a", q, n) for q in ("p", "q") for n in ("x", "y", "z"))
    for account, queue, name in keys:
        httpx.put(f"{remote.url}/v1.0/{account}/{queue}/-/subscriptions/{name}", content=b"")
    first = httpx.get(f"{remote.url}/v1.0", params={"subscriptions": "true"})
    assert first.json() == ["a/p/x", "a/p/y"]
    after = httpx.get(f"{remote.url}/v1.0", params={"subscriptions": "true", "marker": "a/p/z"})
    assert after.json() == ["a/q/x", "a/q/y"]
    bad = httpx.get(f"{remote.url}/v1.0", params={"subscriptions": "true", "marker": "a/p"})
    assert bad.status_code == 400 and "ACCOUNT/QUEUE/NAME" in bad.json()["error"]
    proxy = HttpBackend(remote.url)

    async def listed() -> tuple[list[SubscriptionKey], list[SubscriptionKey]]:
        async with proxy:
            return await proxy.list_all_subscriptions(None, 5), await proxy.list_all_subscriptions(
                keys[4], 5
            )

    assert asyncio.run(listed()) == (keys[:5], keys[5:])
