"""What `/metrics` counting and request ids cost a v1.0 PUT: CPU per request, in process.

    python -m bench.request_overhead --backend memory
    python -m bench.request_overhead --backend sqlite

Two apps on the backend (SQLite: a file each in a temporary directory) take the same
PUTs through ASGI, without HTTP, from 32 callers: one as served (request id, log
context, route counts and durations, each backend call timed but on memory), one bare
(its backend's calls untimed, `App._respond` called directly and the response sent
without an id). Rounds alternate between them, each first in turn; the median round of
each is printed, and the difference, the instrumentation's cost. CPU is the process's,
all threads (SQLite's fsync thread too): on a busy machine every figure rises, so
compare the two of one run only.
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
CALLERS = 32
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


async def _round(serve: Serve, requests: int, round_: int) -> float:
    async def caller(number: int) -> None:
        for i in range(requests // CALLERS):
            path = f"/v1.0/a/q{round_}/m{number}-{i}"
            scope = {"type": "http", "method": "PUT", "path": path, "raw_path": path.encode(),
                     "query_string": b"", "headers": HEADERS, "client": ("::1", 1)}  # fmt: skip
            await serve(scope, _Body().receive)

    started = time.process_time()
    await asyncio.gather(*(caller(number) for number in range(CALLERS)))
    return (time.process_time() - started) / (requests // CALLERS * CALLERS) * 1e6


async def run(backend: str, requests: int, rounds: int) -> str:
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
                times[name].append(await _round(serve, requests, round_))
        for app in apps.values():
            await app.backend.close()
    served, bare = (statistics.median(times[name]) for name in ("served", "bare"))
    return (
        f"{backend}: served {served:.2f} µs, bare {bare:.2f} µs CPU per PUT (medians of "
        f"{rounds} rounds of {requests}): the instrumentation costs {served - bare:.2f} µs "
        f"a request ({(served - bare) / bare:.1%} of the app's own work)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(uvloop.run(run(args.backend, args.requests, args.rounds)))


if __name__ == "__main__":
    main()
