"""The SQS frontend benchmark: SQS calls through Burrow, beside the v1.0 API and moto.

    python -m bench.sqs                          # 1, 8, 32, 128 connections, 2 s + 10 s per row
    python -m bench.sqs --quick                  # 1 s warm-up + 3 s per row
    python -m bench.sqs --concurrency 8 --no-moto
    python -m bench.sqs --write --repeat 2       # best of 2 rounds; also write RESULTS.md's section

In one run, at each concurrency: the v1.0 `put-1` phase on Burrow, then each SQS phase
(`sqs_phases.py`: SendMessage, SendMessageBatch of 10, ReceiveMessage of 10 +
DeleteMessageBatch) on Burrow and on moto's server (`moto_server` from bench/.moto-venv,
made by `make bench-moto-deps`), one after the other so that a busy neighbour hurts them
alike. Burrow runs `burrow serve` on the SQLite default (a file in a temp dir; `--backend
memory` for the in-memory one) with `--auth none`. Both servers run side by side on free
ports, pinned to CPU 0 while this process pins itself to CPU 1, and are stopped by their
PIDs at the end. Each SQS row creates its own queue in an account of its own and deletes
it afterwards (not measured). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.loadgen import install_uvloop, process_cpu_seconds, run_load
from bench.phases import PHASES, PhaseSpec, cleanup
from bench.report import (
    Base,
    Row,
    fmt_table,
    machine_notes,
    msgs,
    pct,
    ratio_goal,
    replace_section,
)
from bench.run import Options, other_load, run_phase
from bench.servers import (
    BENCH,
    HOST,
    Pinning,
    Server,
    Target,
    burrow_target,
    choose_pinning,
    terminate_on_sigterm,
)
from bench.sqs_phases import SQS, SQS_PHASES, create_queue, prefill

MOTO_VENV = BENCH / ".moto-venv"
MOTO_RATE = 100  # msgs/s, its prefill-sizing guess before it has shown a rate
PREFILL_MARGIN = 2.0
MAX_PREFILL = 1_000_000
SETTLE_INTERVAL, IDLE_SHARE = 0.5, 0.05
START, END = "<!-- sqs:start -->", "<!-- sqs:end -->"
V1_PHASE = PHASES["put-1"]
SEND, SEND_BATCH, RECEIVE = "sqs-send", "sqs-send-batch-10", "sqs-receive-delete-10"
# Goals of the SQS issue, on the SQLite default.
SEND_OVER_PUT_GOAL = 0.70
OVER_MOTO_GOAL = 100.0
V1 = Base("v1.0 PUT", "v1.0".__eq__, percent=True)
MOTO = Base("moto", "moto".__eq__, percent=False)


def moto_target() -> Target:
    cmd = [str(MOTO_VENV / "bin" / "moto_server"), "-H", HOST, "-p", "{port}"]
    return Target("moto", cmd, api=SQS, rate_guess=MOTO_RATE, reference=True)


def moto_version() -> str:
    code = "from importlib.metadata import version as v; print(v('moto'), v('werkzeug'))"
    out = subprocess.run(
        [str(MOTO_VENV / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.split()
    moto, werkzeug = [*out, "?", "?"][:2]
    return f"moto {moto} (`moto_server`: Werkzeug {werkzeug}'s threaded server, 1 process)"


def _prefill_count(rows: list[Row], server: Server, concurrency: int, opts: Options) -> int:
    """Messages to put in a receive row's queue: twice what the target could move in the
    row. A receive-and-delete of 10 takes two requests where a batch send of 10 takes
    one, so its rate is at most the batch send's at the same concurrency (run just
    before), or its own best so far; the target's guess before either was measured."""
    rates = [
        r.result.msgs_per_s
        for r in rows
        if r.target == server.target.name
        and r.result
        and (r.phase == RECEIVE or (r.phase == SEND_BATCH and r.concurrency == concurrency))
    ]
    rate = max(rates) if rates else server.target.rate_guess
    return min(MAX_PREFILL, int(rate * (opts.warmup + opts.duration) * PREFILL_MARGIN))


