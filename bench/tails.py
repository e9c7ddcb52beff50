"""What queue depth and latency tails do to a run's Burrow rows: two report sections.

- Depth: each row measured over a queue already holding N messages (`--depth`) against
  the same row over an empty one; the goal is msgs/s within 20% of depth 0. The server's
  CPU per message is shown beside it: on a shared machine, where the server does not
  get its core to itself, it tells what depth costs better than msgs/s does.
- Tails: the worst max and p99 latency of each Burrow target's rows up to 32
  connections, at every depth run; the goal is max <= 50 ms and p99 <= 10 ms.
"""

from __future__ import annotations

from bench.report import Row, Verdict, is_burrow, msgs

DEPTH_SPREAD = 0.20  # msgs/s at depth N within this fraction of depth 0
TAIL_CONCURRENCY = 32  # the tail goal holds up to this many connections
TAIL_MAX_MS = 50.0
TAIL_P99_MS = 10.0


def depth_ratios(rows: list[Row]) -> list[tuple[Row, Row, float]]:
    """(row at depth 0, the same row at depth N > 0, msgs/s ratio N / 0) of Burrow rows."""
    base = {
        (r.target, r.phase, r.concurrency): r
        for r in rows
        if r.depth == 0 and r.result is not None and is_burrow(r.target)
    }
    out = []
    for r in rows:
        zero = base.get((r.target, r.phase, r.concurrency))
        if r.depth and r.result is not None and zero is not None and msgs(zero):
            out.append((zero, r, msgs(r) / msgs(zero)))
    return out


def fmt_depths(rows: list[Row]) -> str | None:
    """The depth table, or None when no row ran at a depth above 0."""
    pairs = depth_ratios(rows)
    if not pairs:
        return None
    out = [
        "| target | phase | concurrency | depth | msgs/s at 0 | msgs/s at depth | depth / 0 "
        f"| within {DEPTH_SPREAD:.0%} | server µs/msg at 0 | at depth |",
        "|---|---|--:|--:|--:|--:|--:|---|--:|--:|",
    ]
    for zero, deep, ratio in pairs:
        ok = "yes" if abs(ratio - 1) <= DEPTH_SPREAD else "**no**"
        out.append(
            f"| {deep.target} | {deep.phase} | {deep.concurrency} | {deep.depth:,} | "
            f"{msgs(zero):,.0f} | {msgs(deep):,.0f} | {ratio:.0%} | {ok} | "
            f"{_cpu_per_msg(zero)} | {_cpu_per_msg(deep)} |"
        )
    return "\n".join(out)


def _cpu_per_msg(row: Row) -> str:
    """Server CPU microseconds per message moved ("?" when unknown)."""
    res = row.result
    if res is None or res.server_cpu is None or res.server_cpu <= 0 or not msgs(row):
        return "?"
    return f"{res.server_cpu / msgs(row) * 1e6:.0f}"


def tail_verdicts(rows: list[Row]) -> list[Verdict]:
    """Per Burrow target: its worst max and p99 over the rows up to TAIL_CONCURRENCY."""
    verdicts = []
    for target in dict.fromkeys(r.target for r in rows if is_burrow(r.target)):
        mine = [
            (r, r.result)
            for r in rows
            if r.target == target and r.result is not None and r.concurrency <= TAIL_CONCURRENCY
        ]
        if not mine:
            continue
        worst_max = max(mine, key=lambda pair: pair[1].max_ms)
        worst_p99 = max(mine, key=lambda pair: pair[1].p99_ms)
        missed = [
            f"{r.phase} c={r.concurrency} depth {r.depth:,} (p99 {res.p99_ms:.1f}, "
            f"max {res.max_ms:.1f})"
            for r, res in mine
            if res.max_ms > TAIL_MAX_MS or res.p99_ms > TAIL_P99_MS
        ]
        measured = (
            f"worst max {worst_max[1].max_ms:.1f} ms ({_where(worst_max[0])}), worst p99 "
            f"{worst_p99[1].p99_ms:.2f} ms ({_where(worst_p99[0])}) over {len(mine)} rows"
        )
        if missed:
            measured += "; missed by " + ", ".join(missed)
        goal = (
            f"{target}: max ≤ {TAIL_MAX_MS:g} ms and p99 ≤ {TAIL_P99_MS:g} ms "
            f"up to {TAIL_CONCURRENCY} connections"
        )
        verdicts.append(Verdict(goal, measured, not missed))
    return verdicts


def _where(row: Row) -> str:
    return f"{row.phase} c={row.concurrency} depth {row.depth:,}"


def sections(rows: list[Row]) -> list[tuple[str, str]]:
    """(title, text) of the depth table (when a depth above 0 ran) and the tail goals."""
    out = []
    depths = fmt_depths(rows)
    if depths is not None:
        out.append((f"Queue depth (goal: msgs/s within {DEPTH_SPREAD:.0%} of depth 0)", depths))
    verdicts = tail_verdicts(rows)
    if verdicts:
        lines = ["| goal | measured | verdict |", "|---|---|---|"]
        lines += [f"| {v.goal} | {v.measured} | {v.status()} |" for v in verdicts]
        out.append(("Latency tails", "\n".join(lines)))
    return out
