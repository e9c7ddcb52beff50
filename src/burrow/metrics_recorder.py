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
from typing import Any, cast

from burrow.backends.base import Backend
from burrow.frontends.asgi import Scope
from burrow.histogram import Histogram
from burrow.tally import Tally

# The scope key a frontend sets to name a request's route (the SQS frontend: its action).
ROUTE = "burrow.route"
OTHER = "other"
ROUTES = {
    path: path for path in ("/", "/health", "/openapi.json", "/sign", "/metrics", "/whoami", "/ui")
}
UI_ROUTE = "/ui/{file}"
METHODS = {m: m for m in ("GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS")}
# Backend calls that are not a request's: opening and closing.
LIFECYCLE = frozenset({"open", "close", "__aenter__", "__aexit__"})


def route_of(scope: Scope) -> str:
    """The shape of a request's path, never the path itself (bounded label values): the
    one its frontend named (`ROUTE`), else one of `ROUTES`, else `other`."""
    named: str | None = scope.get(ROUTE)
    if named is not None:
        return named
    path: str = scope["path"]
    return UI_ROUTE if path.startswith("/ui/") else ROUTES.get(path, OTHER)


class Recorder:
    """This process's request and backend call counts and durations."""

    def __init__(self) -> None:
        # (route, method, status): the durations, whose count is the requests'. One
        # histogram per status, summed over statuses at scrape time: one dict look a
        # request instead of two.
        self.requests: dict[tuple[str, str, int], Histogram] = {}
        self.backend_calls: dict[str, Histogram] = {}

    def http(self, scope: Scope, status: int, seconds: float) -> None:
        """Count a request answered with `status` after `seconds`."""
        key = (route_of(scope), METHODS.get(scope["method"], OTHER), status)
        timing = self.requests.get(key)
        if timing is None:
            timing = self.requests[key] = Histogram()
        timing.observe(seconds)

    def timed(self, backend: Backend) -> Backend:
        """`backend` as its callers see it, each of its calls timed (its calls of its own
        methods, such as `put_message`'s of `put_messages`, are not timed again)."""
        view = _TimedView(backend)
        for name, _ in inspect.getmembers(type(backend), inspect.iscoroutinefunction):
            if name not in LIFECYCLE and not name.startswith("_"):
                timing = self.backend_calls[name] = Histogram()
                setattr(view, name, _timed(getattr(backend, name), timing))
        return cast(Backend, view)  # (a Backend in all but its class)

    def tally(self) -> Tally:
        tally = Tally()
        durations: dict[tuple[str, ...], Histogram] = {}
        counts: dict[tuple[str, ...], float] = {}
        for (route, method, status), timing in self.requests.items():
            counts[route, method, str(status)] = sum(timing.counts)
            into = durations.get((route, method))
            if into is None:
                into = durations[route, method] = Histogram(timing.bounds)
            into.add(*timing.snapshot())
        tally.counters["burrow_http_requests_total"] = counts
        tally.histograms["burrow_http_request_duration_seconds"] = durations
        tally.histograms["burrow_backend_call_duration_seconds"] = {
            (name,): h for name, h in self.backend_calls.items() if h.total or any(h.counts)
        }
        return tally


class _TimedView:
    """A backend's timed calls (set on it by `Recorder.timed`), and everything else of it."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _timed(call: Callable[..., Awaitable[Any]], timing: Histogram) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = perf_counter()
        try:
            return await call(*args, **kwargs)
        finally:
            timing.observe(perf_counter() - started)

    return timed
