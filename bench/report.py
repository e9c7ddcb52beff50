"""The benchmark's report: result rows, tables, goals, and bench/RESULTS.md."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from loadgen import LoadResult

TARGETS_GOAL = {("sqlite", "put-1"): 10_000.0, ("sqlite", "claim-delete"): 8_000.0}


@dataclass
class Row:
    target: str
    phase: str
    concurrency: int
    result: LoadResult | None
    notes: list[str] = field(default_factory=list)
    round: int = 0


def pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.0%}"


def fmt_table(rows: list[Row]) -> str:
    out = [
        "| target | phase | concurrency | req/s | msgs/s | p50 ms | p99 ms | max ms | errors "
        "| server CPU | loadgen CPU | other CPU |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for r in rows:
        res = r.result
        if res is None:
            out.append(
                f"| {r.target} | {r.phase} | {r.concurrency} "
                "| - | - | - | - | - | failed | - | - | - |"
            )
            continue
        out.append(
            f"| {r.target} | {r.phase} | {r.concurrency} | {res.req_per_s:,.0f} | "
            f"{res.msgs_per_s:,.0f} | {res.p50_ms:.2f} | {res.p99_ms:.2f} | {res.max_ms:.1f} | "
            f"{res.errors_text()} | {pct(res.server_cpu)} | {pct(res.client_cpu)} "
            f"| {pct(res.other_cpu)} |"
        )
    return "\n".join(out)


def fmt_ratios(rows: list[Row]) -> str:
    noop = {(r.phase, r.concurrency): r.result for r in rows if r.target == "noop" and r.result}
    targets = [t for t in dict.fromkeys(r.target for r in rows) if t != "noop"]
    if not noop or not targets:
        return "(no ratios: the no-op target or a Burrow target was not run)"
    keys = list(dict.fromkeys((r.phase, r.concurrency) for r in rows if r.target != "noop"))
    head = "| phase | concurrency | " + " | ".join(f"{t} / no-op" for t in targets) + " |"
    out = [head, "|---|--:|" + "--:|" * len(targets)]
    for phase, conc in keys:
        base = noop.get((phase, conc))
        cells = []
        for t in targets:
            mine = next(
                (r.result for r in rows if (r.target, r.phase, r.concurrency) == (t, phase, conc)),
                None,
            )
            if base is None or mine is None or base.msgs_per_s == 0:
                cells.append("-")
            else:
                cells.append(f"{mine.msgs_per_s / base.msgs_per_s:.0%}")
        out.append(f"| {phase} | {conc} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def fmt_goals(rows: list[Row]) -> str:
    out = []
    for (target, phase), goal in TARGETS_GOAL.items():
        got = [
            r.result.msgs_per_s
            for r in rows
            if r.target == target and r.phase == phase and r.result is not None
        ]
        if not got:
            continue
        best = max(got)
        verdict = "met" if best >= goal else "NOT met"
        out.append(
            f"- {phase} on {target}: goal ≥ {goal:,.0f} msgs/s, best measured "
            f"{best:,.0f} msgs/s: **{verdict}**"
        )
    return "\n".join(out) if out else "(no goal phases were run)"


def fmt_notes(rows: list[Row]) -> str:
    out = []
    for r in rows:
        for note in r.notes:
            where = f" (round {r.round + 1})" if r.round else ""
            out.append(f"- {r.target} {r.phase} c={r.concurrency}{where}: {note}")
    return "\n".join(out)


def machine_notes(pinning: str, loop_name: str, python: str) -> list[str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    server_py = subprocess.run(
        [python, "-c", "import sys, uvicorn; print(sys.version.split()[0], uvicorn.__version__)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.split()
    py = platform.python_version()
    server_version, uvicorn_version = [*server_py, "?", "?"][:2]
    return [
        f"CPU: nproc {os.cpu_count()}, {model}{mem}",
        f"kernel: {platform.system()} {platform.release()}",
        f"Python {py} (load generator, {loop_name} loop); server Python {server_version}, "
        f"uvicorn {uvicorn_version} (uvloop, httptools, no access log, 1 worker)",
        f"pinning: {pinning}",
    ]


KEEP_MARKER = "<!-- Everything below this line is hand-written and kept by --write. -->"


def write_results(
    path: Path,
    command: str,
    machine: list[str],
    table: list[Row],
    rows: list[Row],
    timing: tuple[float, float],
    rounds: int,
    problems: list[str],
) -> None:
    """Rewrite `path`, keeping whatever follows KEEP_MARKER in the old file."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    warmup, duration = timing
    kept = ""
    with contextlib.suppress(OSError):
        old = path.read_text()
        if KEEP_MARKER in old:
            kept = old.split(KEEP_MARKER, 1)[1].strip("\n")
    best = f"; best of {rounds} interleaved rounds" if rounds > 1 else ""
    notes = fmt_notes(rows)
    text = f"""# Burrow benchmark results

Measured {now} with:

    {command}

Warm-up {warmup:g} s (not counted), measured {duration:g} s per row{best}. Closed
loop: each connection sends its next request when the previous answer arrives. Bodies are
100 bytes; batches, claims and pops move 10 messages per request; `msgs/s` counts messages
put, claimed-and-deleted, or popped. The no-op target is a raw ASGI app on the same stack
(uvicorn + uvloop + httptools, 1 worker): the HTTP ceiling. The targets run side by side
and each row runs them one after the other, so a busy neighbour hurts them alike.
CPU columns are cores used during the measured window (100% = one core): the server
process, the load generator, and everything else on the machine. See `bench/README.md`.

## Machine

{chr(10).join(f"- {m}" for m in machine)}

## Results

{fmt_table(table)}

## Burrow / no-op (msgs/s)

{fmt_ratios(table)}

## Performance goals

{fmt_goals(table)}
"""
    if notes:
        text += f"\n## Run notes\n\n{notes}\n"
    if problems:
        text += "\n## Problems seen\n\n" + "\n".join(f"- {p}" for p in problems) + "\n"
    text += f"\n{KEEP_MARKER}\n"
    if kept:
        text += f"\n{kept}\n"
    path.write_text(text)
