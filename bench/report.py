"""The benchmark's report: result rows, tables, goals, bench/RESULTS.md and its chart.

Targets are told apart by name: `noop` is the HTTP ceiling, `zaqar…` is OpenStack Zaqar,
any other is a Burrow backend.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.loadgen import LoadResult


@dataclass
class Row:
    target: str
    phase: str
    concurrency: int
    result: LoadResult | None
    notes: list[str] = field(default_factory=list)
    round: int = 0
    depth: int = 0  # messages already in the queue when the phase started


def at_depth(rows: list[Row], depth: int = 0) -> list[Row]:
    """The rows measured over a queue of `depth` messages (ratios, goals and the chart
    compare rows at depth 0)."""
    return [r for r in rows if r.depth == depth]


def pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.0%}"


def fmt_table(rows: list[Row]) -> str:
    out = [
        "| target | phase | concurrency | depth | req/s | msgs/s | p50 ms | p99 ms | max ms "
        "| errors | server CPU | loadgen CPU | other CPU |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for r in rows:
        res = r.result
        if res is None:
            out.append(
                f"| {r.target} | {r.phase} | {r.concurrency} | {r.depth:,} "
                "| - | - | - | - | - | failed | - | - | - |"
            )
            continue
        out.append(
            f"| {r.target} | {r.phase} | {r.concurrency} | {r.depth:,} | {res.req_per_s:,.0f} | "
            f"{res.msgs_per_s:,.0f} | {res.p50_ms:.2f} | {res.p99_ms:.2f} | {res.max_ms:.1f} | "
            f"{res.errors_text()} | {pct(res.server_cpu)} | {pct(res.client_cpu)} "
            f"| {pct(res.other_cpu)} |"
        )
    return "\n".join(out)


def is_zaqar(target: str) -> bool:
    return target.startswith("zaqar")


def is_burrow(target: str) -> bool:
    return target != "noop" and not is_zaqar(target)


def fmt_ratios(
    rows: list[Row], bases: list[str], percent: bool, mine: list[str] | None = None
) -> str:
    """msgs/s of each Burrow target (or of each in `mine`) over each target in `bases`, per
    phase and concurrency (as a percentage, or as a factor like `12.3x`)."""
    result = {(r.target, r.phase, r.concurrency): r.result for r in rows if r.result}
    if mine is None:
        mine = [t for t in dict.fromkeys(r.target for r in rows) if is_burrow(t)]
    pairs = [(t, b) for t in mine for b in bases]
    if not pairs or not any(key[0] in bases for key in result):
        return "(no ratios: no Burrow target, or none to compare with, was run)"
    keys = list(dict.fromkeys((r.phase, r.concurrency) for r in rows if r.target in mine))
    labels = [f"{t} / {'no-op' if b == 'noop' else b}" for t, b in pairs]
    out = [
        "| phase | concurrency | " + " | ".join(labels) + " |",
        "|---|--:|" + "--:|" * len(pairs),
    ]
    for phase, conc in keys:
        cells = []
        for t, b in pairs:
            num, base = result.get((t, phase, conc)), result.get((b, phase, conc))
            if num is None or base is None or base.msgs_per_s == 0:
                cells.append("-")
            else:
                ratio = num.msgs_per_s / base.msgs_per_s
                cells.append(f"{ratio:.0%}" if percent else f"{ratio:.1f}x")
        out.append(f"| {phase} | {conc} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def ratio_sections(rows: list[Row]) -> list[tuple[str, str]]:
    """(title, table) of each ratio table: Burrow / no-op, and Burrow / Zaqar if it ran."""
    sections = [("Burrow / no-op (msgs/s)", fmt_ratios(rows, ["noop"], percent=True))]
    zaqar = [t for t in dict.fromkeys(r.target for r in rows) if is_zaqar(t)]
    if zaqar:
        sections.append(("Burrow / Zaqar (msgs/s)", fmt_ratios(rows, zaqar, percent=False)))
    return sections


def write_chart(path: Path, rows: list[Row], phase_order: list[str]) -> None:
    """A PNG of msgs/s against concurrency: one panel per phase, one line per target."""
    import matplotlib  # the optional `bench` extra; checked before the run starts

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    done = [(r, r.result) for r in rows if r.result is not None]
    present = {r.phase for r, _ in done}
    phases = [p for p in phase_order if p in present]
    if not phases:
        return
    # One colour per target across all panels (some panels lack some targets).
    colours = {t: f"C{i}" for i, t in enumerate(dict.fromkeys(r.target for r, _ in done))}
    cols = min(3, len(phases))
    grid_rows = math.ceil(len(phases) / cols)
    fig, axes = plt.subplots(grid_rows, cols, figsize=(5 * cols, 3.8 * grid_rows), squeeze=False)
    for ax in axes.flat[len(phases) :]:
        ax.set_visible(False)
    handles = {}  # target → its line, for one legend
    for ax, phase in zip(axes.flat, phases, strict=False):
        mine = [(r, res) for r, res in done if r.phase == phase]
        for target, colour in colours.items():
            points = sorted(
                (r.concurrency, res.msgs_per_s) for r, res in mine if r.target == target
            )
            if points:
                xs, ys = zip(*points, strict=True)
                (handles[target],) = ax.plot(xs, ys, marker="o", color=colour, label=target)
        concurrencies = sorted({r.concurrency for r, _ in mine})
        ax.set_xscale("log", base=2)
        ax.set_xticks(concurrencies, [str(c) for c in concurrencies])
        # Log scale over whole decades: Burrow and Zaqar differ by an order of magnitude.
        rates = [res.msgs_per_s for _, res in mine if res.msgs_per_s > 0]
        if rates:
            low, high = math.floor(math.log10(min(rates))), math.ceil(math.log10(max(rates)))
            ax.set_yscale("log")
            ax.set_ylim(10**low, 10 ** max(high, low + 1))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(phase)
        ax.set_xlabel("concurrency (connections)")
        ax.set_ylabel("msgs/s")
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(
        list(handles.values()), list(handles), loc="upper center", ncol=len(handles), frameon=False
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- goals


@dataclass(frozen=True)
class Verdict:
    """One goal checked against the rows of a run; `met` is None when they lack its rows."""

    goal: str
    measured: str
    met: bool | None

    def status(self) -> str:
        return "not run" if self.met is None else "**met**" if self.met else "**NOT met**"


@dataclass(frozen=True)
class Base:
    """What a ratio goal divides by: the best of the targets `match` accepts, per concurrency."""

    label: str
    match: Callable[[str], bool]
    percent: bool

    def fmt(self, ratio: float) -> str:
        # Rounded down, so that a ratio just under its goal never shows as the goal.
        if self.percent:
            return f"{math.floor(ratio * 100)}%"
        return f"{math.floor(ratio * 10) / 10:.1f}x"

    def goal_text(self, goal: float) -> str:
        return f"{goal:.0%} of {self.label}" if self.percent else f"{goal:g}x {self.label}"


ZAQAR = Base("Zaqar", is_zaqar, percent=False)
NOOP = Base("the no-op ceiling", "noop".__eq__, percent=True)
P99_LIMIT_MS = 10.0
# The foundation issue's absolute goals: best msgs/s over the concurrencies run.
FOUNDATION_GOALS = {("sqlite", "put-1"): 10_000.0, ("sqlite", "claim-delete"): 8_000.0}


def msgs(row: Row) -> float:
    return row.result.msgs_per_s if row.result else 0.0


def by_concurrency(rows: list[Row], phase: str, match: Callable[[str], bool]) -> dict[int, Row]:
    """The measured `phase` row with the most msgs/s among the targets `match` accepts, per
    concurrency (in increasing order)."""
    best: dict[int, Row] = {}
    for r in sorted(rows, key=lambda r: r.concurrency):
        if r.phase == phase and r.result is not None and match(r.target):
            old = best.get(r.concurrency)
            if old is None or msgs(r) > msgs(old):
                best[r.concurrency] = r
    return best


def ratio_goal(rows: list[Row], phase: str, target: str, base: Base, goal: float) -> Verdict:
    """`target`'s msgs/s over `base`'s at the same concurrency: the best ratio, then the others."""
    title = f"{phase} on {target} ≥ {base.goal_text(goal)}"
    mine = by_concurrency(rows, phase, target.__eq__)
    theirs = by_concurrency(rows, phase, base.match)
    ratios = {
        c: msgs(r) / msgs(theirs[c]) for c, r in mine.items() if c in theirs and msgs(theirs[c])
    }
    if not ratios:
        return Verdict(title, f"needs {phase} rows of {target} and {base.label}", None)
    c = max(ratios, key=lambda k: ratios[k])
    measured = (
        f"{base.fmt(ratios[c])} at c={c} ({target} {msgs(mine[c]):,.0f} msgs/s, "
        f"{theirs[c].target} {msgs(theirs[c]):,.0f})"
    )
    others = [f"{base.fmt(ratio)} at c={k}" for k, ratio in ratios.items() if k != c]
    if others:
        measured += f"; {', '.join(others)}"
    return Verdict(title, measured, ratios[c] >= goal)


def rate_goal(rows: list[Row], phase: str, target: str, goal: float) -> Verdict:
    """`target`'s best msgs/s in `phase`, over the concurrencies run."""
    title = f"{phase} on {target} ≥ {goal:,.0f} msgs/s"
    mine = by_concurrency(rows, phase, target.__eq__)
    if not mine:
        return Verdict(title, f"needs {phase} rows of {target}", None)
    best = max(mine.values(), key=msgs)
    return Verdict(title, f"{msgs(best):,.0f} msgs/s at c={best.concurrency}", msgs(best) >= goal)


