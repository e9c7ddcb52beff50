"""Burrow against the durable queues a user would pick instead, side by side in one run.

    python -m bench.peers                       # 1/8/32/128 connections, 2 s + 10 s per row
    python -m bench.peers --quick               # 1 s warm-up + 3 s per row
    python -m bench.peers --peers rabbitmq,pgmq --concurrency 32,128
    python -m bench.peers --write               # also the "Peers" section of RESULTS.md + peers.png

Burrow (`burrow serve` on SQLite, the durable default) runs bench/phases.py's put-1,
put-batch-10 and claim-delete; each peer runs the same three through its own asyncio
Python client (bench/peer_driver.py): RabbitMQ (quorum queue), NATS JetStream (file
storage, fsync per write; and its default sync, marked as not fsynced per message),
PostgreSQL with pgmq, and Redis Streams (AOF fsync always). Every server is a throwaway
one on 127.0.0.1, pinned to CPU 0 while this load generator pins itself to CPU 1, and
stopped by its PID (temp dir removed) at the end, also on error and Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import peer_nats, peer_pgmq, peer_rabbitmq, peer_redis
from bench.loadgen import install_uvloop
from bench.peer_driver import EMPTY, PEER_PHASES, Peer, PeerServer, run_peer_phase
from bench.phases import PHASES
from bench.report import (
    Row,
    fmt_notes,
    fmt_ratios,
    fmt_table,
    machine_notes,
    replace_section,
    write_chart,
)
from bench.run import Options, other_load, progress, run_phase
from bench.servers import BENCH, Pinning, Server, burrow_serve, choose_pinning, terminate_on_sigterm

PEERS: dict[str, PeerServer] = {
    "rabbitmq": peer_rabbitmq.serve,
    "nats": peer_nats.serve,
    "nats-nosync": peer_nats.serve_nosync,
    "pgmq": peer_pgmq.serve,
    "redis-streams": peer_redis.serve,
}
NOT_FSYNCED = {"nats-nosync"}  # rows whose acknowledged messages are not fsynced yet
BURROW = "burrow"
# Burrow's phase for each peer phase: a consume of 10 is acknowledged in one call, as the
# peers do (`POST …/-/delete`); v1.0's way, one DELETE each, runs too as BURROW_V1.
BURROW_PHASES = {"claim-delete": "claim-ack"}
BURROW_V1 = "burrow-v1-deletes"
BURROWS = (BURROW, BURROW_V1)
PHASE_ORDER = list(PEER_PHASES)
TARGET_PHASES = ("put-1", "claim-delete")  # the targets: Burrow ≥ each peer …
TARGET_CONCURRENCY = (32, 128)  # … at these concurrencies
GENERATOR_BOUND = 0.9  # load generator CPU above which a row measures the client, not the server
RATE_GUESS = 5_000.0  # msgs/s to size a peer's first prefill
PREFILL_MARGIN = 2.0
MAX_PREFILL = 2_000_000
START, END = "<!-- peers:start -->", "<!-- peers:end -->"
CHART = "peers.png"


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # target → durability, versions
    order: list[str] = field(default_factory=list)


def estimate_rate(rows: list[Row], target: str) -> float:
    rates = [r.result.msgs_per_s for r in rows if r.target == target and r.result]
    return max([RATE_GUESS, *rates])


async def peer_row(
    peer: Peer, phase: str, concurrency: int, opts: Options, rows: list[Row], queue: str
) -> Row:
    """One peer row; a consume row whose queue ran dry is rerun once with 3x the prefill."""
    spec = PEER_PHASES[phase]
    row = Row(peer.name, phase, concurrency, None)
    multiplier = PREFILL_MARGIN
    for attempt in range(2 if spec.prefill else 1):
        want = estimate_rate(rows, peer.name) * (opts.warmup + opts.duration) * multiplier
        count = min(MAX_PREFILL, int(want)) if spec.prefill else 0
        run = await run_peer_phase(
            peer, spec, f"{queue}_{attempt}", concurrency, opts.warmup, opts.duration, count
        )
        row.result = run.result
        row.notes += run.notes
        dry = run.result.errors.get(EMPTY, 0) if run.result else 0
        if dry and attempt == 0 and spec.prefill:
            row.notes.append(f"queue ran dry ({dry} empty consumes): retrying with a 3x prefill")
            multiplier *= 3
            continue
        if dry:
            row.notes.append(f"queue ran dry: {dry} empty consumes (counted as errors)")
        break
    return row


async def burrow_rows(
    server: Server, phase: str, concurrency: int, opts: Options, out: Outcome, token: str
) -> None:
    """Burrow's row of a peer phase (and, where v1.0 does it another way, that row too)."""
    runs = [(BURROW, BURROW_PHASES.get(phase, phase))]
    if phase in BURROW_PHASES:
        runs.append((BURROW_V1, phase))
    for target, name in runs:
        t0 = time.monotonic()
        row = await run_phase(server, PHASES[name], concurrency, opts, out.rows, token)
        row.target, row.phase = target, phase
        out.rows.append(row)
        progress(row, time.monotonic() - t0)
        if row.result is None or row.result.error_count:
            errors = row.result.errors_text() if row.result else "no result"
            out.problems.append(f"{target} {phase} c={concurrency}: errors {errors}")


