"""`GET /metrics` against real servers: what a scrape says after a scripted workload."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from burrow import metrics
from tests.conftest import ServerFactory
from tests.sqs.clients import sqs_client
from tests.sqs.test_dead_letters import dead_letter, with_dead_letters
from tests.test_auth import add_key
from tests.waiting import wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
PUT_ONE = "/v1.0/{account}/{queue}/{message}"


def scrape(url: str, token: str | None = None) -> Samples:
    """Every sample of a scrape, by name and labels; the text must parse as Prometheus'."""
    headers = {} if token is None else {"X-Auth-Token": token}
    answer = httpx.get(f"{url}/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, route: str, method: str, status: int) -> float:
    labels = {"route": route, "method": method, "status": str(status)}
    return value(samples, "burrow_http_requests_total", **labels)


def test_requests_are_counted_by_route_shape_method_and_status(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server(f"sqlite:///{tmp_path}/burrow.db")
    with httpx.Client(base_url=server.url) as http:
        for i in range(3):
            assert http.put(f"/v1.0/a/q/m{i}", content=b"x").status_code == 201
        assert http.get("/v1.0/a/q/nope").status_code == 404
        assert http.get("/v1.0/a/q/-/counts").status_code == 200
        assert http.request("TRACE", "/v1.0/a/q").status_code == 405
        assert http.get("/no/such/path").status_code == 404
        sent = http.post("/", data={"Action": "SendMessage", "QueueUrl": f"{server.url}/a/q",
                                    "MessageBody": "x"})  # fmt: skip
        assert sent.status_code == 200, sent.text
    samples = scrape(server.url)
    assert requests(samples, PUT_ONE, "PUT", 201) == 3
    assert requests(samples, PUT_ONE, "GET", 404) == 1
    assert requests(samples, "/v1.0/{account}/{queue}/-/counts", "GET", 200) == 1
    assert requests(samples, "/v1.0/{account}/{queue}", "other", 405) == 1  # (bounded methods)
    assert requests(samples, "other", "GET", 404) == 1
    assert requests(samples, "sqs:SendMessage", "POST", 200) == 1
    timed = {"route": PUT_ONE, "method": "PUT"}
    assert value(samples, "burrow_http_request_duration_seconds_count", **timed) == 3
    assert value(samples, "burrow_http_request_duration_seconds_bucket", le="+Inf", **timed) == 3
    # No raw path is a label value: only shapes.
    assert not [labels for _, labels in samples if ("route", "/v1.0/a/q/m0") in labels]
    # SQLite's group commit acknowledged all four writes; calls in process are not timed.
    assert value(samples, "burrow_sqlite_commit_batch_size_sum") == 4
    assert not [name for name, _ in samples if name.startswith("burrow_backend_call")]
    assert value(samples, "burrow_sqlite_fsync_duration_seconds_count") >= 1
    # The scrape itself is counted by the next one.
    assert requests(scrape(server.url), "/metrics", "GET", 200) == 1


def put_batch(http: httpx.Client, queue: str, count: int) -> None:
    assert http.put(f"/v1.0/{queue}", json=[{"body": "x"}] * count).status_code == 201


def test_message_counters_and_queue_gauges_follow_a_workload(start_server: ServerFactory) -> None:
    server = start_server()
    with httpx.Client(base_url=server.url) as http:
        for i in range(5):
            assert http.put(f"/v1.0/a/work/m{i}", content=b"x").status_code == 201
        assert http.put("/v1.0/a/work/later", content=b"x", params={"hide": 60}).status_code == 201
        claimed = http.post("/v1.0/a/work", params={"hide": 60, "limit": 2, "detail": "id"})
        assert claimed.json() == ["m0", "m1"]
        assert http.delete("/v1.0/a/work/m0").status_code == 204
        put_batch(http, "b/other", 3)
        stats = http.get("/v1.0/a/work", params={"detail": "stats"}).json()
    sqs = sqs_client(server.url, "s")
    source, _ = with_dead_letters(sqs, max_receives=1)
    dead_letter(sqs, source, ["poison"])
    samples = scrape(server.url)
    assert value(samples, "burrow_messages_put_total", account="a") == 6
    assert value(samples, "burrow_messages_claimed_total", account="a") == 2
    assert value(samples, "burrow_messages_deleted_total", account="a") == 1
    assert value(samples, "burrow_messages_put_total", account="b") == 3
    assert value(samples, "burrow_messages_dead_lettered_total", account="s") == 1
    # The gauges are the queue's stats: m2-m4 visible; m1 (claimed) and `later` (put
    # hidden) hidden, and delayed too, neither received (a v1.0 claim is no receive).
    work = {"account": "a", "queue": "work"}
    gauges = {
        "visible": value(samples, "burrow_queue_messages_visible", **work),
        "hidden": value(samples, "burrow_queue_messages_hidden", **work),
        "delayed": value(samples, "burrow_queue_messages_delayed", **work),
    }
    assert gauges == {"visible": 3, "hidden": 2, "delayed": 2}
    assert gauges == {name: stats[name] for name in gauges}
    oldest = value(samples, "burrow_queue_oldest_message_age_seconds", **work)
    assert 0 < stats["oldest_age"] <= oldest < stats["oldest_age"] + 30
    assert value(samples, "burrow_queue_messages_visible", account="s", queue="dead-letters") == 1
    assert value(samples, "burrow_long_poll_waiters") == 0


def test_queue_series_stay_bounded_with_more_queues_than_top_queues(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURROW_METRICS_TOP_QUEUES", "2")
    monkeypatch.setenv("BURROW_METRICS_QUEUES", "c/q0")
    server = start_server()
    with httpx.Client(base_url=server.url) as http:
        for i in range(6):
            put_batch(http, f"c/q{i}", i + 1)  # q5 the deepest
        for i in range(1, 4):
            put_batch(http, f"d{i}/q", i)
    samples = scrape(server.url)
    visible = {
        (dict(labels)["account"], dict(labels)["queue"]): found
        for (name, labels), found in samples.items()
        if name == "burrow_queue_messages_visible"
    }
    # The listed queue, the 2 deepest; the rest by account: the 2 with most left over,
    # then all others in one series.
    assert visible == {
        ("c", "q0"): 1,
        ("c", "q5"): 6,
        ("c", "q4"): 5,
        ("c", "_other"): 2 + 3 + 4,
        ("d3", "_other"): 3,
        ("_other", "_other"): 1 + 2,
    }
    assert value(samples, "burrow_metrics_queues_looked_at") == 9
    assert value(samples, "burrow_metrics_queues_cut_short") == 0


def test_a_scrape_looks_at_max_queues_at_most(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURROW_METRICS_MAX_QUEUES", "3")
    server = start_server()
    with httpx.Client(base_url=server.url) as http:
        for i in range(5):
            put_batch(http, f"e/q{i}", 1)
    samples = scrape(server.url)
    assert value(samples, "burrow_metrics_queues_looked_at") == 3
    assert value(samples, "burrow_metrics_queues_cut_short") == 1
    assert len([name for name, _ in samples if name == "burrow_queue_messages_visible"]) == 3


def test_metrics_refuse_what_they_cannot_answer(start_server: ServerFactory) -> None:
    server = start_server()
    with httpx.Client(base_url=server.url) as http:
        posted = http.post("/metrics")
        assert (posted.status_code, posted.json()) == (405, {"error": posted.json()["error"]})
        assert posted.headers["allow"] == "GET"
        queried = http.get("/metrics", params={"name": "x"})
        assert queried.status_code == 400
        assert queried.json() == {"error": "/metrics takes no query parameters"}


@pytest.fixture
def secured(
    start_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, str]]:
    """A server with keys and a metrics token: its URL, an admin's and a writer's token."""
    keyfile = tmp_path / "keys.json"
    admin, writer = add_key(keyfile, "admin"), add_key(keyfile, "writer", "a")
    monkeypatch.setenv("BURROW_METRICS_TOKEN", "scraper-secret")
    server = start_server("memory://", "--auth", f"keys:{keyfile}")
    yield server.url, admin, writer


def test_scrapes_need_an_admin_key_or_the_metrics_token(secured: tuple[str, str, str]) -> None:
    url, admin, writer = secured
    for token, status in ((None, 401), ("nope", 401), (writer, 403), ("scraper-secret!", 401)):
        headers = {} if token is None else {"X-Auth-Token": token}
        refused = httpx.get(f"{url}/metrics", headers=headers)
        assert refused.status_code == status, token
        assert set(refused.json()) == {"error"}
    assert requests(scrape(url, admin), "/metrics", "GET", 401) == 3
    bearer = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer scraper-secret"})
    assert bearer.status_code == 200
    assert requests(scrape(url, "scraper-secret"), "/metrics", "GET", 403) == 1


WORKER_ACCESS = re.compile(r"(\d+) INFO uvicorn\.access: .*\"PUT /v1\.0/a/q/")


def test_a_scrape_gathers_every_workers_requests(
    start_server: ServerFactory, redis_backend_url: str
) -> None:
    server = start_server(redis_backend_url, "--workers", "2", "--access-log")
    # Stopped by SIGTERM, which the supervisor passes on to its workers and waits for
    # (the fixture's SIGKILL would leave them running).
    try:
        puts = 0
        # Each PUT on a connection of its own: the kernel spreads them over the workers.
        while len(set(WORKER_ACCESS.findall(server.log()))) < 2:
            assert httpx.put(f"{server.url}/v1.0/a/q/m{puts}", content=b"x").status_code == 201
            puts += 1
            assert puts < 200, "every PUT reached the same worker"
        wait_until(
            lambda: requests(scrape(server.url), PUT_ONE, "PUT", 201) == puts,
            f"both workers' {puts} PUTs in one scrape",
        )
        # Redis is a network away: each of its calls is timed, in every worker.
        samples = scrape(server.url)
        timed = value(
            samples, "burrow_backend_call_duration_seconds_count", operation="put_message"
        )
        assert timed == puts
        assert value(samples, "burrow_messages_put_total", account="a") == puts
    finally:
        assert server.stop() == 0


REPO = Path(__file__).parent.parent
EXPORTED = {*metrics.COUNTERS, *metrics.GAUGES, *metrics.HISTOGRAMS}
HISTOGRAM_PARTS = re.compile(r"_(bucket|sum|count)$")
METRIC_NAME = re.compile(r"\b(burrow_[a-z_]+|up)\b")


def test_every_metric_is_documented() -> None:
    documented = set(
        re.findall(r"^\| `(burrow_\w+)` \|", (REPO / "docs/monitoring.md").read_text(), re.M)
    )
    assert documented == EXPORTED


def test_the_example_alert_rules_name_only_metrics_burrow_exports() -> None:
    """deploy/prometheus: the alert rules and scrape config parse as YAML (promtool is
    not installed here), every rule has what Prometheus requires, and every metric an
    expression names is one a scrape has."""
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len({rule["alert"] for rule in alerts}) == len(alerts) >= 8
    documented = (REPO / "docs/monitoring.md").read_text()
    for rule in alerts:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule["alert"]
        assert f"`{rule['alert']}`" in documented
        for name in METRIC_NAME.findall(rule["expr"]):
            exported = HISTOGRAM_PARTS.sub("", name) in metrics.HISTOGRAMS or name in EXPORTED
            assert name == "up" or exported, (rule["alert"], name)
    scrape = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert (job["metrics_path"], job["authorization"]["type"]) == ("/metrics", "Bearer")
    assert scrape["rule_files"] == ["alerts.yml"]