async def sqs_row(
    server: Server,
    spec: PhaseSpec,
    concurrency: int,
    opts: Options,
    rows: list[Row],
    token: str,
    rnd: int,
) -> tuple[Row, list[str]]:
    """One SQS phase on one target: its own queue (made with CreateQueue, filled with
    SendMessageBatch when the phase needs messages, deleted after), then the load.
    Returns the row and what went wrong in it."""
    name = server.target.name
    row = Row(name, spec.name, concurrency, None, round=rnd)
    account = f"bench-{name}-{spec.name}-c{concurrency}-{token}"
    queue_url = await create_queue(HOST, server.port, account, "q")
    if not queue_url:
        return row, ["CreateQueue failed: row skipped"]
    issues = []
    if spec.prefill:
        count = _prefill_count(rows, server, concurrency, opts)
        got, took, failed = await prefill(HOST, server.port, account, queue_url, count)
        row.notes.append(f"prefilled {got:,} of {count:,} msgs in {took:.1f}s")
        if failed:
            issues.append(f"failed prefill batches: {failed}")
    workload = spec.make(f"{HOST}:{server.port}", account, queue_url)
    result = row.result = await run_load(
        HOST,
        server.port,
        workload,
        concurrency,
        opts.warmup,
        opts.duration,
        server_pids=server.cpu_pids,
    )
    if result.error_count:
        issues.append(f"errors {result.errors_text()}")
    for counter, what in COUNTERS.items():
        if getattr(workload, counter, 0):
            issues.append(f"{getattr(workload, counter)} {what}")
    status = await cleanup(SQS, HOST, server.port, account, queue_url)
    if status != 200:
        issues.append(f"DeleteQueue answered {status or 'nothing'}")
    return row, issues


async def settle(server: Server, seconds: float = 60.0) -> bool:
    """Wait until the server is idle (under 5% of a core over half a second), at most
    `seconds`: moto goes on serving the requests of a row's hung connections, on the core
    the next row's server needs. Whether it settled."""
    deadline = time.monotonic() + seconds
    before = process_cpu_seconds(server.cpu_pids)
    while time.monotonic() < deadline and before is not None:
        await asyncio.sleep(SETTLE_INTERVAL)
        after = process_cpu_seconds(server.cpu_pids)
        if after is None or after - before < IDLE_SHARE * SETTLE_INTERVAL:
            return True
        before = after
    return before is None


COUNTERS = {
    "empty": "receives found the queue empty (too small a prefill)",
    "bad_body": "answers with an unexpected JSON body",
    "failed_entries": "batch entries answered as Failed",
}


def _progress(row: Row) -> None:
    res = row.result
    if res is None:
        print(f"{row.target:>7} {row.phase:<22} c={row.concurrency:<3} failed", flush=True)
        return
    print(
        f"{row.target:>7} {row.phase:<22} c={row.concurrency:<3} {res.msgs_per_s:>9,.0f} msgs/s "
        f"p50 {res.p50_ms:7.2f} p99 {res.p99_ms:8.2f} ms cpu srv {pct(res.server_cpu)} "
        f"gen {pct(res.client_cpu)} other {pct(res.other_cpu)} errors {res.errors_text()}",
        flush=True,
    )


async def run_rows(
    burrow: Server, moto: Server | None, opts: Options, rounds: int, token: str
) -> tuple[list[Row], list[str]]:
    """At each concurrency: v1.0 put-1 on Burrow, then each SQS phase on Burrow and moto;
    all of it `rounds` times. Returns (rows, problems); moto's own errors and slowness go
    to its rows' notes."""
    rows: list[Row] = []
    problems: list[str] = []
    servers = [s for s in (burrow, moto) if s is not None]
    for rnd, concurrency in itertools.product(range(rounds), opts.concurrency):
        row = await run_phase(burrow, V1_PHASE, concurrency, opts, rows, f"{token}r{rnd}", rnd)
        rows.append(row)
        _progress(row)
        if row.result is None or row.result.error_count:
            errors = row.result.errors_text() if row.result else "no result"
            problems.append(f"{row.target} put-1 c={concurrency}: {errors}")
        for spec in SQS_PHASES.values():
            for server in servers:
                if not server.alive:
                    problems.append(f"{server.target.name} exited ({server.exit_code})")
                    continue
                row, issues = await sqs_row(
                    server, spec, concurrency, opts, rows, f"{token}r{rnd}", rnd
                )
                rows.append(row)
                _progress(row)
                if not await settle(server):
                    issues.append("still busy 60 s after the row")
                if server.target.reference:
                    row.notes += [f"{issue} (its own)" for issue in issues]
                else:
                    where = f"{row.target} {row.phase} c={concurrency} (round {rnd + 1})"
                    problems += [f"{where}: {issue}" for issue in issues]
    return rows, list(dict.fromkeys(problems))


