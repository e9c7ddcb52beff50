"""Quotas and per-account limits, set in the config file, enforced by a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from burrow.client import Client
from burrow.errors import QuotaExceeded
from tests.conftest import ServerFactory
from tests.test_rate_limits import served_until_refused
from tests.test_server import run_cli

CONFIG = """
[limits]
max_queue_messages = 3
max_account_queues = 2
max_account_bytes = 100
max_body_bytes = 50

[accounts.big]
max_queue_messages = 10
max_account_bytes = 10000
max_body_bytes = 2000

[accounts.slow]
rate_per_account = 1
burst_per_account = 2
"""


@pytest.fixture
def http(start_server: ServerFactory, tmp_path: Path) -> Iterator[httpx.Client]:
    config = tmp_path / "burrow.toml"
    config.write_text(CONFIG)
    server = start_server("sqlite:///quotas.db", "--config", str(config))
    with httpx.Client(base_url=server.url) as client:
        yield client


def stored(http: httpx.Client, account: str, queue: str) -> list[str]:
    response = http.get(f"/v1.0/{account}/{queue}", params={"match_hidden": "true", "detail": "id"})
    return [] if response.status_code == 404 else response.json()


def test_a_full_queue_refuses_more_with_409_naming_the_quota(http: httpx.Client) -> None:
    for i in range(3):
        assert http.put(f"/v1.0/a/q/m{i}", content=b"x").status_code == 201
    refused = http.put("/v1.0/a/q/m3", content=b"x")
    assert refused.status_code == 409
    assert refused.json()["quota"] == "max_queue_messages"
    assert "max_queue_messages" in refused.json()["error"]
    assert stored(http, "a", "q") == ["m0", "m1", "m2"]
    assert http.put("/v1.0/a/q/m1", content=b"new").status_code == 204  # a replace fits
    assert http.delete("/v1.0/a/q/m0").status_code == 204
    assert http.put("/v1.0/a/q/m3", content=b"x").status_code == 201


def test_a_batch_over_a_quota_stores_none_of_it(http: httpx.Client) -> None:
    assert http.put("/v1.0/a/q/first", content=b"x").status_code == 201
    batch = [{"id": f"b{i}", "body": "x"} for i in range(3)]
    refused = http.put("/v1.0/a/q", json=batch)
    assert (refused.status_code, refused.json()["quota"]) == (409, "max_queue_messages")
    assert stored(http, "a", "q") == ["first"]


def test_queue_and_byte_quotas_cover_the_whole_account(http: httpx.Client) -> None:
    assert http.put("/v1.0/a/q1/m", content=b"x" * 40).status_code == 201
    assert http.put("/v1.0/a/q2/m", content=b"x" * 40).status_code == 201
    refused = http.put("/v1.0/a/q3/m", content=b"x")
    assert (refused.status_code, refused.json()["quota"]) == (409, "max_account_queues")
    refused = http.put("/v1.0/a/q2/m2", content=b"x" * 30)
    assert (refused.status_code, refused.json()["quota"]) == (409, "max_account_bytes")
    assert http.put("/v1.0/other/q3/m", content=b"x" * 40).status_code == 201
    assert stored(http, "a", "q2") == ["m"]


def test_an_account_section_overrides_the_server_limits(http: httpx.Client) -> None:
    assert http.put("/v1.0/a/q/m", content=b"x" * 1000).status_code == 413
    assert http.put("/v1.0/big/q/m", content=b"x" * 1000).status_code == 201
    batch = [{"id": f"b{i}", "body": "x"} for i in range(9)]
    assert http.put("/v1.0/big/q", json=batch).status_code == 201
    refused = http.put("/v1.0/big/q/one-more", content=b"x")
    assert (refused.status_code, refused.json()["quota"]) == (409, "max_queue_messages")


def test_an_account_section_can_set_its_own_rate(http: httpx.Client) -> None:
    served_until_refused(lambda _: http.get("/v1.0/slow/q"), rate=1, burst=2)
    assert [http.get("/v1.0/a/q").status_code for _ in range(5)] == [404] * 5


def test_the_client_raises_quota_exceeded(http: httpx.Client) -> None:
    with Client(str(http.base_url), "a") as client:
        queue = client.queue("q")
        queue.put_many([b"1", b"2", b"3"])
        with pytest.raises(QuotaExceeded) as refused:
            queue.put(b"4")
    assert refused.value.quota == "max_queue_messages"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[accounts.a]\nmax_queue_mesages = 3\n", "unknown setting 'max_queue_mesages'"),
        ("[accounts]\na = 3\n", "must be a table of limits"),
        ("[limits]\nmax_account_bytes = 'lots'\n", "must be an integer"),
        ("[quotas]\n", "unknown sections"),
    ],
)
def test_bad_quota_settings_are_refused_at_start(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "burrow.toml").write_text(config)
    result = run_cli("serve", "--port", "0", "--config", "burrow.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
