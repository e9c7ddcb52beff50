"""The v1.0 REST API over HTTP against real server processes, one per kind of storage.

Every test runs against a server on the memory backend, on the shared engines (Redis
Cluster, PostgreSQL), and on two worker processes sharing one SQLite file, where each
request may land on either worker (the SQLite default in one process has tests of its
own in test_server.py and test_sqlite.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from burrow.config import Limits
from tests.conftest import ServerFactory
from tests.engines.postgres import TEMPLATE, PostgresCluster
from tests.engines.redis import Deployment
from tests.servers import BurrowServer

ENGINES = ["memory", "redis-cluster", "postgres", "sqlite-workers"]
ServeArgs = tuple[str, ...]  # `burrow serve`'s backend and options


def redis_cluster(request: pytest.FixtureRequest) -> ServeArgs:
    deployment: Deployment = request.getfixturevalue("redis_cluster")
    return (deployment.cluster_url,)


def postgres(request: pytest.FixtureRequest) -> ServeArgs:
    cluster: PostgresCluster = request.getfixturevalue("postgres_server")
    cluster.execute(f"CREATE DATABASE burrow_api TEMPLATE {TEMPLATE}")
    return (cluster.url("burrow_api"),)


def sqlite_workers(request: pytest.FixtureRequest) -> ServeArgs:
    return ("sqlite:///api.db", "--workers", "2")


ENGINE_ARGS = {
    "redis-cluster": redis_cluster,
    "postgres": postgres,
    "sqlite-workers": sqlite_workers,
}


@pytest.fixture(scope="module", params=ENGINES)
def engine_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server on one engine for this module's tests (accounts keep them apart)."""
    if request.param == "memory":
        yield request.getfixturevalue("server_url")
        return
    server = BurrowServer(tmp_path_factory.mktemp("api"), *ENGINE_ARGS[request.param](request))
    yield server.start().url
    server.stop()


@pytest.fixture
def http(engine_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine_server) as client:
        yield client


@pytest.fixture
def own_http(start_server: ServerFactory) -> Iterator[httpx.Client]:
    """A client for a server of its own, for tests that list or delete all accounts."""
    with httpx.Client(base_url=start_server().url) as client:
        yield client


def put(http: httpx.Client, path: str, body: bytes = b"body", **params: int) -> int:
    return http.put(path, content=body, params=params).status_code


def test_root_lists_versions_and_health_answers(http: httpx.Client) -> None:
    assert http.get("/").json() == ["v1.0"]
    assert http.get("/health").json() == {"status": "ok"}


def test_put_creates_then_replaces(http: httpx.Client, account: str) -> None:
    assert put(http, f"/v1.0/{account}/q/m", b"one") == 201
    assert put(http, f"/v1.0/{account}/q/m", b"two") == 204
    response = http.get(f"/v1.0/{account}/q/m")
    assert response.status_code == 200
    assert response.json() == {"id": "m", "ttl": 600, "hide": 0, "body": "two"}


def test_one_message_at_every_detail(http: httpx.Client, account: str) -> None:
    path = f"/v1.0/{account}/q/m"
    put(http, path, b"hello", ttl=100, hide=50)
    assert http.get(path, params={"detail": "attributes"}).json() == {
        "id": "m",
        "ttl": 100,
        "hide": 50,
    }
    body = http.get(path, params={"detail": "body"})
    assert (body.content, body.headers["content-type"]) == (b"hello", "application/octet-stream")
    assert http.get(path, params={"detail": "id"}).content == b"m"
    assert http.get(path, params={"detail": "none"}).status_code == 204
    assert http.get(path, params={"detail": "all"}).json()["body"] == "hello"


def test_binary_body_round_trips(http: httpx.Client, account: str) -> None:
    body = bytes(range(256))
    put(http, f"/v1.0/{account}/q/bin", body)
    assert http.get(f"/v1.0/{account}/q/bin", params={"detail": "body"}).content == body
    (listed,) = http.get(f"/v1.0/{account}/q").json()
    assert listed["base64"] is True
    assert base64.b64decode(listed["body"]) == body


@pytest.mark.parametrize("message_id", ["a b", "ü☃", "100%", "a?b#c&d=e", "x+y", ".hidden"])
def test_url_encoded_ids(http: httpx.Client, account: str, message_id: str) -> None:
    path = f"/v1.0/{account}/q/{quote(message_id, safe='')}"
    assert put(http, path, b"x") == 201
    assert http.get(path).json()["id"] == message_id
    assert http.get(f"/v1.0/{account}/q", params={"detail": "id"}).json() == [message_id]
    assert http.delete(path).status_code == 204