async def run_rows(
    burrow: Server | None, peers: list[Peer], opts: Options, out: Outcome, token: str
) -> None:
    """Every phase x concurrency, the targets of one row one after the other."""
    n = 0
    for phase in opts.phases:
        for concurrency in opts.concurrency:
            if burrow is not None:
                await burrow_rows(burrow, phase, concurrency, opts, out, token)
            for peer in peers:
                n += 1
                t0 = time.monotonic()
                try:
                    row = await peer_row(peer, phase, concurrency, opts, out.rows, f"p{token}_{n}")
                except Exception as exc:  # a peer that fails a row is a result to report
                    row = Row(peer.name, phase, concurrency, None, [f"failed: {exc!r}"])
                    out.problems.append(f"{peer.name} {phase} c={concurrency}: {exc!r}")
                out.rows.append(row)
                progress(row, time.monotonic() - t0)
                res = row.result
                failed = {k: v for k, v in (res.errors if res else {}).items() if k != EMPTY}
                if res and (failed or res.hung):
                    out.problems.append(
                        f"{peer.name} {phase} c={concurrency}: errors {res.errors_text()}"
                    )


def stop(server: Server) -> None:
    print(f"# {server.target.name}: {server.stop()}", flush=True)


async def amain(args: argparse.Namespace, opts: Options, pinning: Pinning) -> Outcome:
    out = Outcome()
    tmp = Path(tempfile.mkdtemp(prefix="burrow-peers-"))
    burrow: Server | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            if not args.no_burrow:
                target = burrow_serve(args.python, BURROW, f"sqlite:///{tmp / 'burrow.db'}")
                burrow = Server(target, pinning, tmp / "burrow.log")
                stack.callback(stop, burrow)
                burrow.start()
                await burrow.wait_ready()
                out.order.append(BURROW)
                out.settings[BURROW] = (
                    "`burrow serve --backend sqlite:///…` (the default): every acknowledged "
                    "write fsynced, with group commit; phases of bench/phases.py over HTTP/1.1"
                )
                if any(phase in BURROW_PHASES for phase in opts.phases):
                    out.order.append(BURROW_V1)
                    out.settings[BURROW_V1] = "the same server; v1.0's one DELETE a message"
                print(f"# burrow: pid {burrow.pid}, port {burrow.port}", flush=True)
            peers: list[Peer] = []
            for name in args.peers:
                try:
                    peer = await stack.enter_async_context(PEERS[name](tmp, pinning))
                except Exception as exc:  # e.g. its binary missing: the others still run
                    out.problems.append(f"{name} did not start: {exc}")
                    print(f"# {name} did not start: {exc}", file=sys.stderr, flush=True)
                    continue
                peers.append(peer)
                out.order.append(peer.name)
                out.settings[peer.name] = peer.settings()
                print(f"# {name}: pids {peer.pids}", flush=True)
            await run_rows(burrow, peers, opts, out, f"{int(time.time()):x}")
    finally:
        if burrow is not None and (errors := burrow.log_errors()):
            out.problems.append(f"burrow logged {errors}:\n{burrow.log_tail(30)}")
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- report