def latency_goal(rows: list[Row], phase: str, target: str) -> Verdict:
    """p99 of the lowest concurrency that reaches half of `target`'s peak msgs/s in `phase`."""
    title = f"{phase} on {target}: p99 < {P99_LIMIT_MS:g} ms at half the peak rate"
    mine = by_concurrency(rows, phase, target.__eq__)
    if not mine:
        return Verdict(title, f"needs {phase} rows of {target}", None)
    peak = max(mine.values(), key=msgs)
    row = next(r for r in mine.values() if msgs(r) >= msgs(peak) / 2)
    assert row.result is not None  # by_concurrency keeps measured rows only
    measured = (
        f"p99 {row.result.p99_ms:.2f} ms at c={row.concurrency} ({msgs(row):,.0f} msgs/s, "
        f"{msgs(row) / msgs(peak):.0%} of the peak {msgs(peak):,.0f} at c={peak.concurrency})"
    )
    return Verdict(title, measured, row.result.p99_ms < P99_LIMIT_MS)


def performance_goals(rows: list[Row]) -> list[Verdict]:
    """The performance issue's targets (ratios within one run, where a ratio is asked)."""
    return [
        ratio_goal(rows, "put-1", "sqlite", ZAQAR, 15.0),
        ratio_goal(rows, "put-1", "sqlite", NOOP, 0.40),
        rate_goal(rows, "put-batch-10", "memory", 100_000.0),
        rate_goal(rows, "put-batch-10", "sqlite", 50_000.0),
        ratio_goal(rows, "claim-delete", "sqlite", ZAQAR, 10.0),
        ratio_goal(rows, "claim-delete", "memory", ZAQAR, 10.0),
        latency_goal(rows, "put-1", "sqlite"),
        latency_goal(rows, "claim-delete", "sqlite"),
    ]


