"""Queue stats (`detail=stats`, docs/api.md) on a live server: what a queue holds and
what was done to it, per queue, per account's queue and per account; who may see them;
`burrow stats`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ServerFactory
from tests.test_auth import add_key

STATS = {"detail": "stats"}
EMPTY = {
    "messages": 0,
    "visible": 0,
    "hidden": 0,
    "delayed": 0,
    "bytes": 0,
    "oldest_age": None,
    "newest_age": None,
    "put_total": 0,
    "claimed_total": 0,
    "deleted_total": 0,
}


def stats(url: str, **params: str | int) -> dict[str, object]:
    response = httpx.get(url, params={**STATS, **params})
    assert response.status_code == 200, response.text
    document: dict[str, object] = response.json()
    return document


def test_a_queue_s_stats_follow_puts_claims_and_deletes(server_url: str, account: str) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    assert stats(queue) == EMPTY
    started = time.time()
    httpx.put(queue, json=[{"body": "12345"}, {"body": "678"}, {"body": "90"}])
    httpx.put(f"{queue}/later", content=b"abcd", params={"hide": 600})
    assert httpx.post(queue, params={"limit": 1, "hide": 60}).status_code == 204  # claim
    assert httpx.delete(queue, params={"limit": 1, "detail": "id"}).status_code == 200  # pop
    found = stats(queue)
    ages = found.pop("oldest_age"), found.pop("newest_age")
    assert found == {
        "messages": 3,
        "visible": 1,
        "hidden": 2,
        "delayed": 2,  # the claimed one and the put hidden: neither was received
        "bytes": 11,  # 12345 (claimed), 90 and abcd: 678 was popped
        "put_total": 4,
        "claimed_total": 1,
        "deleted_total": 1,
    }
    oldest, newest = (float(str(age)) for age in ages)
    assert 0 <= newest <= oldest <= time.time() - started + 1
    purge = httpx.delete(queue, params={"match_hidden": "true"})  # every message, hidden too
    assert purge.status_code == 204
    assert stats(queue) == {**EMPTY, "put_total": 4, "claimed_total": 1, "deleted_total": 4}


def test_an_account_s_queues_and_every_account(server_url: str, account: str) -> None:
    base = f"{server_url}/v1.0/{account}"
    assert stats(base) == {}
    for queue, count in (("b", 2), ("a", 1), ("c", 3)):
        httpx.put(f"{base}/{queue}", json=[{"body": "x"}] * count)
    found = stats(base)
    assert list(found) == ["b", "a", "c"]  # the listing's order
    assert [one["messages"] for one in found.values()] == [2, 1, 3]  # type: ignore[index]
    assert list(stats(base, limit=1, marker="b")) == ["a"]
    summed = stats(f"{server_url}/v1.0")[account]
    assert summed == {
        "queues": 3,
        "messages": 6,
        "visible": 6,
        "hidden": 0,
        "delayed": 0,
        "bytes": 6,
        "oldest_age": summed["oldest_age"],  # type: ignore[index]
        "newest_age": summed["newest_age"],  # type: ignore[index]
        "put_total": 6,
        "claimed_total": 0,
        "deleted_total": 0,
    }


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/q", {"limit": "x"}),
        ("/q", {"wait": "-1"}),
        ("/q", {"unknown": "1"}),
        ("", {"info": "true"}),
        ("", {"limit": "0"}),
    ],
)
def test_bad_stats_parameters_are_400(
    server_url: str, account: str, path: str, params: dict[str, str]
) -> None:
    response = httpx.get(f"{server_url}/v1.0/{account}{path}", params={**STATS, **params})
    assert response.status_code == 400 and response.json()["error"]


def test_stats_are_read_within_a_key_s_rights(tmp_path: Path, start_server: ServerFactory) -> None:
    keyfile = tmp_path / "keys.json"
    reader, admin = add_key(keyfile, "reader", "a"), add_key(keyfile, "admin")
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    httpx.put(f"{server.url}/v1.0/a/q/m", content=b"x", headers={"X-Auth-Token": admin})

    def status(token: str, path: str) -> int:
        headers = {"X-Auth-Token": token}
        return httpx.get(f"{server.url}{path}", params=STATS, headers=headers).status_code

    assert [status(reader, p) for p in ("/v1.0/a/q", "/v1.0/a")] == [200, 200]
    assert [status(reader, p) for p in ("/v1.0/b/q", "/v1.0/b", "/v1.0")] == [403, 403, 403]
    assert status(admin, "/v1.0") == 200


def test_burrow_stats_prints_them(server_url: str, account: str) -> None:
    httpx.put(f"{server_url}/v1.0/{account}/q", json=[{"body": "x"}, {"body": "yz"}])

    def burrow_stats(*args: str) -> str:
        command = [sys.executable, "-m", "burrow", "stats", "--server", server_url, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    (line,) = burrow_stats(account, "q").splitlines()
    assert line.startswith("messages=2\tvisible=2\thidden=0\tdelayed=0\tbytes=3\toldest_age=")
    (line,) = burrow_stats(account).splitlines()
    assert line.startswith("q\tmessages=2\t")
    assert orjson.loads(burrow_stats(account, "q", "--json"))["put_total"] == 2