# --------------------------------------------------------------------------- report


def best(rows: list[Row]) -> list[Row]:
    """One row per (target, phase, concurrency): the round with the most msgs/s, in the
    order the first round ran them."""
    kept: dict[tuple[str, str, int], Row] = {}
    for r in rows:
        key = (r.target, r.phase, r.concurrency)
        if key not in kept or msgs(r) > msgs(kept[key]):
            kept[key] = r
    return list(kept.values())


def _as_v1(rows: list[Row]) -> list[Row]:
    """The v1.0 put-1 rows, named as SQS SendMessage rows of a target "v1.0", so that
    `ratio_goal` sets SendMessage against PUT at each concurrency."""
    return [Row("v1.0", SEND, r.concurrency, r.result) for r in rows if r.phase == V1_PHASE.name]


def ratio_table(rows: list[Row], burrow: str) -> str:
    """At each concurrency: SendMessage over v1.0 PUT, in msgs/s and in the server CPU
    each message took (which a busy machine disturbs less), and each SQS phase's msgs/s
    on Burrow over moto's."""
    results = {(r.target, r.phase, r.concurrency): r.result for r in rows if r.result}

    def rate(target: str, phase: str, c: int) -> float | None:
        res = results.get((target, phase, c))
        return None if res is None else res.msgs_per_s

    def cpu_us(phase: str, c: int) -> str:
        res = results.get((burrow, phase, c))
        if res is None or res.server_cpu is None or not res.msgs_per_s:
            return "-"
        return f"{res.server_cpu * 1e6 / res.msgs_per_s:.0f}"

    def ratio(num: float | None, den: float | None, base: Base) -> str:
        if num is None or den is None:
            return "-"
        if not den:
            return f"none moved by {base.label}"
        return base.fmt(num / den)  # rounded down, as the goals are

    head = ["concurrency", "SendMessage / v1.0 PUT", "server CPU µs per PUT / SendMessage"]
    head += [f"{p} / moto" for p in SQS_PHASES]
    out = ["| " + " | ".join(head) + " |", "|--:|" + "--:|" * (len(head) - 1)]
    for c in sorted({r.concurrency for r in rows}):
        cells = [ratio(rate(burrow, SEND, c), rate(burrow, V1_PHASE.name, c), V1)]
        cells.append(f"{cpu_us(V1_PHASE.name, c)} / {cpu_us(SEND, c)}")
        cells += [ratio(rate(burrow, p, c), rate("moto", p, c), MOTO) for p in SQS_PHASES]
        out.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def goals(rows: list[Row], burrow: str) -> str:
    verdicts = [ratio_goal([*rows, *_as_v1(rows)], SEND, burrow, V1, SEND_OVER_PUT_GOAL)]
    verdicts += [ratio_goal(rows, p, burrow, MOTO, OVER_MOTO_GOAL) for p in SQS_PHASES]
    out = ["| goal | measured | verdict |", "|---|---|---|"]
    out += [f"| {v.goal} | {v.measured} | {v.status()} |" for v in verdicts]
    return "\n".join(out)


