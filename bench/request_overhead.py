"""What `/metrics` counting and request ids cost a v1.0 PUT: CPU per request, in process.

    python -m bench.request_overhead --backend memory
    python -m bench.request_overhead --backend sqlite --callers 32

Two apps on the backend (SQLite: a file each in a temporary directory) take the same
PUTs through ASGI, without HTTP, from C callers (on SQLite, many: group commit), from
127.0.0.1: one as served (request id, route counts and durations; text logs, so no
log context; memory and SQLite calls are not timed), one bare (its backend's calls
untimed, `App._respond` called directly and the response sent without an id). Rounds
alternate between them, each first in turn; the median round of each is printed, and
the difference, the instrumentation's cost. CPU is the process's, all threads (SQLite's
fsync thread too): on a busy machine every figure rises, so compare the two of one run
only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import uvloop

from burrow.config import Settings
from burrow.frontends.asgi import Message, Receive, Scope
from burrow.server import App, _tune_gc, build_app

HEADERS = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"bench"), (b"content-length", b"5")]
CLIENT = ("127.0.0.1", 1)  # (an IPv6 address costs the rate limiter's check more)
Serve = Callable[[Scope, Receive], Awaitable[None]]


class _Body:
    """A request's body, whole: what uvicorn's receive has when the headers bring it."""

    more_body = False

    async def receive(self) -> Message:
        return {"type": "http.request", "body": b"hello", "more_body": False}


async def _ignore(message: Message) -> None:
    pass


def _served(app: App) -> Serve:
    return lambda scope, receive: app(scope, receive, _ignore)


def _bare(app: App) -> Serve:
    app.service.backend = app.backend  # its calls untimed

    async def serve(scope: Scope, receive: Receive) -> None:
        await (await app._respond(scope, receive)).send(_ignore)

    return serve


async def _round(serve: Serve, requests: int, callers: int, round_: int) -> float:
    async def caller(number: int) -> None:
        for i in range(requests // callers):
            path = f"/v1.0/a/q{round_}/m{number}-{i}"
            scope = {"type": "http", "method": "PUT", "path": path, "raw_path": path.encode(),
                     "query_string": b"", "headers": HEADERS, "client": CLIENT}  # fmt: skip
            await serve(scope, _Body().receive)

    started = time.process_time()
    await asyncio.gather(*(caller(number) for number in range(callers)))
    return (time.process_time() - started) / (requests // callers * callers) * 1e6


async def run(backend: str, requests: int, callers: int, rounds: int) -> str:
    with tempfile.TemporaryDirectory() as workdir:
        urls = {name: f"sqlite:///{workdir}/{name}.db" for name in ("served", "bare")}
        apps = {name: build_app(Settings(backend="memory://" if backend == "memory" else url))
                for name, url in urls.items()}  # fmt: skip
        serving = {"served": _served(apps["served"]), "bare": _bare(apps["bare"])}
        for app in apps.values():
            await app.backend.open()
        _tune_gc()  # as the server does once it is up
        times: dict[str, list[float]] = {name: [] for name in apps}
        for round_ in range(rounds):
            order = list(serving.items())
            for name, serve in order if round_ % 2 else reversed(order):  # (neither always first)
                times[name].append(await _round(serve, requests, callers, round_))
        for app in apps.values():
            await app.backend.close()
    served, bare = (statistics.median(times[name]) for name in ("served", "bare"))
    return (
        f"{backend}, {callers} caller(s): served {served:.2f} µs, bare {bare:.2f} µs CPU per "
        f"PUT (medians of {rounds} rounds of {requests}): the instrumentation costs "
        f"{served - bare:.2f} µs a request ({(served - bare) / bare:.1%} of the app's own work)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(uvloop.run(run(args.backend, args.requests, args.callers, args.rounds)))


if __name__ == "__main__":
    main()
