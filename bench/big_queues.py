"""Big queues: does deleting one stall other tenants, and what does listing one cost in RSS?

    python -m bench.big_queues [--backends sqlite,memory] [--messages 200000]
    python -m bench.big_queues --src /tmp/burrow-before/src   # serve another source tree

For each backend, one real `burrow serve`:

1. Delete stall. Fills a queue with `--messages` messages by batch PUTs, then deletes it
   (`DELETE /v1.0/big/q`, a purge) while another client, on another account, does single
   PUTs one after the other and records each one's latency; the same again for a whole
   account (`DELETE /v1.0/big`). Reports the delete's duration and the latencies (p50,
   p99, max) of the other tenant's PUTs in flight while it ran (and 0.2 s after, when
   freed memory may still be returned). Bound: p99 under 50 ms.
2. Listing RSS. Fills a queue with `--listing-mib` MiB of 256 KiB bodies, then GETs it
   (no `limit`; `limit=1000`; four `limit=1000` GETs at once) and reports how far the
   server's peak RSS during each (VmHWM, reset before it) rose above its RSS before the
   first GET.

Traffic goes to 127.0.0.1 only; the server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import install_uvloop
from bench.servers import REPO, Server, burrow_target, choose_pinning

BATCH = 1000
BIG_BODY = 256 * 1024 - 64  # the largest body, less room for the batch's JSON
P99_BOUND_MS = 50.0


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def reset_peak(pid: int) -> None:
    """Make VmHWM start again from the current RSS (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def fill(http: httpx.AsyncClient, path: str, count: int, body: str, per_batch: int) -> None:
    for start in range(0, count, per_batch):
        batch = [
            {"id": f"m{i:07}", "body": body} for i in range(start, min(count, start + per_batch))
        ]
        response = await http.put(path, json=batch, params={"ttl": 0})
        assert response.status_code == 201, response.text


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def delete_stall(
    http: httpx.AsyncClient, what: str, fill_path: str, delete_path: str, count: int, body: int
) -> dict[str, Any]:
    """Fill, then delete while another tenant's single PUTs are timed."""
    started = time.monotonic()
    await fill(http, fill_path, count, "x" * body, BATCH)
    filled = time.monotonic() - started
    probes: list[tuple[float, float]] = []  # (sent, latency s)
    deleting = asyncio.Event()
    done = asyncio.Event()

    async def probe() -> None:
        i = 0
        async with httpx.AsyncClient(base_url=str(http.base_url), timeout=120) as other:
            while not done.is_set():
                sent = time.monotonic()
                response = await other.put(f"/v1.0/other/q/p{i}", content=b"x")
                probes.append((sent, time.monotonic() - sent))
                assert response.status_code in (201, 204), response.text
                i += 1
                if i == 200:
                    deleting.set()  # warmed up: connection open, baseline taken

    prober = asyncio.create_task(probe())
    await deleting.wait()
    begin = time.monotonic()
    response = await http.delete(delete_path)
    end = time.monotonic()
    assert response.status_code == 204, response.text
    await asyncio.sleep(0.2)
    done.set()
    await prober
    # Every PUT that was in flight at some moment of the delete (or of the 0.2 s after).
    during = [1000 * took for sent, took in probes if sent <= end + 0.2 and sent + took >= begin]
    before = [1000 * took for sent, took in probes if sent + took < begin]
    left = await http.get(fill_path, params={"detail": "id", "limit": 1})
    await http.delete("/v1.0/other")
    return {
        "what": what,
        "messages": count,
        "fill_s": round(filled, 2),
        "delete_s": round(end - begin, 3),
        "left_after": left.status_code,
        "puts_during": len(during),
        "put_p50_ms": round(statistics.median(during), 2) if during else None,
        "put_p99_ms": round(percentile(during, 0.99), 2) if during else None,
        "put_max_ms": round(max(during), 2) if during else None,
        "baseline_p99_ms": round(percentile(before, 0.99), 2),
    }


async def listing_rss(http: httpx.AsyncClient, pid: int, mib: int) -> list[dict[str, Any]]:
    count = mib * 1024 * 1024 // BIG_BODY
    await fill(http, "/v1.0/wide/q", count, "y" * BIG_BODY, 15)  # 15 bodies: under 4 MiB
    await asyncio.sleep(0.5)
    base = status_kib(pid, "VmRSS")  # before any listing (freed memory stays in the process)
    results = []
    for label, params, parallel in (
        ("GET (no limit)", {}, 1),
        ("GET limit=1000", {"limit": 1000}, 1),
        ("4 x GET limit=1000", {"limit": 1000}, 4),
    ):
        await asyncio.sleep(0.5)
        reset_peak(pid)
        started = time.monotonic()
        answers = await asyncio.gather(
            *(http.get("/v1.0/wide/q", params=params) for _ in range(parallel))
        )
        took = time.monotonic() - started
        for answer in answers:
            assert answer.status_code == 200, answer.text
        peak = status_kib(pid, "VmHWM")
        results.append(
            {
                "what": label,
                "queue_mib": round(count * BIG_BODY / 2**20, 1),
                "messages_each": len(answers[0].json()),
                "answer_mib_each": round(len(answers[0].content) / 2**20, 1),
                "rss_growth_mib": round((peak - base) / 1024, 1),
                "seconds": round(took, 2),
            }
        )
    await http.delete("/v1.0/wide")
    return results


async def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="burrow-big-") as tmp:
        target = burrow_target(sys.executable, backend, Path(tmp))
        target.env["PYTHONPATH"] = str(args.src)
        server = Server(target, choose_pinning(0, 1, enabled=False), Path(tmp) / "server.log")
        server.start()
        try:
            await server.wait_ready()
            assert server.pid is not None
            url = f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(base_url=url, timeout=600) as http:
                stalls = [
                    await delete_stall(
                        http, "queue purge", "/v1.0/big/q", "/v1.0/big/q", args.messages, args.body
                    ),
                    await delete_stall(
                        http, "account delete", "/v1.0/big/q", "/v1.0/big", args.messages, args.body
                    ),
                ]
                listings = await listing_rss(http, server.pid, args.listing_mib)
            errors = server.log_errors()
        finally:
            stopped = server.stop()
    return {
        "backend": backend,
        "stalls": stalls,
        "listings": listings,
        "log": errors,
        "stop": stopped,
    }


