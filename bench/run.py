"""Run the Burrow benchmark: every phase against every target, one server at a time.

    python -m bench.run                      # sqlite + memory + no-op + Zaqar, 2 s + 10 s each
    python -m bench.run --quick              # 1 s warm-up, 3 s each (under ~3 minutes)
    python -m bench.run --backends sqlite --concurrency 1,8,32 --phases put-1,claim-pop
    python -m bench.run --zaqar-workers sync:1,gevent:2 --no-noop --backends memory
    python -m bench.run --backends sqlite,redis,postgres --no-zaqar --depth 0,1000000
    python -m bench.run --quick --write      # also rewrite bench/RESULTS.md and throughput.png

Each target is a subprocess on a free port (asked of the OS), pinned to CPU 0 while this
process (the load generator) pins itself to CPU 1. A target is stopped by its PID when
its phases end, on error and on Ctrl-C. Traffic goes to 127.0.0.1 only.

Zaqar (OpenStack's queue service, for comparison) runs from its own virtualenv
(bench/.zaqar-venv, made by `make bench-deps`) under gunicorn, on a throwaway
redis-server that is pinned with it and stopped after it. Burrow's `redis` and `postgres`
targets store in a throwaway redis-server (AOF fsynced on every write) and PostgreSQL
(fsync on), started with the test suite's engine helpers, pinned to the server's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import tails
from bench.loadgen import install_uvloop, machine_busy_seconds, run_load
from bench.phases import PHASES, PhaseSpec, cleanup, prefill
from bench.report import (
    Row,
    at_depth,
    fmt_goals,
    fmt_notes,
    fmt_table,
    machine_notes,
    pct,
    ratio_sections,
    write_chart,
    write_results,
)
from bench.servers import (
    BENCH,
    HOST,
    Pinning,
    Server,
    Target,
    burrow_serve,
    burrow_target,
    choose_pinning,
    on_cpu,
    terminate_on_sigterm,
)
from bench.settle import settle_disk
from bench.zaqar_phases import ZAQAR_PHASES
from bench.zaqar_target import (
    ZAQAR_WORKERS,
    ZaqarWorkers,
    require_zaqar,
    zaqar_server,
    zaqar_versions,
)

MAX_PREFILL = 3_000_000
MAX_DEPTH = 10_000_000
DEPTH_FILL_SECONDS = 600.0  # a depth fill that takes longer is cut short (and noted)
# Burrow backends stored in an engine started for the run (bench/engines.py).
ENGINE_BACKENDS = ("redis", "postgres")
PREFILL_MARGIN = 2.0
# Every phase name in running order; Zaqar's list also has claim-bulk-delete.
PHASE_ORDER = list(dict.fromkeys([*ZAQAR_PHASES, *PHASES]))
CHART = "throughput.png"  # written beside the results file


# --------------------------------------------------------------------------- targets


def noop_target(python: str) -> Target:
    cmd = [python, "-m", "uvicorn", "noop_app:app", "--app-dir", str(BENCH)]
    cmd += ["--host", HOST, "--port", "{port}", "--loop", "uvloop", "--http", "httptools"]
    cmd += ["--no-access-log", "--log-level", "warning", "--workers", "1"]
    return Target("noop", cmd, is_noop=True)


def _children() -> set[int]:
    me = os.getpid()
    with open(f"/proc/{me}/task/{me}/children", "rb") as f:
        return {int(pid) for pid in f.read().split()}


def engine_target(
    python: str,
    name: str,
    tmp: Path,
    stack: contextlib.ExitStack,
    cpu: int | None,
    profile: Path | None = None,
) -> Target:
    """Burrow on `name` (redis, postgres): its engine started now on `cpu`, stopped when
    `stack` closes; the engine's processes count as the server's CPU."""
    from bench.engines import BACKEND_ENGINES  # (tests/engines imports pytest: dev extra)

    before = _children()
    with on_cpu(cpu):
        url = stack.enter_context(BACKEND_ENGINES[name](tmp / name))
    target = burrow_serve(python, name, url, profile=profile)
    target.engine_pids = tuple(_children() - before)
    return target


# --------------------------------------------------------------------------- running


@dataclass
class Options:
    warmup: float
    duration: float
    concurrency: list[int]
    phases: list[str]
    verbose: bool
    depths: list[int] = field(default_factory=lambda: [0])  # queue depths to run at


def _account(target: str, phase: str, concurrency: int, token: str) -> str:
    return f"bench-{target}-{phase}-c{concurrency}-{token}"


def _estimate_rate(rows: list[Row], target: Target) -> float:
    """Messages/s this target managed so far (to size prefills); a guess if nothing yet."""
    rates = [
        r.result.msgs_per_s
        for r in rows
        if r.target == target.name and r.result is not None and r.phase != "latency"
    ]
    return max([target.rate_guess, *rates])


async def run_phase(
    server: Server,
    spec: PhaseSpec,
    concurrency: int,
    opts: Options,
    rows: list[Row],
    token: str,
    rnd: int = 0,
    depth: int = 0,
) -> Row:
    target = server.target
    assert target.api is not None  # helpers run no phases
    name = target.name
    row = Row(name, spec.name, concurrency, None, round=rnd, depth=depth)
    host_header = f"{HOST}:{server.port}"
    drains = spec.prefill and not target.is_noop
    attempts = 2 if drains else 1
    multiplier = PREFILL_MARGIN
    for attempt in range(attempts):
        suffix = f"-d{depth}" if depth else ""
        account = _account(name, spec.name, concurrency, f"{token}{attempt}{suffix}")
        if drains or depth:
            # What the phase drains comes first, so the queue keeps about `depth` messages.
            want = _estimate_rate(rows, target) * (opts.warmup + opts.duration) * multiplier
            count = depth + (min(MAX_PREFILL, int(want)) if drains else 0)
            limit = DEPTH_FILL_SECONDS if depth else 120.0
            got, took, failed = await prefill(
                target.api, HOST, server.port, account, "q", count, time_limit=limit
            )
            note = f"prefilled {got:,} msgs in {took:.1f}s"
            if got < count:
                note += f" (of {count:,}: cut short)"
            if failed:
                note += f" (failed batch inserts: {failed})"
            row.notes.append(note)
            if opts.verbose:
                print(f"  {name}/{spec.name}/c{concurrency}: {note}", flush=True)
        settled = await settle_disk()
        disks = "quiet" if settled.quiet else "still busy, measured anyway"
        if not settled.quiet:
            row.notes.append(f"disks {disks} after {settled.seconds:.0f}s")
        if opts.verbose:
            print(
                f"  {name}/{spec.name}/c{concurrency}: disks {disks} after {settled.seconds:.1f}s"
            )
        workload = spec.make(host_header, account, "q")
        result = await run_load(
            HOST,
            server.port,
            workload,
            concurrency,
            opts.warmup,
            opts.duration,
            server_pids=server.cpu_pids,
            reopen_every=target.reopen_every,
        )
        row.result = result
        empty = getattr(workload, "empty", 0)
        bad = getattr(workload, "bad_body", 0)
        if bad:
            row.notes.append(f"{bad} responses with an unexpected JSON body")
        if result.hung and not await server.answers():
            row.notes.append("server not answering after the phase: cleanup skipped")
            break
        t_clean = time.monotonic()
        status = await cleanup(target.api, HOST, server.port, account, "q")
        if opts.verbose:
            took = time.monotonic() - t_clean
            print(f"  {name}/{spec.name}/c{concurrency}: cleanup {status} in {took:.1f}s")
        if status not in (200, 204, 404):
            row.notes.append(f"cleanup DELETE answered {status or 'nothing'}")
        if empty and attempt + 1 < attempts:
            row.notes.append(f"queue ran dry ({empty} empty claims): retrying with a 3x prefill")
            multiplier *= 3
            continue
        if empty:
            row.notes.append(f"queue ran dry: {empty} empty claims/pops (counted as errors)")
        break
    return row


def progress(row: Row, seconds: float) -> None:
    res = row.result
    if res is None:
        print(f"{row.target:>13} {row.phase:<17} c={row.concurrency:<3} failed", flush=True)
        return
    print(
        f"{row.target:>13} {row.phase:<17} c={row.concurrency:<3} "
        f"{res.req_per_s:>9,.0f} req/s {res.msgs_per_s:>9,.0f} msgs/s "
        f"p50 {res.p50_ms:6.2f} p99 {res.p99_ms:7.2f} ms "
        f"cpu srv {pct(res.server_cpu)} gen {pct(res.client_cpu)} "
        f"other {pct(res.other_cpu)} errors {res.errors_text()}  ({seconds:.0f}s)",
        flush=True,
    )


async def run_all(
    servers: list[Server], opts: Options, rounds: int, token: str
) -> tuple[list[Row], list[str]]:
    """Every phase x concurrency x target, interleaved so that the targets of one row
    run close together in time (a busy neighbour hurts them alike). With several rounds,
    every combination runs `rounds` times. Returns (all rows, problems)."""
    rows: list[Row] = []
    problems: list[str] = []
    for rnd in range(rounds):
        for phase, depth in [(p, d) for p in opts.phases for d in opts.depths]:
            specs = {s: s.target.api.phases.get(phase) for s in servers if s.target.api}
            single = any(spec.single for spec in specs.values() if spec)
            for concurrency in [1] if single else opts.concurrency:
                for server, spec in specs.items():
                    if spec is None:
                        continue  # e.g. claim-bulk-delete, which only Zaqar has
                    if depth and (server.target.is_noop or server.target.reference):
                        continue  # depth rows are Burrow's (see README: Queue depth)
                    dead = [s for s in (server, *server.helpers) if not s.alive]
                    if dead:
                        for s in dead:
                            msg = f"{s.target.name} is not running (exit {s.exit_code})"
                            if msg not in problems:
                                problems.append(msg)
                        continue
                    if server.unresponsive:
                        continue
                    t0 = time.monotonic()
                    row = await run_phase(
                        server, spec, concurrency, opts, rows, f"{token}r{rnd}", rnd, depth
                    )
                    rows.append(row)
                    progress(row, time.monotonic() - t0)
                    res = row.result
                    if res is None:
                        continue
                    if (res.hung or res.errors) and not await server.answers():
                        server.unresponsive = True
                        problems.append(
                            f"{server.target.name} stopped answering its ping during "
                            f"{spec.name} c={concurrency}; its remaining phases were skipped"
                        )
                    if res.warmup_errors:
                        row.notes.append(f"errors during warm-up: {res.warmup_errors}")
                    if not res.error_count:
                        continue
                    answers_only = not res.hung and all(k.isdigit() for k in res.errors)
                    if server.target.reference and answers_only:
                        row.notes.append(f"answered errors {res.errors_text()} (its own)")
                    else:
                        problems.append(
                            f"{row.target} {row.phase} c={concurrency}: errors {res.errors_text()}"
                        )
    return rows, problems


def best_rows(rows: list[Row], target_order: list[str]) -> list[Row]:
    """One row per (target, phase, concurrency, depth): the run with the most msgs/s."""
    best: dict[tuple[str, str, int, int], Row] = {}
    for r in rows:
        key = (r.target, r.phase, r.concurrency, r.depth)
        old = best.get(key)
        mine = r.result.msgs_per_s if r.result else -1.0
        if old is None or mine > (old.result.msgs_per_s if old.result else -1.0):
            best[key] = r
    return sorted(
        best.values(),
        key=lambda r: (
            target_order.index(r.target),
            PHASE_ORDER.index(r.phase),
            r.depth,
            r.concurrency,
        ),
    )


async def other_load(seconds: float = 1.0) -> float | None:
    """Cores kept busy by other processes right now (sampled over `seconds`)."""
    before, own0 = machine_busy_seconds(), time.process_time()
    await asyncio.sleep(seconds)
    after, own1 = machine_busy_seconds(), time.process_time()
    if before is None or after is None:
        return None
    return max(0.0, (after - before - (own1 - own0)) / seconds)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 s warm-up, 3 s per phase")
    p.add_argument("--duration", type=float, help="measured seconds per phase [10; quick 3]")
    p.add_argument("--warmup", type=float, help="warm-up seconds per phase [2; quick 1]")
    p.add_argument(
        "--backends",
        default="sqlite,memory",
        help=f"Burrow backends to run: sqlite, memory, {', '.join(ENGINE_BACKENDS)}",
    )
    p.add_argument(
        "--depth",
        default="0",
        help="messages already in the queue before each phase, e.g. 0,1000000 [0]",
    )
    p.add_argument("--no-noop", action="store_true", help="skip the no-op ceiling target")
    p.add_argument("--no-zaqar", action="store_true", help="skip the Zaqar comparison target")
    p.add_argument(
        "--zaqar-workers",
        default=ZAQAR_WORKERS,
        help=f"gunicorn worker model(s) for Zaqar, e.g. sync:1,gevent:2 [{ZAQAR_WORKERS}]",
    )
    p.add_argument("--concurrency", default="16", help="comma-separated, e.g. 1,8,32,128")
    p.add_argument("--phases", default=",".join(PHASE_ORDER), help="comma-separated phase names")
    p.add_argument("--python", default=sys.executable, help="interpreter for the servers")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument(
        "--write", action="store_true", help="rewrite bench/RESULTS.md and bench/throughput.png"
    )
    p.add_argument(
        "--results", default=str(BENCH / "RESULTS.md"), help="file for --write (chart beside it)"
    )
    p.add_argument("--repeat", type=int, default=1, help="rounds; the table keeps the best")
    p.add_argument("--json-out", help="also write every run's raw figures to this JSON file")
    p.add_argument(
        "--profile", help="run the Burrow servers under cProfile; DIR/<target>.prof each"
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (db, logs)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> Outcome:
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    try:
        concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        raise SystemExit(f"bad --concurrency {args.concurrency!r}") from None
    if not concurrency or min(concurrency) < 1 or max(concurrency) > 1024:
        raise SystemExit("--concurrency values must be between 1 and 1024")
    phases = [p for p in args.phases.split(",") if p]
    unknown = [p for p in phases if p not in PHASE_ORDER]
    if unknown:
        raise SystemExit(f"unknown phase(s) {unknown}; known: {', '.join(PHASE_ORDER)}")
    if not 1 <= args.repeat <= 10:
        raise SystemExit("--repeat must be between 1 and 10")
    try:
        depths = list(dict.fromkeys(int(d) for d in args.depth.split(",") if d.strip()))
    except ValueError:
        raise SystemExit(f"bad --depth {args.depth!r}") from None
    if not depths or min(depths) < 0 or max(depths) > MAX_DEPTH:
        raise SystemExit(f"--depth values must be between 0 and {MAX_DEPTH:,}")
    if args.write and importlib.util.find_spec("matplotlib") is None:
        raise SystemExit("--write draws a chart with matplotlib: pip install -e '.[bench]'")
    wanted = [] if args.no_zaqar else args.zaqar_workers.split(",")
    models = list(dict.fromkeys(ZaqarWorkers.parse(m) for m in wanted))
    if models:
        require_zaqar()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    known = ["sqlite", "memory", *ENGINE_BACKENDS]
    if set(backends) - set(known):
        raise SystemExit(f"unknown backend(s) in {args.backends!r}; choose from {', '.join(known)}")
    opts = Options(warmup, duration, concurrency, phases, args.verbose, depths)
    profile: Path | None = args.profile  # (made in main)
    pinning = choose_pinning(args.server_cpu, args.client_cpu, not args.no_pin)
    print(f"# {pinning.describe()}", flush=True)
    busy = await other_load()
    if busy is not None:
        print(f"# before starting: other processes keep {busy:.2f} cores busy", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="burrow-bench-"))
    # Stops the engines (after the servers, in the block) and then removes `tmp`.
    with contextlib.ExitStack() as engines:
        if args.keep_tmp:
            engines.callback(print, f"# temp dir kept: {tmp}")
        else:
            engines.callback(shutil.rmtree, tmp, ignore_errors=True)
        targets = [
            engine_target(args.python, b, tmp, engines, pinning.server_cpu, profile)
            if b in ENGINE_BACKENDS
            else burrow_target(args.python, b, tmp, profile)
            for b in backends
        ]
        if not args.no_noop:
            targets.append(noop_target(args.python))
        servers = [Server(t, pinning, tmp / f"{t.name}.log") for t in targets]
        for model in models:
            name = "zaqar" if len(models) == 1 else f"zaqar-{model.kind}{model.count}"
            servers.append(zaqar_server(model, name, tmp, pinning))
        # Helpers first: a server's readiness may depend on them; stopped in reverse order.
        processes = [p for s in servers for p in (*s.helpers, s)]
        rows: list[Row] = []
        problems: list[str] = []
        remarks: list[str] = []  # about the run as a whole, for the notes
        try:
            # All targets run side by side (idle ones cost nothing) so phases interleave.
            for proc in processes:
                proc.start()
                print(f"# {proc.target.name}: pid {proc.pid}, port {proc.port}", flush=True)
            ready: list[Server] = []
            for proc in processes:
                try:
                    await proc.wait_ready()
                    ready.append(proc)
                except RuntimeError as exc:
                    problems.append(str(exc))
                    print(f"# {exc}", file=sys.stderr, flush=True)
            live = [s for s in servers if all(p in ready for p in (*s.helpers, s))]
            rows, more = await run_all(live, opts, args.repeat, f"{int(time.time()):x}")
            problems += more
        finally:
            for server in reversed(processes):
                how = server.stop()
                print(f"# {server.target.name}: {how}", flush=True)
                if server.killed:
                    problems.append(f"{server.target.name} {how}")
                errors = server.log_errors()
                if errors and server.target.reference:
                    remarks.append(f"{server.target.name} logged {errors} (its own errors)")
                elif errors:
                    problems.append(
                        f"{server.target.name} logged {errors} (see the log tail above)"
                    )
                if args.verbose or (errors and not server.target.reference):
                    print(f"# {server.target.name} log (tail):\n{server.log_tail(30)}", flush=True)

    zaqar = None
    if models:
        zaqar = f"{zaqar_versions()}; gunicorn worker model {', '.join(map(str, models))}"
    order = [s.target.name for s in servers]
    return Outcome(rows, problems, remarks, busy, order, opts, pinning, zaqar)


@dataclass
class Outcome:
    rows: list[Row]
    problems: list[str]
    remarks: list[str]
    busy: float | None
    target_order: list[str]
    opts: Options
    pinning: Pinning
    zaqar: str | None  # what served Zaqar, when it ran


def report(out: Outcome, args: argparse.Namespace, loop_name: str, command: str) -> int:
    """Print the tables (and write the files asked for); returns the exit status."""
    rows, problems, busy, opts, pinning = out.rows, out.problems, out.busy, out.opts, out.pinning
    warmup, duration = opts.warmup, opts.duration
    table = best_rows(rows, out.target_order)
    surface = at_depth(table)  # ratios, goals and the chart compare rows at depth 0
    extra = tails.sections(table)
    machine = machine_notes(pinning.describe(), loop_name, args.python)
    if out.zaqar is not None:
        machine.append(f"Zaqar: {out.zaqar}")
    if busy is not None:
        machine.append(f"other processes kept {busy:.2f} cores busy just before the run")
    print()
    print("\n".join(f"- {m}" for m in machine))
    best = f", best of {args.repeat} rounds" if args.repeat > 1 else ""
    print(f"\nwarm-up {warmup:g} s, measured {duration:g} s per row{best}\n")
    print(fmt_table(table))
    for title, text in [*ratio_sections(surface), *extra]:
        print(f"\n{title}:\n\n{text}")
    notes = fmt_notes(rows, out.remarks)
    if notes:
        print(f"\nNotes:\n{notes}")
    if problems:
        print("\nProblems:\n" + "\n".join(f"- {p}" for p in problems))
    if args.json_out:
        dump = [
            {"target": r.target, "phase": r.phase, "concurrency": r.concurrency}
            | {"depth": r.depth, "notes": r.notes}
            | ({"result": r.result.to_json()} if r.result else {})
            for r in rows
        ]
        Path(args.json_out).write_text(json.dumps(dump, indent=1))
        print(f"\nwrote {args.json_out}")
    if args.write:
        results = Path(args.results)
        chart = results.with_name(CHART)
        write_chart(chart, surface, PHASE_ORDER)
        write_results(
            results,
            command,
            machine,
            table,
            rows,
            (opts.warmup, opts.duration),
            args.repeat,
            problems,
            out.remarks,
            chart=CHART,
            sections=extra,
        )
        print(f"\nwrote {results} and {chart}")
    print(f"\nPerformance goals:\n\n{fmt_goals(surface)}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        args.profile = Path(args.profile).resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    loop_name = install_uvloop()
    shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "bench.run", *shown])
    with terminate_on_sigterm():
        try:
            outcome = asyncio.run(amain(args))
        except KeyboardInterrupt:
            print("\ninterrupted; servers stopped", file=sys.stderr)
            return 130
    return report(outcome, args, loop_name, command)


if __name__ == "__main__":
    sys.exit(main())