def section(
    rows: list[Row], burrow: str, command: str, machine: list[str], opts: Options, rounds: int
) -> str:
    """The RESULTS.md section: each row's best round, then every round's notes."""
    table = best(rows)
    notes = [
        f"- {r.target} {r.phase} c={r.concurrency}{f' (round {r.round + 1})' if r.round else ''}"
        f": {n}"
        for r in rows
        for n in r.notes
    ]
    best_of = f"; each row the best of {rounds} interleaved rounds" if rounds > 1 else ""
    text = f"""## SQS frontend

Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} with:

    {command}

Warm-up {opts.warmup:g} s (not counted), measured {opts.duration:g} s per row{best_of}, closed loop.
At each concurrency, Burrow (`burrow serve`, {burrow} backend, `--auth none`) runs the v1.0
`put-1` phase, then each SQS phase runs on Burrow and on moto's server, one after the
other. SQS requests are the JSON protocol as botocore sends it (see `bench/sqs_phases.py`):
`sqs-send` is SendMessage of a 100-byte body, `sqs-send-batch-10` SendMessageBatch of 10,
`sqs-receive-delete-10` ReceiveMessage of 10 then DeleteMessageBatch of the receipt
handles (from a queue filled beforehand, not measured); msgs/s counts messages sent, or
received and deleted. Each SQS row has a queue of its own, created before it and deleted
after it. Servers pinned to one core, the load generator to the other.

{chr(10).join(f"- {m}" for m in machine)}

{fmt_table(table)}

Ratios (msgs/s):

{ratio_table(table, burrow)}

Goals of the SQS issue (SendMessage against the v1.0 PUT rate and against moto; the
other two SQS phases against moto are held to the same bar), the best concurrency first:

{goals(table, burrow)}
"""
    if notes:
        text += "\nRun notes:\n\n" + "\n".join(notes) + "\n"
    return text


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 s warm-up, 3 s per row")
    p.add_argument("--warmup", type=float, help="warm-up seconds per row [2; quick 1]")
    p.add_argument("--duration", type=float, help="measured seconds per row [10; quick 3]")
    p.add_argument("--concurrency", default="1,8,32,128", help="comma-separated [1,8,32,128]")
    p.add_argument("--backend", default="sqlite", choices=["sqlite", "memory"])
    p.add_argument("--no-moto", action="store_true", help="Burrow only")
    p.add_argument("--repeat", type=int, default=1, help="rounds; the table keeps each best")
    p.add_argument("--python", default=sys.executable, help="interpreter for Burrow")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--write", action="store_true", help="rewrite the section in RESULTS.md")
    p.add_argument("--results", default=str(BENCH / "RESULTS.md"), help="file for --write")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (db, logs)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        raise SystemExit(f"bad --concurrency {args.concurrency!r}") from None
    if not args.concurrency or not all(1 <= c <= 1024 for c in args.concurrency):
        raise SystemExit("--concurrency values must be between 1 and 1024")
    if not 1 <= args.repeat <= 10:
        raise SystemExit("--repeat must be between 1 and 10")
    if not args.no_moto and not (MOTO_VENV / "bin" / "moto_server").exists():
        raise SystemExit("moto needs bench/.moto-venv: run `make bench-moto-deps` (or --no-moto)")
    return args


async def amain(
    args: argparse.Namespace, pinning: Pinning, tmp: Path
) -> tuple[list[Row], list[str]]:
    burrow = Server(burrow_target(args.python, args.backend, tmp), pinning, tmp / "burrow.log")
    moto = None if args.no_moto else Server(moto_target(), pinning, tmp / "moto.log")
    servers = [s for s in (burrow, moto) if s is not None]
    opts = Options(args.warmup, args.duration, args.concurrency, [], args.verbose)
    problems: list[str] = []
    rows: list[Row] = []
    try:
        for server in servers:
            server.start()
            print(f"# {server.target.name}: pid {server.pid}, port {server.port}", flush=True)
        for server in servers:
            await server.wait_ready()
        token = f"{int(time.time()):x}"
        rows, problems = await run_rows(burrow, moto, opts, args.repeat, token)
    finally:
        for server in servers:
            print(f"# {server.target.name}: {server.stop()}", flush=True)
            if server.killed:
                problems.append(f"{server.target.name} had to be killed")
            errors = server.log_errors()
            if errors and not server.target.reference:
                problems.append(f"{server.target.name} logged {errors}")
                print(f"# {server.target.name} log (tail):\n{server.log_tail(30)}", flush=True)
    return rows, problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loop_name = install_uvloop()
    shown = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m bench.sqs", *shown])
    pinning = choose_pinning(0, 1, not args.no_pin)
    print(f"# {pinning.describe()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="burrow-sqs-bench-"))
    try:
        with terminate_on_sigterm():
            busy = asyncio.run(other_load())
            rows, problems = asyncio.run(amain(args, pinning, tmp))
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep_tmp:
            print(f"# temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    machine = machine_notes(pinning.describe(), loop_name, args.python)
    if not args.no_moto:
        machine.append(f"moto: {moto_version()}")
    if busy is not None:
        machine.append(f"other processes kept {busy:.2f} cores busy just before the run")
    opts = Options(args.warmup, args.duration, args.concurrency, [], args.verbose)
    text = section(rows, args.backend, command, machine, opts, args.repeat)
    print("\n" + text)
    if problems:
        print("Problems:\n" + "\n".join(f"- {p}" for p in problems))
    if args.write:
        replace_section(Path(args.results), START, END, text)
        print(f"wrote {args.results}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