# (column title, field of a result row)
STALL_COLUMNS = [
    ("delete", "what"),
    ("messages", "messages"),
    ("fill s", "fill_s"),
    ("delete s", "delete_s"),
    ("other PUTs in flight", "puts_during"),
    ("p50 ms", "put_p50_ms"),
    ("p99 ms", "put_p99_ms"),
    ("max ms", "put_max_ms"),
    ("p99 before", "baseline_p99_ms"),
    (f"p99 < {P99_BOUND_MS:.0f} ms", "bound"),
]
LISTING_COLUMNS = [
    ("listing", "what"),
    ("queue MiB", "queue_mib"),
    ("messages per answer", "messages_each"),
    ("answer MiB", "answer_mib_each"),
    ("peak RSS growth MiB", "rss_growth_mib"),
    ("s", "seconds"),
]


def table(columns: list[tuple[str, str]], rows: list[dict[str, Any]]) -> None:
    print("| " + " | ".join(title for title, _ in columns) + " |")
    print("|---" + "|--:" * (len(columns) - 1) + "|")
    for row in rows:
        print("| " + " | ".join(str(row[key]) for _, key in columns) + " |")


def report(result: dict[str, Any]) -> None:
    notes = "; ".join(part for part in (result["stop"], result["log"]) if part)
    print(f"\n## {result['backend']} (server {notes})")
    for stall in result["stalls"]:
        stall["bound"] = "met" if (stall["put_p99_ms"] or 0) < P99_BOUND_MS else "MISSED"
    table(STALL_COLUMNS, result["stalls"])
    print()
    table(LISTING_COLUMNS, result["listings"])


async def amain(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [await run_backend(backend, args) for backend in args.backends.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,memory")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--body", type=int, default=100, help="body bytes of the deleted queue")
    parser.add_argument("--listing-mib", type=int, default=100)
    parser.add_argument("--src", type=Path, default=REPO / "src", help="source tree to serve")
    parser.add_argument("--json-out", default="")
    args = parser.parse_args()
    install_uvloop()
    results = asyncio.run(amain(args))
    for result in results:
        report(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