def test_queue_listing_filters_and_details(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    for name in ("m1", "m2", "m3"):
        put(http, f"{queue}/{name}", name.encode(), ttl=0)
    put(http, f"{queue}/h", b"hidden", hide=100)
    assert http.get(queue, params={"detail": "id"}).json() == ["m1", "m2", "m3"]
    assert http.get(queue, params={"detail": "id", "match_hidden": "true"}).json() == [
        "m1",
        "m2",
        "m3",
        "h",
    ]
    assert http.get(queue, params={"detail": "id", "limit": 2}).json() == ["m1", "m2"]
    assert http.get(queue, params={"detail": "id", "marker": "m1"}).json() == ["m2", "m3"]
    assert http.get(queue, params={"detail": "id", "marker": "nope"}).json() == ["m1", "m2", "m3"]
    assert http.get(queue, params={"detail": "body", "limit": 1}).json() == ["m1"]
    assert http.get(queue, params={"detail": "attributes", "limit": 1}).json() == [
        {"id": "m1", "ttl": 0, "hide": 0}
    ]
    assert http.get(queue, params={"limit": 1}).json() == [
        {"id": "m1", "ttl": 0, "hide": 0, "body": "m1"}
    ]
    assert http.get(queue, params={"detail": "none"}).status_code == 204
    assert http.get(queue, params={"marker": "m3"}).status_code == 404


def test_claim_hides_and_returns_what_it_took(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    for name in ("m1", "m2", "m3"):
        put(http, f"{queue}/{name}")
    claimed = http.post(queue, params={"limit": 2, "hide": 60, "detail": "all"}).json()
    assert [(m["id"], m["hide"]) for m in claimed] == [("m1", 60), ("m2", 60)]
    assert http.get(queue, params={"detail": "id"}).json() == ["m3"]
    # POST without attributes changes nothing; default detail is none.
    assert http.post(queue).status_code == 204
    assert http.post(queue, params={"detail": "id"}).json() == ["m3"]
    # Release one claim by message.
    released = http.post(f"{queue}/m1", params={"hide": 0, "detail": "attributes"})
    assert released.json() == {"id": "m1", "ttl": 600, "hide": 0}
    assert http.get(queue, params={"detail": "id"}).json() == ["m1", "m3"]


def test_post_one_message_changes_only_given_attribute(http: httpx.Client, account: str) -> None:
    path = f"/v1.0/{account}/q/m"
    put(http, path, ttl=100, hide=40)
    assert http.post(path, params={"ttl": 0}).status_code == 204
    assert http.get(path, params={"detail": "attributes"}).json() == {
        "id": "m",
        "ttl": 0,
        "hide": 40,
    }


def test_pop_deletes_and_returns(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    for name in ("m1", "m2", "m3"):
        put(http, f"{queue}/{name}", name.encode())
    popped = http.delete(queue, params={"limit": 2, "detail": "all"}).json()
    assert [m["body"] for m in popped] == ["m1", "m2"]
    assert http.delete(queue).status_code == 204
    assert http.get(queue).status_code == 404
    assert http.get(f"/v1.0/{account}").status_code == 404


def test_queue_delete_skips_hidden_unless_asked(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    put(http, f"{queue}/h", hide=100)
    assert http.delete(queue).status_code == 404
    deleted = http.delete(queue, params={"match_hidden": "true", "detail": "id"})
    assert deleted.json() == ["h"]


def test_delete_one_message(http: httpx.Client, account: str) -> None:
    path = f"/v1.0/{account}/q/m"
    put(http, path, b"x", hide=100)
    assert http.delete(path, params={"detail": "body"}).content == b"x"
    assert http.delete(path).status_code == 404
    assert http.get(path).status_code == 404


def test_replace_keeps_place_and_resets_attributes(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    put(http, f"{queue}/a", hide=100, ttl=5)
    put(http, f"{queue}/b")
    assert put(http, f"{queue}/a", b"new") == 204
    listed = http.get(queue).json()
    assert [(m["id"], m["ttl"], m["hide"], m["body"]) for m in listed] == [
        ("a", 600, 0, "new"),
        ("b", 600, 0, "body"),
    ]


def test_queues_of_an_account(http: httpx.Client, account: str) -> None:
    for queue in ("q2", "q1", "q3"):
        put(http, f"/v1.0/{account}/{queue}/m")
    path = f"/v1.0/{account}"
    assert http.get(path).json() == ["q2", "q1", "q3"]
    assert http.get(path, params={"detail": "all", "limit": 1}).json() == [{"id": "q2"}]
    assert http.get(path, params={"marker": "q1"}).json() == ["q3"]
    assert http.get(path, params={"detail": "none"}).status_code == 204
    assert http.delete(path, params={"limit": 1, "detail": "id"}).json() == ["q2"]
    assert http.delete(path).status_code == 204
    assert http.get(path).status_code == 404


def test_accounts_listing_and_delete_all(own_http: httpx.Client) -> None:
    http = own_http
    assert http.get("/v1.0").status_code == 404
    for account in ("b", "a", "c"):
        put(http, f"/v1.0/{account}/q/m", hide=100)
    assert http.get("/v1.0").json() == ["b", "a", "c"]
    assert http.get("/v1.0", params={"detail": "all", "marker": "b"}).json() == [
        {"id": "a"},
        {"id": "c"},
    ]
    assert http.delete("/v1.0", params={"limit": 1, "detail": "id"}).json() == ["b"]
    assert http.delete("/v1.0").status_code == 204
    assert http.get("/v1.0").status_code == 404
    assert http.delete("/v1.0").status_code == 404


def test_batch_insert(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    batch = [
        {"id": "given", "body": "text", "ttl": 50},
        {"body": base64.b64encode(b"\xff\x00").decode(), "base64": True, "hide": 30},
        {"body": "third"},
    ]
    response = http.put(queue, json=batch)
    assert response.status_code == 201
    ids = response.json()
    assert ids[0] == "given" and len(ids) == 3 and ids[1] < ids[2]
    listed = http.get(queue, params={"match_hidden": "true"}).json()
    assert [m["id"] for m in listed] == ids
    assert (listed[0]["ttl"], listed[1]["hide"], listed[2]["ttl"]) == (50, 30, 600)
    raw = http.get(f"{queue}/{ids[1]}", params={"detail": "body"}).content
    assert raw == b"\xff\x00"


def test_batch_is_all_or_nothing(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    response = http.put(queue, json=[{"id": "ok", "body": "x"}, {"id": "bad", "body": 5}])
    assert response.status_code == 400
    assert http.get(queue).status_code == 404


def test_batch_with_detail_all_says_which_were_created(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    http.put(f"{queue}/old", content=b"x")
    response = http.put(
        queue, json=[{"id": "old", "body": "y"}, {"body": "z"}], params={"detail": "all"}
    )
    assert response.status_code == 201
    (replaced, created) = response.json()
    assert replaced == {"id": "old", "created": False}
    assert created["created"] is True and created["id"] > "0"
    assert http.put(queue, json=[{"body": "z"}], params={"detail": "body"}).status_code == 400


def test_a_caller_may_ask_for_a_stricter_quota(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    assert http.put(f"{queue}/a", content=b"x", params={"max_queue_messages": 2}).status_code == 201
    batch = [{"body": "1"}, {"body": "2"}]
    refused = http.put(queue, json=batch, params={"max_queue_messages": 2})
    assert (refused.status_code, refused.json()["quota"]) == (409, "max_queue_messages")
    refused = http.put(f"{queue}/b", content=b"xy", params={"max_account_bytes": 2})
    assert (refused.status_code, refused.json()["quota"]) == (409, "max_account_bytes")
    assert http.put(f"{queue}/c", content=b"x", params={"max_account_queues": 1}).status_code == 201
    assert (
        http.put(f"{queue}/d", content=b"x", params={"max_queue_messages": -1}).status_code == 400
    )
    assert [m["id"] for m in http.get(queue).json()] == ["a", "c"]


def test_batch_takes_default_attributes_from_query(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    http.put(queue, json=[{"body": "a"}, {"body": "b", "ttl": 9}], params={"ttl": 70})
    assert [m["ttl"] for m in http.get(queue).json()] == [70, 9]


def test_without_limit_one_page_and_marker_pages_on(http: httpx.Client, account: str) -> None:
    queue = f"/v1.0/{account}/q"
    page = Limits().default_limit
    response = http.put(queue, json=[{"id": f"m{i:04}", "body": "x"} for i in range(page + 5)])
    ids = response.json()
    first = http.get(queue, params={"detail": "id"}).json()
    assert first == ids[:page]
    assert http.get(queue, params={"detail": "id", "marker": first[-1]}).json() == ids[page:]
    claimed = http.post(queue, params={"hide": 60, "detail": "id"}).json()
    assert claimed == ids[:page]
    assert http.delete(queue, params={"detail": "id"}).json() == ids[page:]  # a pop: a page
    assert http.delete(queue, params={"match_hidden": "True"}).status_code == 204  # a purge: all
    assert http.get(queue, params={"match_hidden": "TRUE"}).status_code == 404
