"""Memory left behind by hides: RSS before, after N hides and after deleting their queues.

    python -m bench.hide_timers [--backend memory|sqlite] [--hides 1000000] [--queues 10000]

Starts one Burrow server, fills Q queues with M messages each (one batch PUT per queue,
no ttl), then sends N updates that hide one message each
(`POST /v1.0/{a}/q{i}/m{j}?hide=H`, every H different, so no two share a deadline),
then deletes every queue (`DELETE /v1.0/{a}/q{i}?match_hidden=true`). Nobody waits on
any queue. It reads the server's RSS (/proc/PID/status) after a warm-up of the same
requests, after the hides and after the deletes, and exits 1 when the server keeps more
than `--bound` MiB over where it started. Traffic goes to 127.0.0.1 only; the server is
stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.loadgen import Connection, Recorder, build_request, install_uvloop
from bench.servers import HOST, Server, Target, burrow_target, choose_pinning
from bench.waiters import rss_mib

ACCOUNT = "hides"
# Hides run from an hour up, one second apart per hide: every deadline is its own.
FIRST_HIDE = 3600


class Failed(Exception):
    """The server answered a request with a status the bench did not expect."""


async def send_all(port: int, requests: Iterator[tuple[bytes, int]], concurrency: int) -> int:
    """Send every request over `concurrency` keep-alive connections; returns how many."""
    sent = 0

    async def worker() -> None:
        nonlocal sent
        conn = Connection(HOST, port, Recorder())
        try:
            for raw, expect in requests:
                status, body = await conn.request(raw, expect)
                if status != expect:
                    raise Failed(f"{raw.split(b' HTTP')[0]!r}: {status} {body[:200]!r}")
                sent += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent


def fills(account: str, queues: int, per_queue: int) -> Iterator[tuple[bytes, int]]:
    batch = json.dumps([{"id": f"m{j}", "body": "x" * 16} for j in range(per_queue)]).encode()
    for i in range(queues):
        path = f"/v1.0/{account}/q{i}?ttl=0"
        yield build_request("PUT", path, HOST, batch, "application/json"), 201


def hides(
    account: str, queues: int, per_queue: int, count: int, control: bool
) -> Iterator[tuple[bytes, int]]:
    for n in range(count):
        queue, message = n % queues, (n // queues) % per_queue
        hide = 0 if control else FIRST_HIDE + n
        path = f"/v1.0/{account}/q{queue}/m{message}?hide={hide}"
        yield build_request("POST", path, HOST), 204


def deletes(account: str, queues: int) -> Iterator[tuple[bytes, int]]:
    for i in range(queues):
        yield build_request("DELETE", f"/v1.0/{account}/q{i}?match_hidden=true", HOST), 204


async def settled_rss(pid: int, seconds: float = 3.0) -> float:
    """RSS once the server had `seconds` to run its sweeps (and the allocator to settle)."""
    await asyncio.sleep(seconds)
    return rss_mib(pid)


async def hide_and_delete(
    port: int,
    account: str,
    queues: int,
    hide_count: int,
    args: argparse.Namespace,
    server_pid: int,
) -> tuple[int, float, float]:
    """Fill, hide, delete; returns (hides sent, seconds spent hiding, RSS before the deletes)."""
    await send_all(port, fills(account, queues, args.per_queue), args.concurrency)
    started = time.monotonic()
    requests = hides(account, queues, args.per_queue, hide_count, args.control)
    sent = await send_all(port, requests, args.concurrency)
    spent = time.monotonic() - started
    rss = rss_mib(server_pid)
    await send_all(port, deletes(account, queues), args.concurrency)
    return sent, spent, rss


async def measure(server: Server, args: argparse.Namespace) -> dict[str, float]:
    port, pid = server.port, server.pid
    assert pid is not None
    queues = min(args.queues, args.hides)
    # Warm-up: the same requests on as many queues, deleted, so that the figures below
    # count what the hides leave behind, not the server's first allocations.
    await hide_and_delete(port, "warm-up", queues, min(args.hides, 2 * queues), args, pid)
    before = await settled_rss(pid)
    sent, spent, after_hides = await hide_and_delete(port, ACCOUNT, queues, args.hides, args, pid)
    after_deletes = await settled_rss(pid)
    return {
        "hides": sent,
        "hides_per_s": sent / spent,
        "hide_seconds": spent,
        "rss_before_mib": before,
        "rss_after_hides_mib": after_hides,
        "rss_after_deletes_mib": after_deletes,
        "kept_mib": after_deletes - before,
    }


async def amain(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="burrow-hide-timers-") as tmp:
        target: Target = burrow_target(sys.executable, args.backend, Path(tmp))
        server = Server(target, choose_pinning(0, 1, enabled=False), Path(tmp) / "server.log")
        server.start()
        try:
            await server.wait_ready()
            result = await measure(server, args)
        finally:
            print(server.stop())
    what = "updates with hide=0" if args.control else "hides"
    queues = min(args.queues, args.hides)
    print(
        f"{args.hides} {what} over {queues} queues of {args.per_queue} messages"
        f" on {args.backend}, then their queues deleted:"
    )
    for name, value in result.items():
        print(f"  {name}: {value:.1f}")
    kept = result["kept_mib"]
    verdict = "within" if kept <= args.bound else "OVER"
    print(f"  {verdict} the bound: {kept:.1f} MiB kept, at most {args.bound:g} MiB allowed")
    return 0 if kept <= args.bound else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="memory", choices=["memory", "sqlite"])
    parser.add_argument("--hides", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--per-queue", type=int, default=10, help="messages in each queue")
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument("--bound", type=float, default=20.0, help="MiB the server may keep")
    parser.add_argument(
        "--control", action="store_true", help="the same requests with hide=0, for comparison"
    )
    args = parser.parse_args()
    install_uvloop()
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
