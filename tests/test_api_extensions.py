"""The v1.0 API's extensions for proxies (docs/api.md): receives and their receipts, meta,
`detail=full`, counts and queue info, on a live server; and a v1.0 client that asks for
none of them sees what v1.0 answered."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.waiting import CLOCK_SLACK

V1_FIELDS = {"id", "ttl", "hide", "body"}


def test_a_v1_client_sees_none_of_it(server_url: str, account: str) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    assert httpx.put(f"{queue}/m", params={"meta": "AAEC"}, content=b"x").status_code == 201
    received = httpx.post(queue, params={"hide": 0, "receipt": "r", "detail": "all"}).json()
    assert [set(m) for m in received] == [V1_FIELDS]
    assert set(httpx.get(f"{queue}/m").json()) == V1_FIELDS
    assert [set(m) for m in httpx.get(queue).json()] == [V1_FIELDS]
    assert httpx.get(queue, params={"detail": "attributes"}).json()[0].keys() == {
        "id",
        "ttl",
        "hide",
    }
    assert httpx.put(f"{queue}-empty/-/info", content=b"i").status_code == 204
    assert httpx.get(f"{server_url}/v1.0/{account}").json() == ["q"]  # no queue of infos


def test_a_receive_and_the_calls_on_it(server_url: str, account: str) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    before = time.time()
    httpx.put(queue, json=[{"id": "m1", "body": "a"}, {"id": "m2", "body": "b"}])
    full: dict[str, str | int] = {"limit": 1, "hide": 30, "receipt": "r1", "detail": "full"}
    (taken,) = httpx.post(queue, params=full).json()
    assert (taken["id"], taken["receives"], taken["receipt"], taken["meta"]) == ("m1", 1, "r1", "")
    assert before - CLOCK_SLACK <= taken["sent"] <= taken["first_received"]
    assert taken["first_received"] <= time.time() + CLOCK_SLACK
    untouched = httpx.get(f"{queue}/m2", params={"detail": "full"}).json()
    assert (untouched["receives"], untouched["receipt"], untouched["first_received"]) == (0, "", 0)
    for stale in ("r2", ""):  # the empty receipt names no receive
        assert httpx.delete(f"{queue}/m1", params={"receipt": stale}).status_code == 404
        assert httpx.delete(f"{queue}/m2", params={"receipt": stale}).status_code == 404
    released = httpx.post(f"{queue}/m1", params={"hide": 0, "receipt": "r1", "detail": "full"})
    assert (released.json()["hide"], released.json()["receives"]) == (0, 1)
    deleted = httpx.delete(f"{queue}/m1", params={"receipt": "r1", "detail": "id"})
    assert (deleted.status_code, deleted.content) == (200, b"m1")
    assert httpx.get(f"{queue}/m1").status_code == 404


@pytest.mark.parametrize("receipt", ["a/b", "a\x01", "r" * 256, ".."])
def test_a_bad_receipt_is_a_400_and_changes_nothing(
    server_url: str, account: str, receipt: str
) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    httpx.put(f"{queue}/m", content=b"x")
    for response in (
        httpx.post(queue, params={"hide": 30, "receipt": receipt}),
        httpx.post(f"{queue}/m", params={"hide": 30, "receipt": receipt}),
        httpx.delete(f"{queue}/m", params={"receipt": receipt}),
    ):
        assert response.status_code == 400, response.text
        assert "receipt" in response.json()["error"]
    message = httpx.get(f"{queue}/m", params={"detail": "full"}).json()
    assert (message["hide"], message["receives"]) == (0, 0)


def test_meta_on_a_put_and_in_a_batch_and_a_replace_drops_it(server_url: str, account: str) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    assert httpx.put(f"{queue}/one", params={"meta": "AP8="}, content=b"x").status_code == 201
    batch = [{"id": "two", "body": "y", "meta": "bWV0YQ=="}, {"id": "three", "body": "z"}]
    assert httpx.put(queue, json=batch).status_code == 201
    listed = httpx.get(queue, params={"detail": "full"}).json()
    assert [(m["id"], m["meta"]) for m in listed] == [
        ("one", "AP8="),
        ("two", "bWV0YQ=="),
        ("three", ""),
    ]
    assert httpx.put(f"{queue}/one", content=b"x").status_code == 204
    assert httpx.get(f"{queue}/one", params={"detail": "full"}).json()["meta"] == ""


@pytest.mark.parametrize("meta", ["A", "AAE", "AA=A", "é", 5, None])
def test_meta_that_is_not_base64_is_a_400(server_url: str, account: str, meta: object) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    if isinstance(meta, str):
        assert httpx.put(f"{queue}/m", params={"meta": meta}, content=b"x").status_code == 400
    refused = httpx.put(queue, json=[{"body": "x", "meta": meta}])
    assert refused.status_code == 400 and "meta" in refused.json()["error"]
    assert httpx.get(queue, params={"match_hidden": "true"}).status_code == 404


def test_counts_by_state(server_url: str, account: str) -> None:
    queue = f"{server_url}/v1.0/{account}/q"
    counts = f"{queue}/-/counts"
    none = {"visible": 0, "in_flight": 0, "delayed": 0, "bytes": 0, "oldest": 0, "newest": 0}
    assert httpx.get(counts).json() == none
    httpx.put(queue, json=[{"body": str(n)} for n in range(4)] + [{"body": "d", "hide": 60}])
    httpx.post(queue, params={"limit": 1, "hide": 60, "receipt": "r"})
    found = httpx.get(counts).json()
    puts = [
        m["sent"]
        for m in httpx.get(queue, params={"detail": "full", "match_hidden": "true"}).json()
    ]
    assert found == {
        "visible": 3,
        "in_flight": 1,
        "delayed": 1,
        "bytes": 5,
        "oldest": puts[0],
        "newest": puts[-1],
    }
    assert httpx.get(counts, params={"limit": 1}).status_code == 400  # takes no parameters


def _tag(info: bytes) -> str:
    return f'"{hashlib.sha256(info).hexdigest()}"'


def test_queue_info_is_compared_and_set(server_url: str, account: str) -> None:
    info = f"{server_url}/v1.0/{account}/q/-/info"
    assert httpx.get(info).status_code == 404
    created = httpx.put(info, content=b"v1")
    assert (created.status_code, created.headers["etag"]) == (204, _tag(b"v1"))
    assert httpx.put(info, content=b"again").status_code == 409  # it has one already
    read = httpx.get(info)
    assert (read.content, read.headers["etag"]) == (b"v1", _tag(b"v1"))
    assert read.headers["content-type"] == "application/octet-stream"
    refused = httpx.put(info, content=b"v2", headers={"If-Match": _tag(b"v0")})
    assert refused.status_code == 409 and "error" in refused.json()
    assert httpx.put(info, content=b"v2", headers={"If-Match": _tag(b"v1")}).status_code == 204
    assert httpx.put(info, content=b"\x00v3", headers={"If-Match": "*"}).status_code == 204
    assert httpx.get(info).content == b"\x00v3"
    assert httpx.delete(info).status_code == 204
    assert httpx.delete(info).status_code == 404
    assert httpx.put(info, content=b"v4", headers={"If-Match": "*"}).status_code == 409  # none


def test_queue_infos_are_listed_apart_from_queues(server_url: str, account: str) -> None:
    base = f"{server_url}/v1.0/{account}"
    listing = {"info": "true"}
    assert httpx.get(base, params=listing).status_code == 404
    for name in ("q2", "q1", "q3"):
        httpx.put(f"{base}/{name}/-/info", content=b"i")
    httpx.put(f"{base}/messages-only/m", content=b"x")
    assert httpx.get(base, params=listing).json() == ["q2", "q1", "q3"]
    assert httpx.get(base, params={**listing, "marker": "q2", "limit": 1}).json() == ["q1"]
    assert httpx.get(base, params={**listing, "detail": "all"}).json()[0] == {"id": "q2"}
    assert httpx.get(base, params={"info": "false"}).json() == ["messages-only"]
    httpx.delete(base)  # every message of the account: the infos stay
    assert httpx.get(base, params=listing).json() == ["q2", "q1", "q3"]
    assert httpx.get(base, params={"info": "yes"}).status_code == 400


def test_a_queue_info_is_at_most_a_body(start_server: ServerFactory, tmp_path: Path) -> None:
    (tmp_path / "burrow.toml").write_text("[limits]\nmax_body_bytes = 1024\n")
    server = start_server("memory://", "--config", str(tmp_path / "burrow.toml"))
    info = f"{server.url}/v1.0/a/q/-/info"
    assert httpx.put(info, content=b"x" * 1024).status_code == 204
    assert httpx.put(info, content=b"x" * 1025, headers={"If-Match": "*"}).status_code == 413
    assert httpx.get(info).content == b"x" * 1024


@pytest.mark.parametrize(
    "path",
    ["q/-/stats", "q/m/counts", "q/-/info/x", "q/-/-/info", "q//counts", "q/-/"],
)
def test_other_paths_of_four_segments_are_404(server_url: str, account: str, path: str) -> None:
    assert httpx.get(f"{server_url}/v1.0/{account}/{path}").status_code == 404


def test_a_queue_resource_names_its_methods(server_url: str) -> None:
    refused = httpx.post(f"{server_url}/v1.0/a/q/-/counts")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET")
    refused = httpx.post(f"{server_url}/v1.0/a/q/-/info")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, PUT, DELETE")
