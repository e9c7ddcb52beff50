"""Horizontal scale: Burrow servers on one shared engine, 1 process against 2.

    python -m bench.scale                    # Redis Cluster and PostgreSQL, 2 s + 10 s per row
    python -m bench.scale --quick            # 1 s + 3 s per row
    python -m bench.scale --engines postgres --concurrency 32
    python -m bench.scale --write            # also put the table in bench/RESULTS.md

For each engine, three set-ups run the same phases (put-1, claim-delete):

    1 process     one `burrow serve`
    2 processes   two `burrow serve` on the same engine; connection i goes to server i mod 2
    --workers 2   one `burrow serve --workers 2` (one port; the kernel spreads connections)

The engines are throwaway instances started here (tests/engines): a Redis Cluster of three
masters, and a PostgreSQL 15 server with fsync on. Nothing is pinned to a CPU: servers,
engine and load generator share the machine's cores, and the table says how busy each was.
Every process started is stopped by its PID; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import engines
from bench.engines import Engine
from bench.loadgen import LoadResult, install_uvloop, run_load
from bench.phases import BURROW, PHASES, one_request, prefill
from bench.report import machine_notes, replace_section
from bench.servers import HOST, Pinning, Server, burrow_serve

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
START, END = "<!-- scale:start -->", "<!-- scale:end -->"
SETUPS = ("1 process", "2 processes", "--workers 2")
PHASE_NAMES = ("put-1", "claim-delete")
PREFILL = 400_000  # enough for the fastest claim row


ENGINES: dict[str, Engine] = {"redis-cluster": engines.redis_cluster, "postgres": engines.postgres}


@dataclass
class Row:
    engine: str
    setup: str
    phase: str
    result: LoadResult


async def measure(
    engine: str, url: str, setup: str, args: argparse.Namespace, tmp: Path
) -> list[Row]:
    count = 2 if setup == "2 processes" else 1
    extra = ["--workers", "2"] if setup == "--workers 2" else []
    no_pinning = Pinning(None, None, None)
    servers = [
        Server(
            burrow_serve(sys.executable, f"{engine}-{i}", url, *extra),
            no_pinning,
            tmp / f"{engine}-{setup[:2]}{i}.log",
        )
        for i in range(count)
    ]
    rows = []
    try:
        for server in servers:
            server.start()
        for server in servers:
            await server.wait_ready()
        ports = [server.port for server in servers]
        pids = [pid for server in servers for pid in server.cpu_pids]
        for name in PHASE_NAMES:
            spec = PHASES[name]
            account = f"scale-{time.time_ns()}"
            host = f"{HOST}:{ports[0]}"
            if spec.prefill:
                await prefill(BURROW, HOST, ports[0], account, "q", PREFILL, connections=8)
            result = await run_load(
                HOST,
                ports,
                spec.make(host, account, "q"),
                args.concurrency,
                args.warmup,
                args.duration,
                server_pids=pids,
            )
            rows.append(Row(engine, setup, name, result))
            # Each row starts from an empty store, whatever the one before left.
            await one_request(HOST, ports[0], BURROW.cleanup(host, account, "q"), seconds=300)
            print(
                f"{engine:>13} {setup:<12} {name:<13} {result.msgs_per_s:>9,.0f} msgs/s "
                f"p50 {result.p50_ms:6.2f} p99 {result.p99_ms:7.2f} ms errors "
                f"{result.errors_text()} cpu burrow {result.server_cpu or 0:.0%} "
                f"gen {result.client_cpu:.0%} other {result.other_cpu or 0:.0%}",
                flush=True,
            )
    finally:
        for server in servers:
            server.stop()
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| engine | set-up | phase | msgs/s | p50 ms | p99 ms | errors | Burrow CPU | "
        "loadgen CPU | other CPU (engine) | vs 1 process |",
        "|---|---|---|--:|--:|--:|---|--:|--:|--:|--:|",
    ]
    base = {(r.engine, r.phase): r.result.msgs_per_s for r in rows if r.setup == SETUPS[0]}
    for r in rows:
        res = r.result
        ratio = res.msgs_per_s / base[(r.engine, r.phase)] if base.get((r.engine, r.phase)) else 0
        lines.append(
            f"| {r.engine} | {r.setup} | {r.phase} | {res.msgs_per_s:,.0f} | {res.p50_ms:.2f} | "
            f"{res.p99_ms:.2f} | {res.errors_text()} | {res.server_cpu or 0:.0%} | "
            f"{res.client_cpu:.0%} | {res.other_cpu or 0:.0%} | {ratio:.2f}x |"
        )
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="burrow-scale-"))
    rows: list[Row] = []
    try:
        for engine in args.engines.split(","):
            with ENGINES[engine](tmp / engine) as url:
                for setup in SETUPS:
                    rows += await measure(engine, url, setup, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    command = " ".join(["python -m bench.scale", *sys.argv[1:]])
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = "; ".join(machine_notes("no CPU pinning", "uvloop", sys.executable)[:2])
    section = (
        f"## Scaling on a shared engine\n\nMeasured {when} with:\n\n    {command}\n\n"
        f"Concurrency {args.concurrency}, warm-up {args.warmup:g} s, {args.duration:g} s "
        f"measured per row, nothing pinned. {machine}.\n\n{table(rows)}\n"
    )
    print(section)
    if args.write:
        replace_section(RESULTS, START, END, section)
    return 0 if all(r.result.error_count == 0 for r in rows) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="1 s warm-up, 3 s per row")
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.duration = args.duration if args.duration is not None else (3 if args.quick else 10)
    install_uvloop()
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