def fmt_goals(rows: list[Row]) -> str:
    """The performance issue's targets as a table, then the foundation issue's goals."""
    out = [
        "Targets of the performance issue (Zaqar: the best Zaqar target at the same concurrency):",
        "",
        "| goal | measured | verdict |",
        "|---|---|---|",
    ]
    out += [f"| {v.goal} | {v.measured} | {v.status()} |" for v in performance_goals(rows)]
    out += ["", "Goals of the foundation issue (best over the concurrencies run):", ""]
    for (target, phase), goal in FOUNDATION_GOALS.items():
        v = rate_goal(rows, phase, target, goal)
        out.append(f"- {v.goal}: {v.measured}: {v.status()}")
    return "\n".join(out)


def fmt_notes(rows: list[Row], remarks: list[str]) -> str:
    """The rows' notes, then `remarks` about the run as a whole."""
    out = []
    for r in rows:
        for note in r.notes:
            where = f" depth {r.depth:,}" if r.depth else ""
            where += f" (round {r.round + 1})" if r.round else ""
            out.append(f"- {r.target} {r.phase} c={r.concurrency}{where}: {note}")
    out += [f"- {remark}" for remark in remarks]
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


def replace_section(path: Path, start: str, end: str, text: str) -> None:
    """Replace the block between the markers `start` and `end` in `path` with `text`, or
    append it at the end (below the hand-written marker, which `run.py --write` keeps)."""
    old = path.read_text()
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)


KEEP_MARKER = "<!-- Everything below this line is hand-written and kept by --write. -->"
ZAQAR_TEXT = """
The `zaqar` rows are OpenStack Zaqar (v2 API) on a local redis-server, under gunicorn,
pinned like the other servers, driven by the same load generator with the same bodies
and batch sizes (its server CPU includes the gunicorn workers and redis-server); it has
`claim-bulk-delete` (claim 10, then one bulk DELETE) where Burrow has none.
"""


def write_results(
    path: Path,
    command: str,
    machine: list[str],
    table: list[Row],
    rows: list[Row],
    timing: tuple[float, float],
    rounds: int,
    problems: list[str],
    remarks: list[str],
    chart: str | None = None,
    sections: list[tuple[str, str]] | None = None,
) -> None:
    """Rewrite `path`, keeping whatever follows KEEP_MARKER in the old file; `chart` is
    the file name of the throughput chart beside it; `sections` are (title, text) that
    follow the ratio tables."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    warmup, duration = timing
    zaqar = any(is_zaqar(r.target) for r in table)
    kept = ""
    with contextlib.suppress(OSError):
        old = path.read_text()
        if KEEP_MARKER in old:
            kept = old.split(KEEP_MARKER, 1)[1].strip("\n")
    best = f"; best of {rounds} interleaved rounds" if rounds > 1 else ""
    notes = fmt_notes(rows, remarks)
    surface = at_depth(table)
    ratios = "\n\n".join(f"## {title}\n\n{text}" for title, text in ratio_sections(surface))
    if chart is not None:
        ratios += f"\n\n![msgs/s against concurrency]({chart})"
    ratios += "".join(f"\n\n## {title}\n\n{text}" for title, text in sections or [])
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
{ZAQAR_TEXT if zaqar else ""}
## Machine

{chr(10).join(f"- {m}" for m in machine)}

## Results

{fmt_table(table)}

{ratios}

## Performance goals

{fmt_goals(surface)}
"""
    if notes:
        text += f"\n## Run notes\n\n{notes}\n"
    if problems:
        text += "\n## Problems seen\n\n" + "\n".join(f"- {p}" for p in problems) + "\n"
    text += f"\n{KEEP_MARKER}\n"
    if kept:
        text += f"\n{kept}\n"
    path.write_text(text)
