"""`burrow serve --workers N` on one SQLite file: what a message costs the server with
1, 2, 4, … workers, and the throughput that gives when each worker has a core.

    python -m bench.workers                       # 1 and 2 workers, put-1 and claim-delete
    python -m bench.workers --cores 1,2,4,8 --write

Each row runs the phase (bench/phases.py) against a server of N workers over a fresh
database, through the closed-loop load generator, and reads the CPU time of the whole
server (supervisor and workers) over the measured window. Method (bench/README.md,
"Workers"): the server's CPU per message is what coordination between the workers
costs (the write lock, the wake-up datagrams, SQLite re-reading pages another worker
changed); the load generator's CPU is not in it. Where the machine has a core for each
worker and more for the generator, the server gets cores 0..N-1 and the rows show the
throughput directly. Where it has not (2 cores: the server shares core 0), the rows show
the CPU-bound ceiling N / (CPU per message), the throughput N cores would give if the
workers' turns at the write lock do not bound it first (the lock is held only for the
SQL of a group, not its fsync).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import install_uvloop
from bench.phases import PHASES
from bench.report import replace_section
from bench.run import Options, progress, run_phase
from bench.servers import Pinning, Server, burrow_serve, choose_pinning, terminate_on_sigterm

RESULTS = Path(__file__).with_name("RESULTS.md")
START, END = "<!-- workers:start -->", "<!-- workers:end -->"


@dataclass
class Measured:
    workers: int
    phase: str
    concurrency: int
    msgs_per_s: float
    server_cores: float  # CPU seconds per second, the whole server
    client_cores: float
    p99_ms: float

    @property
    def cpu_us(self) -> float:
        return self.server_cores / self.msgs_per_s * 1e6 if self.msgs_per_s else float("nan")

    @property
    def ceiling(self) -> float:
        """Messages/s with a core per worker, bound by the server's CPU alone."""
        return self.workers / self.cpu_us * 1e6


def pinning_for(workers: int, pin: bool, cpus: list[int]) -> tuple[Pinning, list[str]]:
    """The server on cores 0..N-1 and the generator on the rest when there are enough;
    else the server on core 0 and the generator on core 1 (the 2-core case). `cpus` are
    the ones this process was given, read before the first row: each row pins this
    process (the generator) anew, from all of them."""
    if not pin or len(cpus) < 2:
        return Pinning(None, None, None), []
    os.sched_setaffinity(0, cpus)  # (not the cores the previous row left it)
    if len(cpus) > workers > 1 and shutil.which("taskset"):
        os.sched_setaffinity(0, set(cpus[workers:]))
        return Pinning(None, None, None), ["taskset", "-c", ",".join(map(str, cpus[:workers]))]
    return choose_pinning(cpus[0], cpus[1], True), []


def concurrencies(args: argparse.Namespace, workers: int) -> list[int]:
    """The connections of each row of `workers`: one worker also runs at C / N for
    each N, the load each of N workers sees (the baseline that tells what sharing the
    file costs from what serving fewer connections per process costs)."""
    given: list[int] = args.concurrency
    if workers != 1:
        return given
    split = {c // n for c in args.concurrency for n in args.cores if c // n >= 1}
    return sorted(set(given) | split)


async def measure(args: argparse.Namespace, tmp: Path) -> list[Measured]:
    opts = Options(args.warmup, args.duration, args.concurrency, args.phases, args.verbose)
    out: list[Measured] = []
    cpus = sorted(os.sched_getaffinity(0))
    for workers in args.cores:
        pinning, prefix = pinning_for(workers, not args.no_pin, cpus)
        target = burrow_serve(
            sys.executable,
            f"w{workers}",
            f"sqlite:///{tmp}/w{workers}.db",
            "--workers",
            str(workers),
        )
        target.command = [*prefix, *target.command]
        server = Server(target, pinning, tmp / f"w{workers}.log")
        server.start()
        try:
            await server.wait_ready()
            for phase in args.phases:
                for concurrency in concurrencies(args, workers):
                    started = time.monotonic()
                    row = await run_phase(server, PHASES[phase], concurrency, opts, [], "wk")
                    progress(row, time.monotonic() - started)
                    res = row.result
                    if res is None or res.server_cpu is None or res.error_count:
                        raise RuntimeError(f"{workers} workers, {phase}: {row.notes}")
                    out.append(
                        Measured(
                            workers,
                            phase,
                            concurrency,
                            res.msgs_per_s,
                            res.server_cpu,
                            res.client_cpu,
                            res.p99_ms,
                        )
                    )
        finally:
            print(f"# {workers} workers: {server.stop()}", flush=True)
    return out


def table(rows: list[Measured]) -> str:
    one = {(r.phase, r.concurrency): r for r in rows if r.workers == 1}
    lines = [
        "| workers | phase | conns | msgs/s | server cores | gen cores | p99 ms "
        "| server CPU µs/msg | vs 1 worker | vs 1 worker at conns / N "
        "| ceiling msgs/s (N cores) | vs 1 worker |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        base = one.get((r.phase, r.concurrency))
        per_worker = one.get((r.phase, r.concurrency // r.workers)) if r.workers > 1 else None
        lines.append(
            f"| {r.workers} | {r.phase} | {r.concurrency} | {r.msgs_per_s:,.0f} "
            f"| {r.server_cores:.2f} | {r.client_cores:.2f} | {r.p99_ms:.1f} | {r.cpu_us:.0f} "
            f"| {ratio(r.cpu_us, base.cpu_us if base else None)} "
            f"| {ratio(r.cpu_us, per_worker.cpu_us if per_worker else None)} "
            f"| {r.ceiling:,.0f} | {ratio(r.ceiling, base.ceiling if base else None)} |"
        )
    return "\n".join(lines)


def ratio(value: float, baseline: float | None) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"


def section(rows: list[Measured], command: str) -> str:
    return (
        "## Workers on one SQLite file\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{os.cpu_count()} CPUs with:\n\n    {command}\n\n"
        "Server CPU is the whole server's (supervisor and workers), over the measured "
        "window; the ceiling is N / (server CPU per message), the rate N cores would give "
        'bound by the server\'s CPU alone (method: bench/README.md, "Workers"). '
        "Targets: CPU per message with 2 workers within 15% of 1 worker's (vs 1 worker "
        "≤ 1.15x), and ≥ 1.6x one worker's throughput with a core each. "
        'The column "vs 1 worker at conns / N" compares with one worker serving as many '
        "connections as each of the N does: what sharing the file costs, apart from each "
        "process's smaller groups."
        "\n\n" + table(rows)
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", default="1,2", help="worker counts, e.g. 1,2,4,8")
    parser.add_argument("--concurrency", default="32,128")
    parser.add_argument("--phases", default="put-1,claim-delete")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--write", action="store_true", help="replace the section in RESULTS.md")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.cores = [int(n) for n in args.cores.split(",")]
    args.concurrency = [int(n) for n in args.concurrency.split(",")]
    args.phases = args.phases.split(",")
    unknown = set(args.phases) - set(PHASES)
    if unknown or min(args.cores) < 1:
        parser.error(f"unknown phases {sorted(unknown)}" if unknown else "--cores must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_uvloop()
    tmp = Path(tempfile.mkdtemp(prefix="burrow-workers-"))
    try:
        with terminate_on_sigterm():
            rows = asyncio.run(measure(args, tmp))
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    command = "python -m bench.workers " + " ".join(sys.argv[1:] if argv is None else argv)
    print(table(rows))
    if args.write:
        replace_section(RESULTS, START, END, section(rows, command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
