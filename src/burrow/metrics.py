"""`GET /metrics`: Prometheus' text format, from this server's counters and its storage.

Who may scrape: with `--auth keys:…`, an admin key or `[metrics] token` (as
`X-Auth-Token` or `Authorization: Bearer`); with `--auth none`, anyone. The request path
counts in plain dicts (`burrow.metrics_recorder`); a scrape turns them, with every other
worker's (`burrow.metrics_shared`) and what it asks of the backend, into metric families.
docs/monitoring.md lists every metric.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from burrow import metrics_queues as queues
from burrow.auth import Guard
from burrow.backends.sqlite_writer import Stats
from burrow.config import MetricsSettings
from burrow.errors import InvalidRequest, MethodNotAllowed
from burrow.frontends.admission import token_request
from burrow.frontends.asgi import Response, Scope
from burrow.metrics_recorder import Recorder
from burrow.metrics_shared import SharedTallies
from burrow.service import Service
from burrow.tally import Tally

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4.encode()
Table = dict[str, tuple[str, tuple[str, ...]]]
# Every metric: its help text and label names.
COUNTERS: Table = {
    "burrow_http_requests_total": (
        "Requests answered, by the route's shape, method and status.",
        ("route", "method", "status"),
    ),
    "burrow_messages_put_total": ("Messages put (created or replaced).", ("account",)),
    "burrow_messages_claimed_total": (
        "Messages hidden by a claim or an SQS receive.",
        ("account",),
    ),
    "burrow_messages_deleted_total": ("Messages deleted, popped or purged.", ("account",)),
    "burrow_messages_dead_lettered_total": (
        "Messages moved to a dead-letter queue (SQS redrive).",
        ("account",),
    ),
}
# Each message counter's field of `activity.Totals`.
ACTIVITY = {
    "burrow_messages_put_total": "put",
    "burrow_messages_claimed_total": "claimed",
    "burrow_messages_deleted_total": "deleted",
    "burrow_messages_dead_lettered_total": "dead_lettered",
}
QUEUE = ("account", "queue")
GAUGES: Table = {
    "burrow_long_poll_waiters": ("Long polls waiting for a message now.", ()),
    "burrow_queue_messages_visible": ("Messages a receive or claim can take now.", QUEUE),
    "burrow_queue_messages_hidden": ("Messages hidden (claimed, received or delayed).", QUEUE),
    "burrow_queue_messages_delayed": (
        "Hidden messages never received yet (put with a hide).",
        QUEUE,
    ),
    "burrow_queue_oldest_message_age_seconds": (
        "Seconds since the queue's oldest message was put (0: none).",
        QUEUE,
    ),
    queues.LOOKED_AT: ("Queues the last scrape looked at (at most [metrics] max_queues).", ()),
    queues.CUT_SHORT: ("1 if max_queues cut the last scrape's look at the queues short.", ()),
}
HISTOGRAMS: Table = {
    "burrow_http_request_duration_seconds": (
        "Time from a request's arrival at the app to its answer, by route shape and method.",
        ("route", "method"),
    ),
    "burrow_backend_call_duration_seconds": (
        "Time a call of the storage backend took, by operation.",
        ("operation",),
    ),
    "burrow_sqlite_commit_batch_size": (
        "Write operations one fsync of the SQLite log acknowledged (group commit).",
        (),
    ),
    "burrow_sqlite_fsync_duration_seconds": ("Time one fsync of the SQLite log took.", ()),
}


class Metrics:
    """This server's metrics: the recorder its requests count into, and the endpoint."""

    def __init__(
        self,
        service: Service,
        guard: Guard,
        settings: MetricsSettings,
        shared_directory: str | None = None,
    ) -> None:
        self.service = service
        self.guard = guard
        self.settings = settings
        self.backend = service.backend
        self.recorder = Recorder()
        # Only a backend on an engine of its own (a network away) has its calls timed: in
        # the process (memory, SQLite), the timing would cost a PUT 2-3% and tell what
        # the request's duration does (docs/monitoring.md).
        if not self.backend.embedded:
            service.backend = self.recorder.timed(service.backend)
        self.shared = (
            None if shared_directory is None else SharedTallies(shared_directory, self.local)
        )

    def local(self) -> Tally:
        """What this process counted, and its gauges."""
        tally = self.recorder.tally()
        tally.gauges["burrow_long_poll_waiters"] = {(): self.service.waiters}
        for name in ACTIVITY:
            tally.counters[name] = {}
        for (account, _), totals in self.service.activity:  # summed per account
            for name, field in ACTIVITY.items():
                series = tally.counters[name]
                series[account,] = series.get((account,), 0) + getattr(totals, field)
        stats = getattr(self.backend, "stats", None)
        if isinstance(stats, Stats):  # the SQLite backend's group commit
            tally.histograms["burrow_sqlite_commit_batch_size"] = {(): stats.batches}
            tally.histograms["burrow_sqlite_fsync_duration_seconds"] = {(): stats.fsync_seconds}
        return tally

    async def handle(self, scope: Scope, query: dict[str, str]) -> Response:
        if scope["method"] != "GET":
            raise MethodNotAllowed(scope["method"], ("GET",))
        if query:
            raise InvalidRequest("/metrics takes no query parameters")
        self._admit(scope)
        tally = Tally()
        if self.shared is None:
            tally.add(self.local())
        else:
            tally = self.shared.gathered()
        # The backend's, looked at once: every worker shares it.
        tally.gauges.update(await queues.queue_gauges(self.service, self.settings))
        return Response(200, generate_latest(_Families(tally)), CONTENT_TYPE)

    def _admit(self, scope: Scope) -> None:
        """An admin key's request, or one with the metrics token (see the module's)."""
        request = token_request(scope, "GET", None)
        token, wanted = request.credentials.token, self.settings.token
        if wanted and token is not None and hmac.compare_digest(token.encode(), wanted.encode()):
            return
        self.service.admit(self.guard, request)  # account None: admins only


class _Families:
    """A tally as prometheus-client's metric families (a collector)."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def collect(self) -> Iterator[Metric]:
        tally = self.tally
        plain = (
            (CounterMetricFamily, COUNTERS, tally.counters),
            (GaugeMetricFamily, GAUGES, tally.gauges),
        )
        for kind, table, found in plain:
            for name, (text, labels) in table.items():
                family = kind(name, text, labels=labels)
                for values, value in sorted(found.get(name, {}).items()):
                    family.add_metric(values, value)
                yield family
        for name, (text, labels) in HISTOGRAMS.items():
            histograms = tally.histograms.get(name)
            if histograms is None:
                continue  # (the SQLite ones, on another backend)
            histogram = HistogramMetricFamily(name, text, labels=labels)
            for values, observed in sorted(histograms.items()):
                histogram.add_metric(values, observed.cumulative(), observed.total)
            yield histogram