def cpu_table(rows: list[Row], order: list[str]) -> str:
    """Server CPU µs per message: what each message costs the server, which a load
    generator at its limit or a busy machine disturbs less than msgs/s."""
    cells = {(r.target, r.phase, r.concurrency): r.result for r in rows if r.result}
    keys = list(dict.fromkeys((r.phase, r.concurrency) for r in rows))
    out = ["| phase | concurrency | " + " | ".join(order) + " |"]
    out.append("|---|--:|" + "--:|" * len(order))
    for phase, c in keys:
        line = []
        for t in order:
            res = cells.get((t, phase, c))
            cpu = res.server_cpu if res is not None and res.msgs_per_s > 0 else None
            line.append("-" if res is None or cpu is None else f"{cpu * 1e6 / res.msgs_per_s:.0f}")
        out.append(f"| {phase} | {c} | " + " | ".join(line) + " |")
    return "\n".join(out)


def verdicts(rows: list[Row], peers: list[str]) -> str:
    """The issue's targets: Burrow's put-1 and claim-delete ≥ each peer's at 32 and 128."""
    got = {(r.target, r.phase, r.concurrency): r.result for r in rows if r.result}
    out = ["| phase | concurrency | peer | Burrow msgs/s | peer msgs/s | Burrow / peer | verdict |"]
    out.append("|---|--:|---|--:|--:|--:|---|")
    for phase in TARGET_PHASES:
        for c in TARGET_CONCURRENCY:
            mine = got.get((BURROW, phase, c))
            for peer in peers:
                theirs = got.get((peer, phase, c))
                if mine is None or theirs is None:
                    continue
                ratio = mine.msgs_per_s / theirs.msgs_per_s if theirs.msgs_per_s else float("inf")
                verdict = "**met**" if ratio >= 1 else f"**NOT met**: {peer} is faster"
                out.append(
                    f"| {phase} | {c} | {peer} | {mine.msgs_per_s:,.0f} | "
                    f"{theirs.msgs_per_s:,.0f} | {ratio:.2f}x | {verdict} |"
                )
    return "\n".join(out) if len(out) > 2 else "(not run: needs Burrow and peer rows at 32/128)"


def generator_bound(rows: list[Row]) -> list[str]:
    """Rows whose load generator was near a full core: the client's limit, not the server's."""
    return [
        f"{r.target} {r.phase} c={r.concurrency}: load generator {r.result.client_cpu:.0%} CPU, "
        f"server {r.result.server_cpu or 0:.0%}: the Python client is the bottleneck, "
        f"{r.result.msgs_per_s:,.0f} msgs/s is a floor for the server"
        for r in rows
        if r.result and r.result.client_cpu >= GENERATOR_BOUND
    ]


