"""Long-poll wake-ups: how soon a waiting request is answered after the event it waits for.

    python -m bench.wakeups                          # every case, 30 rounds of each event
    python -m bench.wakeups --cases memory,redis --rounds 100

The tests check that a long poll is woken by its event, with a bound a busy machine
meets; the figures are measured here, on an idle one. Each case has a waiter's server
and a writer's server (the same one for a single server), and two events:

    put    a `GET /v1.0/{a}/q{i}?wait=30` waits on the waiter's server; a PUT to
           q{i} is sent to the writer's: from sending the PUT to the poll's answer.
    hide   a claim `POST /v1.0/{a}/q{i}?hide=30&wait=30` waits on the waiter's server
           for a message PUT to the writer's with `hide=1`: from when it shows (the
           PUT's send time + 1 s, never earlier than its deadline) to the claim's answer.

Cases: `memory` and `sqlite` (one server); `sqlite-shared` (two servers on one SQLite
file, as `--workers` runs them: the wake-up crosses by datagram); `redis` and `postgres`
(two servers on one throwaway engine: the wake-up crosses between them); `http` (a proxy,
`--backend http://…`, in front of a memory server: the poll waits on the proxy, the PUT
goes to the remote). Each case's p99 is checked against its target (`TARGETS_MS`); the
exit status is 1 if one is missed. Nothing is pinned; traffic goes to 127.0.0.1 only;
every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import engines
from bench.loadgen import install_uvloop
from bench.servers import HOST, Pinning, Server, burrow_serve

WAIT = 30  # seconds each long poll may wait: far longer than any wake-up measured
SETTLE = 1.0  # seconds for the polls to be sent and reach their wait before the first event
HIDE = 1
HIDE_SPACING = 0.05  # seconds between the hidden PUTs, so that each wakes on its own
# p99 of each case, in ms: one server wakes in-process; across servers the wake-up
# travels through the engine (pub/sub, LISTEN/NOTIFY) or the remote's own long poll.
TARGETS_MS = {
    "memory": 50,
    "sqlite": 50,
    "sqlite-shared": 10,
    "redis": 100,
    "postgres": 100,
    "http": 200,
}
NO_PINNING = Pinning(None, None, None)  # servers, engine and this process share the cores


@dataclass
class Case:
    name: str
    waiter: str  # base URLs
    writer: str


@dataclass
class Figures:
    case: str
    event: str
    delays_ms: list[float]

    @property
    def p99(self) -> float:
        ordered = sorted(self.delays_ms)
        return ordered[int(0.99 * (len(ordered) - 1))]

    @property
    def met(self) -> bool:
        return self.p99 < TARGETS_MS[self.case]

    def line(self) -> str:
        verdict = "met" if self.met else "NOT met"
        return (
            f"{self.case:>8} {self.event:<4} n={len(self.delays_ms):<4} "
            f"p50 {statistics.median(self.delays_ms):7.2f} p99 {self.p99:7.2f} "
            f"max {max(self.delays_ms):7.2f} ms   target p99 < {TARGETS_MS[self.case]} ms: "
            f"{verdict}"
        )


async def on_put(http: httpx.AsyncClient, case: Case, account: str, rounds: int) -> Figures:
    """Polls on every queue at once, then one PUT at a time, each awaited by its poll."""
    polls = [
        asyncio.create_task(
            http.get(f"{case.waiter}/v1.0/{account}/q{i}", params={"wait": WAIT, "detail": "id"})
        )
        for i in range(rounds)
    ]
    await asyncio.sleep(SETTLE)
    delays = []
    for i, poll in enumerate(polls):
        sent = time.monotonic()
        put = await http.put(f"{case.writer}/v1.0/{account}/q{i}/m", content=b"x")
        put.raise_for_status()
        answer = await poll
        delays.append(1000 * (time.monotonic() - sent))
        assert answer.json() == ["m"], answer.text
    return Figures(case.name, "put", delays)


async def on_hide(http: httpx.AsyncClient, case: Case, account: str, rounds: int) -> Figures:
    """Claims waiting on every queue, then hidden PUTs a little apart: each shows alone."""
    params: dict[str, str | int] = {"wait": WAIT, "hide": 30, "detail": "id"}

    async def claim(i: int) -> float:
        answer = await http.post(f"{case.waiter}/v1.0/{account}/q{i}", params=params)
        assert answer.json() == ["m"], answer.text
        return time.monotonic()

    claims = [asyncio.create_task(claim(i)) for i in range(rounds)]
    await asyncio.sleep(SETTLE)
    # A first write pays for the PUTs' connection, outside the figures.
    (await http.put(f"{case.writer}/v1.0/{account}/warm/m", content=b"x")).raise_for_status()
    shows = []
    for i in range(rounds):  # one after the other, on one connection: each PUT is quick
        shows.append(time.monotonic() + HIDE)
        put = await http.put(
            f"{case.writer}/v1.0/{account}/q{i}/m", content=b"x", params={"hide": HIDE}
        )
        put.raise_for_status()
        await asyncio.sleep(HIDE_SPACING)
    answered = await asyncio.gather(*claims)
    delays = [1000 * (at - due) for at, due in zip(answered, shows, strict=True)]
    return Figures(case.name, "hide", delays)


@contextlib.contextmanager
def servers(*targets: tuple[str, str], tmp: Path) -> Iterator[list[str]]:
    """`burrow serve` on each (name, backend URL), started together; their base URLs."""
    started = [
        Server(burrow_serve(sys.executable, name, url), NO_PINNING, tmp / f"{name}.log")
        for name, url in targets
    ]
    try:
        for server in started:
            server.start()
        asyncio.run(asyncio.wait_for(_ready(started), 60))
        yield [f"http://{HOST}:{server.port}" for server in started]
    finally:
        for server in started:
            server.stop()


async def _ready(started: list[Server]) -> None:
    for server in started:
        await server.wait_ready()


@contextlib.contextmanager
def case(name: str, tmp: Path) -> Iterator[Case]:
    """The servers of one case, with any engine or remote they need."""
    if name in ("memory", "sqlite"):
        url = "memory://" if name == "memory" else f"sqlite:///{tmp / 'wakeups.db'}"
        with servers((name, url), tmp=tmp) as (one,):
            yield Case(name, one, one)
    elif name == "sqlite-shared":
        url = f"sqlite:///{tmp / 'shared.db'}"
        with servers(("waiter", url), ("writer", url), tmp=tmp) as (waiter, writer):
            yield Case(name, waiter, writer)
    elif name == "http":
        with servers(("remote", "memory://"), tmp=tmp) as (remote,):
            with servers(("proxy", remote), tmp=tmp) as (proxy,):
                yield Case(name, proxy, remote)
    else:
        engine = engines.redis_standalone if name == "redis" else engines.postgres
        with engine(tmp / name) as url:
            with servers(("waiter", url), ("writer", url), tmp=tmp) as (waiter, writer):
                yield Case(name, waiter, writer)


async def measure(one: Case, rounds: int) -> list[Figures]:
    limits = httpx.Limits(max_connections=2 * rounds + 8)
    async with httpx.AsyncClient(timeout=WAIT + 10, limits=limits) as http:
        tag = time.time_ns()
        return [
            await on_put(http, one, f"wake-put-{tag}", rounds),
            await on_hide(http, one, f"wake-hide-{tag}", rounds),
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(TARGETS_MS), help="a subset of the cases")
    parser.add_argument("--rounds", type=int, default=30, help="events of each kind per case")
    args = parser.parse_args()
    unknown = set(args.cases.split(",")) - set(TARGETS_MS)
    if unknown:
        parser.error(f"unknown cases {', '.join(sorted(unknown))}; known: {', '.join(TARGETS_MS)}")
    install_uvloop()
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="burrow-wakeups-") as tmp:
        for name in args.cases.split(","):
            workdir = Path(tmp) / name
            workdir.mkdir()
            with case(name, workdir) as one:
                figures = asyncio.run(measure(one, args.rounds))
            for result in figures:
                print(result.line(), flush=True)
            results += figures
    return 0 if all(result.met for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
