"""A listing, claim or pop that gives no `limit` takes one page of `default_limit` (100).

A purge (a queue's DELETE at detail=none, v1.0's default) and `DELETE /v1.0`,
`DELETE /v1.0/{a}` still take everything they match, as in v1.0. Paging on with
`marker` (or claiming and popping again) reaches every item exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from burrow.config import Limits
from tests.local_servers import LOCAL_BACKENDS, server_on_each_local_backend, start_local
from tests.servers import BurrowServer

PAGE = Limits().default_limit
COUNT = 2 * PAGE + PAGE // 2  # two whole pages and half of one
Q = "/v1.0/a/q"


server = server_on_each_local_backend()


@pytest.fixture
def http(server: BurrowServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client
        client.delete("/v1.0")


def fill(http: httpx.Client, count: int = COUNT, **attributes: int) -> list[str]:
    ids = [f"m{i:04}" for i in range(count)]
    batch = [{"id": i, "body": i, **attributes} for i in ids]
    assert http.put(Q, json=batch).status_code == 201
    return ids


def pages(
    http: httpx.Client, method: str, path: str, *, by_marker: bool, **params: Any
) -> list[list[str]]:
    """The ids of each answer to `method` on `path` until a 404, following `marker` or not."""
    query: dict[str, Any] = {"detail": "id", **params}
    found: list[list[str]] = []
    while (response := http.request(method, path, params=query)).status_code == 200:
        found.append(response.json())
        assert len(found) <= COUNT, "paging does not end"
        if by_marker:
            query["marker"] = found[-1][-1]
    assert response.status_code == 404, response.text
    return found


def sizes(found: list[list[str]]) -> list[int]:
    return [len(page) for page in found]


def flat(found: list[list[str]]) -> list[str]:
    return [item for page in found for item in page]


def test_a_listing_takes_one_page_and_marker_reaches_every_message(http: httpx.Client) -> None:
    ids = fill(http)
    found = pages(http, "GET", Q, by_marker=True)
    assert sizes(found) == [PAGE, PAGE, PAGE // 2]
    assert flat(found) == ids
    assert len(http.get(Q, params={"marker": ids[PAGE // 2]}).json()) == PAGE


def test_a_claim_takes_one_page(http: httpx.Client) -> None:
    ids = fill(http)
    assert http.post(Q, params={"hide": 60}).status_code == 204  # detail=none: still one page
    found = pages(http, "POST", Q, by_marker=False, hide=60)
    assert sizes(found) == [PAGE, PAGE // 2]
    assert flat(found) == ids[PAGE:]
    assert sizes(pages(http, "GET", Q, by_marker=True, match_hidden="true")) == [
        PAGE,
        PAGE,
        PAGE // 2,
    ]


def test_a_pop_takes_one_page(http: httpx.Client) -> None:
    ids = fill(http)
    found = pages(http, "DELETE", Q, by_marker=False)
    assert sizes(found) == [PAGE, PAGE, PAGE // 2]
    assert flat(found) == ids
    assert http.get("/v1.0/a").status_code == 404


def test_a_purge_deletes_everything_it_matches(http: httpx.Client) -> None:
    fill(http)
    assert http.delete(Q).status_code == 204
    assert http.get(Q, params={"match_hidden": "true"}).status_code == 404
    fill(http, hide=60)
    assert http.delete(Q).status_code == 404  # all hidden
    assert http.delete(Q, params={"match_hidden": "true", "detail": "none"}).status_code == 204
    assert http.get("/v1.0").status_code == 404


def test_an_explicit_limit_may_exceed_the_default(http: httpx.Client) -> None:
    ids = fill(http)
    assert http.get(Q, params={"detail": "id", "limit": COUNT}).json() == ids
    claimed = http.post(Q, params={"detail": "id", "limit": COUNT, "hide": 60})
    assert claimed.json() == ids


NAMES = [f"n{i:04}" for i in range(PAGE + PAGE // 5)]
LEVELS = {  # a listing, and where to put a message to make each of its names exist
    "queues": ("/v1.0/a", "/v1.0/a/{}/m"),
    "accounts": ("/v1.0", "/v1.0/{}/q/m"),
}


@pytest.mark.parametrize("level", list(LEVELS))
def test_names_are_listed_a_page_at_a_time_and_deleted_all_at_once(
    http: httpx.Client, level: str
) -> None:
    listing, message = LEVELS[level]
    for name in NAMES:
        assert http.put(message.format(name), content=b"x").status_code == 201
    found = pages(http, "GET", listing, by_marker=True)
    assert sizes(found) == [PAGE, len(NAMES) - PAGE]
    assert flat(found) == NAMES
    assert http.delete(listing, params={"detail": "id"}).json() == NAMES
    assert http.get(listing).status_code == 404


@pytest.mark.parametrize("kind", LOCAL_BACKENDS)
def test_the_default_page_is_a_setting_per_server_and_per_account(
    kind: str, tmp_path: Path
) -> None:
    config = tmp_path / "burrow.toml"
    config.write_text("[limits]\ndefault_limit = 7\n[accounts.small]\ndefault_limit = 3\n")
    server = start_local(kind, tmp_path, "--config", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for account in ("a", "small"):
                batch = [{"body": str(i)} for i in range(10)]
                assert http.put(f"/v1.0/{account}/q", json=batch).status_code == 201
            assert len(http.get("/v1.0/a/q").json()) == 7
            assert len(http.delete("/v1.0/a/q", params={"detail": "id"}).json()) == 7
            assert len(http.get("/v1.0/small/q").json()) == 3
            assert len(http.post("/v1.0/small/q", params={"hide": 60, "detail": "id"}).json()) == 3
    finally:
        server.kill()