def section(out: Outcome, opts: Options, command: str, machine: list[str]) -> str:
    peers = [t for t in out.order if t not in BURROWS]
    settings = "\n".join(
        f"- **{t}**{' (not fsynced per message)' if t in NOT_FSYNCED else ''}: {s}"
        for t, s in out.settings.items()
    )
    bound = "\n".join(f"- {line}" for line in generator_bound(out.rows)) or "- none"
    notes = fmt_notes(out.rows, [])
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = f"""## Peers

Measured {when} with:

    {command}

Burrow on its durable default (SQLite) against the queues a user would pick instead, each
acknowledging a message only once it is fsynced (except `nats-nosync`, NATS's default,
shown for scale), in one run: each row runs the targets one after the other. Closed loop,
warm-up {opts.warmup:g} s (not counted), {opts.duration:g} s measured per row, 100-byte
bodies. Burrow runs bench/phases.py over HTTP; each peer the same three operations through
its own asyncio Python client (`bench/peer_*.py`), one connection per worker:
`put-1` one durable enqueue; `put-batch-10` ten at once; `claim-delete` consume 10 and
acknowledge them (Burrow: claim 10, then one `POST …/-/delete` of their ids, bench/phases.py's
`claim-ack`; `{BURROW_V1}`: v1.0's way, one DELETE each, 11 requests for 10 messages).
Latency is per call that waits for the server (Burrow: per HTTP request). Servers pinned
to one core, the load generator to the other. See bench/README.md ("Peers").

{chr(10).join(f"- {m}" for m in machine)}

### Durability and versions

{settings}

### Results

{fmt_table(out.rows)}

### Burrow / peer (msgs/s)

{fmt_ratios(out.rows, peers, percent=False, mine=[BURROW])}

### Server CPU per message (µs)

{cpu_table(out.rows, out.order)}

### Targets: Burrow's put-1 and claim-delete ≥ each peer's at 32 and 128 connections

{verdicts(out.rows, [p for p in peers if p not in NOT_FSYNCED])}

### Rows bounded by the load generator (≥ {GENERATOR_BOUND:.0%} of its core)

{bound}

![msgs/s against concurrency, Burrow and its peers]({CHART})
"""
    if notes:
        text += f"\n### Run notes\n\n{notes}\n"
    if out.problems:
        text += "\n### Problems seen\n\n" + "\n".join(f"- {p}" for p in out.problems) + "\n"
    return text


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 s warm-up, 3 s per row")
    p.add_argument("--warmup", type=float, help="warm-up seconds per row [2; quick 1]")
    p.add_argument("--duration", type=float, help="measured seconds per row [10; quick 3]")
    p.add_argument("--concurrency", default="1,8,32,128", help="comma-separated [1,8,32,128]")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated [{','.join(PEERS)}]")
    p.add_argument("--phases", default=",".join(PHASE_ORDER), help="comma-separated")
    p.add_argument("--no-burrow", action="store_true", help="the peers only")
    p.add_argument("--python", default=sys.executable, help="interpreter for Burrow's server")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--write", action="store_true", help="rewrite the Peers section + peers.png")
    p.add_argument("--results", default=str(BENCH / "RESULTS.md"), help="file for --write")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.peers = [name for name in args.peers.split(",") if name]
    args.phases = [name for name in args.phases.split(",") if name]
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        p.error(f"bad --concurrency {args.concurrency!r}")
    if not args.concurrency or not all(1 <= c <= 1024 for c in args.concurrency):
        p.error("--concurrency values must be between 1 and 1024")
    if unknown := [n for n in args.peers if n not in PEERS]:
        p.error(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    if unknown := [n for n in args.phases if n not in PHASE_ORDER]:
        p.error(f"unknown phase(s) {unknown}; known: {', '.join(PHASE_ORDER)}")
    if args.write and importlib.util.find_spec("matplotlib") is None:
        p.error("--write draws a chart with matplotlib: pip install -e '.[bench]'")
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loop_name = install_uvloop()
    shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "bench.peers", *shown])
    pinning = choose_pinning(args.server_cpu, args.client_cpu, not args.no_pin)
    print(f"# {pinning.describe()}", flush=True)
    opts = Options(args.warmup, args.duration, args.concurrency, args.phases, args.verbose)
    with terminate_on_sigterm():
        try:
            busy = asyncio.run(other_load())
            out = asyncio.run(amain(args, opts, pinning))
        except KeyboardInterrupt:
            print("\ninterrupted; servers stopped", file=sys.stderr)
            return 130
    machine = machine_notes(pinning.describe(), loop_name, args.python)
    if busy is not None:
        machine.append(f"other processes kept {busy:.2f} cores busy just before the run")
    text = section(out, opts, command, machine)
    print("\n" + text)
    if args.write:
        results = Path(args.results)
        write_chart(results.with_name(CHART), out.rows, PHASE_ORDER)
        replace_section(results, START, END, text)
        print(f"wrote {results} and {results.with_name(CHART)}")
    return 1 if out.problems else 0


if __name__ == "__main__":
    sys.exit(main())
