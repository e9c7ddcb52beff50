"""`POST /v1.0/{a}/{q}/-/delete` (docs/api.md): several messages acknowledged in one
request, on a live server: what it deletes, what it answers, and what bad bodies get."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory


def claim(queue: str, limit: int, receipt: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"limit": limit, "hide": 60, "detail": "all"}
    if receipt is not None:
        params["receipt"] = receipt
    answer = httpx.post(queue, params=params)
    assert answer.status_code == 200, answer.text
    taken: list[dict[str, Any]] = answer.json()
    return taken


def left(queue: str) -> list[str]:
    answer = httpx.get(queue, params={"match_hidden": "true", "detail": "id"})
    return answer.json() if answer.status_code == 200 else []


def fill(queue: str, *ids: str) -> None:
    answer = httpx.put(queue, json=[{"id": i, "body": f"body of {i}"} for i in ids])
    assert answer.status_code == 201, answer.text


@pytest.fixture(params=["memory", "sqlite"])
def queue(request: pytest.FixtureRequest, start_server: ServerFactory, account: str) -> str:
    backend = "memory://" if request.param == "memory" else "sqlite:///q.db"
    return f"{start_server(backend).url}/v1.0/{account}/q"


def test_claimed_messages_are_acknowledged_in_one_request(queue: str) -> None:
    fill(queue, "m1", "m2", "m3", "m4")
    taken = [m["id"] for m in claim(queue, 3)]
    answer = httpx.post(f"{queue}/-/delete", json=taken)
    assert (answer.status_code, answer.json()) == (200, ["m1", "m2", "m3"])
    assert left(queue) == ["m4"]


def test_it_answers_what_it_deleted_in_the_detail_asked(queue: str) -> None:
    fill(queue, "m1", "m2", "m3")
    answer = httpx.post(f"{queue}/-/delete", params={"detail": "all"}, json=["m2", "nope"])
    (deleted,) = answer.json()
    assert (deleted["id"], deleted["body"]) == ("m2", "body of m2")
    none = httpx.post(f"{queue}/-/delete", params={"detail": "none"}, json=["m1"])
    assert (none.status_code, none.content) == (204, b"")
    # Nothing there: an empty list (an acknowledgement sent twice is no error).
    assert httpx.post(f"{queue}/-/delete", json=["m1", "m2"]).json() == []
    assert left(queue) == ["m3"]


def test_with_receipts_only_the_latest_receive_is_deleted(queue: str) -> None:
    fill(queue, "m1", "m2", "m3")
    claim(queue, 2, receipt="r1")
    body = [{"id": "m1", "receipt": "r1"}, {"id": "m2", "receipt": "old"}, "m3"]
    assert httpx.post(f"{queue}/-/delete", json=body).json() == ["m1", "m3"]
    assert httpx.post(f"{queue}/-/delete", json=[{"id": "m2", "receipt": ""}]).json() == []
    # An id named again is passed by: its first entry stands.
    again = [{"id": "m2", "receipt": "old"}, "m2"]
    assert httpx.post(f"{queue}/-/delete", json=again).json() == []
    assert left(queue) == ["m2"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not valid JSON"),
        (b'{"ids": ["m1"]}', "list of ids"),
        (b"[]", "at least one"),
        (b"[1]", "must be an id"),
        (b'[{"id": "m1", "extra": 1}]', "must be an id"),
        (b'[{"receipt": "r"}]', "strings"),
        (b'[{"id": "m1", "receipt": 5}]', "strings"),
        (b'["a/b"]', "not allowed"),
        (b'["' + b"x" * 256 + b'"]', "longer than"),
    ],
)
def test_a_bad_body_is_a_400_and_deletes_nothing(queue: str, body: bytes, why: str) -> None:
    fill(queue, "m1")
    answer = httpx.post(f"{queue}/-/delete", content=body)
    assert answer.status_code == 400, answer.text
    assert why in answer.json()["error"]
    assert left(queue) == ["m1"]


def test_too_many_ids_or_other_methods_and_parameters_are_refused(queue: str) -> None:
    fill(queue, "m1")
    many = httpx.post(f"{queue}/-/delete", json=[f"m{i}" for i in range(1001)])
    assert many.status_code == 413
    assert httpx.post(f"{queue}/-/delete", params={"limit": 1}, json=["m1"]).status_code == 400
    assert httpx.post(f"{queue}/-/delete", params={"detail": "x"}, json=["m1"]).status_code == 400
    assert httpx.delete(f"{queue}/-/delete").status_code == 405
    assert left(queue) == ["m1"]
