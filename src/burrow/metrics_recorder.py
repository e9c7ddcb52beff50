"""What the request path counts for `/metrics`: plain dicts and `Histogram`s, no locks.

A request costs the recorder a route's label, a dict increment and a histogram's bisect
(about a microsecond in all, see docs/monitoring.md); prometheus-client's own counters
take a lock per call and are not used here. `Recorder.tally` turns what it holds into a
`Tally` at scrape time.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from burrow.backends.base import Backend
from burrow.frontends.asgi import Scope
from burrow.histogram import Histogram
from burrow.tally import Tally

# The scope key a frontend sets to name a request's route (the SQS frontend: its action).
ROUTE = "burrow.route"
OTHER = "other"
V1_ROUTES = (
    "/v1.0",
    "/v1.0/{account}",
    "/v1.0/{account}/{queue}",
    "/v1.0/{account}/{queue}/{message}",
)
QUEUE_RESOURCES = ("counts", "info")
ROUTES = {path: path for path in ("/", "/health", "/openapi.json", "/sign", "/metrics")}
METHODS = {m: m for m in ("GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS")}
# Backend calls that are not a request's: opening and closing.
LIFECYCLE = frozenset({"open", "close", "__aenter__", "__aexit__"})


def route_of(scope: Scope) -> str:
    """The shape of a request's path, never the path itself (bounded label values)."""
    named: str | None = scope.get(ROUTE)
    if named is not None:
        return named
    path: str = scope["path"]
    if path.startswith("/v1.0/") or path == "/v1.0":
        segments = path.split("/")[2:]
        if len(segments) < len(V1_ROUTES):
            return V1_ROUTES[len(segments)]
        if len(segments) == 4 and segments[2] == "-" and segments[3] in QUEUE_RESOURCES:
            return f"/v1.0/{{account}}/{{queue}}/-/{segments[3]}"
        return OTHER
    return ROUTES.get(path, OTHER)


class Recorder:
    """This process's request and backend call counts and durations."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.durations: dict[tuple[str, ...], Histogram] = {}  # (route, method)
        self.backend_calls: dict[str, Histogram] = {}

    def http(self, scope: Scope, status: int, seconds: float) -> None:
        """Count a request answered with `status` after `seconds`."""
        route = route_of(scope)
        method = METHODS.get(scope["method"], OTHER)
        key = (route, method, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        timing = self.durations.get((route, method))
        if timing is None:
            timing = self.durations[route, method] = Histogram()
        timing.observe(seconds)

    def instrument(self, backend: Backend) -> None:
        """Time every call of the backend's (its instance's methods shadow the class's)."""
        for name, _ in inspect.getmembers(type(backend), inspect.iscoroutinefunction):
            if name not in LIFECYCLE and not name.startswith("_"):
                timing = self.backend_calls[name] = Histogram()
                setattr(backend, name, _timed(getattr(backend, name), timing))

    def tally(self) -> Tally:
        tally = Tally()
        tally.counters["burrow_http_requests_total"] = {
            (route, method, str(status)): n for (route, method, status), n in self.requests.items()
        }
        tally.histograms["burrow_http_request_duration_seconds"] = dict(self.durations)
        tally.histograms["burrow_backend_call_duration_seconds"] = {
            (name,): h for name, h in self.backend_calls.items() if h.total or any(h.counts)
        }
        return tally


def _timed(call: Callable[..., Awaitable[Any]], timing: Histogram) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = perf_counter()
        try:
            return await call(*args, **kwargs)
        finally:
            timing.observe(perf_counter() - started)

    return timed
