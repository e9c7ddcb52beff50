"""Drive a running server with one named phase, or one fixed request, and print the result.

    python -m bench.load --port 8000 --phase put-1 --concurrency 16 --duration 5
    python -m bench.load --port 8000 --method GET --path / --expect 200

The load generator is `loadgen.py`; the phases are `phases.py` (`--phase` does not
pre-fill: fill the queue first for the claim phases). Traffic goes to the loopback
interface only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bench.loadgen import FixedRequest, Workload, build_request, install_uvloop, run_load
from bench.phases import PHASES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--concurrency", "-c", type=int, default=16)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--duration", "-d", type=float, default=5.0)
    p.add_argument("--phase", help="a named phase from phases.py (e.g. put-1, claim-pop)")
    p.add_argument("--account", default="bench-cli")
    p.add_argument("--method", default="GET", help="generic mode: HTTP method")
    p.add_argument("--path", default="/", help="generic mode: request target")
    p.add_argument("--body-size", type=int, default=0, help="generic mode: body bytes")
    p.add_argument("--expect", type=int, default=200, help="generic mode: expected status")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        p.error("traffic only to the loopback interface")
    loop_name = install_uvloop()

    workload: Workload
    if args.phase:
        spec = PHASES.get(args.phase)
        if spec is None:
            p.error(f"unknown phase {args.phase!r}; known: {', '.join(PHASES)}")
        workload = spec.make(f"{args.host}:{args.port}", args.account, "q")
    else:
        raw = build_request(
            args.method, args.path, f"{args.host}:{args.port}", b"x" * args.body_size
        )
        workload = FixedRequest(raw, args.expect, 1)

    result = asyncio.run(
        run_load(args.host, args.port, workload, args.concurrency, args.warmup, args.duration)
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(
            f"[{loop_name}] c={result.concurrency} {result.duration:.1f}s: "
            f"{result.req_per_s:,.0f} req/s, {result.msgs_per_s:,.0f} msgs/s, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"max {result.max_ms:.2f} ms, errors {result.errors_text()}, "
            f"client CPU {result.client_cpu:.0%}"
        )
    return 0 if result.error_count == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
