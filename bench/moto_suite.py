"""Run moto's own SQS tests against Burrow: an outside reference for the SQS frontend.

    python -m bench.moto_suite                        # moto's tests/test_sqs
    python -m bench.moto_suite -k message_attributes  # extra arguments go to pytest
    python -m bench.moto_suite --json-out moto.json   # also every test's outcome and reason

Starts `burrow serve --backend memory:// --auth none` on a free port, then runs pytest in
bench/.moto-venv (made by `make bench-moto-deps`) over the tests of moto's sdist, in
moto's server mode: TEST_SERVER_MODE=true and TEST_SERVER_MODE_ENDPOINT=Burrow's URL, so
that each test's boto3 clients talk to Burrow. moto's server-mode reset (`POST
/moto-api/reset`) is turned off (MOTO_CALL_RESET_API=false); the `moto_reset.py` plugin
deletes every queue of moto's test account before each test instead. Two files are
left out (see LEFT_OUT), and each test may take 120 s at most. Burrow is stopped by its
PID at the end, and so is pytest if it outlives `--timeout` (interrupted first, so that
it still writes its report of the tests that ran); both also on SIGTERM.
Prints the counts, then the failures grouped by their error's first line.

Not part of `make test`: the figures are a reference for docs/sqs.md, and the exit status
is 1 only when the harness failed (Burrow died, or pytest could not run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.servers import BENCH, HOST, Pinning, Server, burrow_target, terminate_on_sigterm

MOTO_VENV = BENCH / ".moto-venv"
MOTO_ROOT = MOTO_VENV / "moto-5.2.3"  # its sdist's tests, unpacked by make bench-moto-deps
PLUGIN = BENCH / "moto_reset.py"
# Left out: test_server.py drives moto's own Flask app in-process and never reaches the
# endpoint; test_sqs_integration.py needs moto's IAM and Lambda (its role helper retries
# IAM calls forever when they fail).
LEFT_OUT = ("tests/test_sqs/test_server.py", "tests/test_sqs/test_sqs_integration.py")
TEST_TIMEOUT = 120  # seconds for one test (pytest-timeout), so that no test hangs the run
# pytest's exit statuses for "tests ran" (all passed, some failed); others: it could not run.
RAN = (0, 1)
INTERRUPTED = 2  # pytest's status after SIGINT: its report holds the tests that ran
GRACE = 60.0  # seconds an interrupted pytest has to write its report
# Parts of an error's first line that differ from one test to the next.
VARYING = re.compile(r"https?://[^\s'\"]+|[0-9a-f]{8}-[0-9a-f-]{27}|\b[0-9a-f]{32}\b|\d+")


@dataclass
class Outcome:
    test: str
    outcome: str  # passed, failed, error, skipped
    reason: str  # the first line of the failure, error or skip message


def outcomes(junit: Path) -> list[Outcome]:
    """Each test case of a JUnit XML report."""
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome, reason = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome = "failed" if kind == "failure" else kind
                text = found.get("message") or found.text or ""
                reason = text.strip().splitlines()[0] if text.strip() else ""
                break
        out.append(Outcome(name, outcome, reason))
    return out


def summary(results: list[Outcome]) -> str:
    counts = {k: sum(r.outcome == k for r in results) for k in ("passed", "failed", "error")}
    counts["skipped"] = sum(r.outcome == "skipped" for r in results)
    lines = [", ".join(f"{n} {k}" for k, n in counts.items()) + f" of {len(results)} tests"]
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for r in results:
        if r.outcome in ("failed", "error"):
            groups[VARYING.sub("N", r.reason)[:160]].append(r)
    for reason, members in sorted(groups.items(), key=lambda g: -len(g[1])):
        lines.append(f"\n{len(members)} x {reason}")
        lines += [f"    {m.outcome}: {m.test}" for m in members]
    skips: dict[str, int] = defaultdict(int)
    for r in results:
        if r.outcome == "skipped":
            skips[r.reason[:160]] += 1
    if skips:
        lines.append("\nskipped:")
        lines += [f"    {n} x {reason}" for reason, n in sorted(skips.items(), key=lambda s: -s[1])]
    return "\n".join(lines)


def run_pytest(url: str, tmp: Path, extra: list[str], timeout: float) -> tuple[int, Path]:
    """pytest over moto's SQS tests against `url`; returns (exit status, JUnit report)."""
    plugins = tmp / "plugins"
    plugins.mkdir()
    shutil.copy(PLUGIN, plugins / PLUGIN.name)
    junit = tmp / "junit.xml"
    cmd = [str(MOTO_VENV / "bin" / "python"), "-m", "pytest", "tests/test_sqs"]
    cmd += [f"--ignore={path}" for path in LEFT_OUT]
    cmd += ["-p", PLUGIN.stem, "-p", "no:cacheprovider", "-q", "--tb=line"]
    cmd += [f"--timeout={TEST_TIMEOUT}"]
    cmd += [f"--junitxml={junit}", "-o", "junit_family=xunit2", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env |= {
        "TEST_SERVER_MODE": "true",
        "TEST_SERVER_MODE_ENDPOINT": url,
        "MOTO_CALL_RESET_API": "false",
        "PYTHONPATH": str(plugins),
        "PYTHONUNBUFFERED": "1",  # progress as it happens
    }
    print(f"# {' '.join(cmd)}  (in {MOTO_ROOT})", flush=True)
    proc = subprocess.Popen(cmd, cwd=MOTO_ROOT, env=env, start_new_session=True)
    status = INTERRUPTED
    try:
        status = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"# pytest still running after {timeout:g} s: interrupted", file=sys.stderr)
    finally:
        if proc.poll() is None:  # timed out, or this process was interrupted
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                status = -1
    return status, junit


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds pytest may take")
    p.add_argument("--json-out", help="every test's outcome and reason, as JSON")
    p.add_argument("--python", default=sys.executable, help="interpreter for Burrow")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, report)")
    args, extra = p.parse_known_args(argv)
    if not (MOTO_ROOT / "tests" / "test_sqs").is_dir():
        raise SystemExit("moto's tests are missing: run `make bench-moto-deps`")
    tmp = Path(tempfile.mkdtemp(prefix="burrow-moto-suite-"))
    burrow = Server(
        burrow_target(args.python, "memory", tmp), Pinning(None, None, None), tmp / "burrow.log"
    )
    try:
        with terminate_on_sigterm():
            burrow.start()
            asyncio.run(burrow.wait_ready())
            status, junit = run_pytest(f"http://{HOST}:{burrow.port}", tmp, extra, args.timeout)
            alive = burrow.alive
    finally:
        print(f"# burrow: {burrow.stop()}", flush=True)
    problems = [] if status in RAN else [f"pytest exited {status}"]
    if status == INTERRUPTED:
        problems = [f"pytest interrupted after {args.timeout:g} s: the counts are partial"]
    if not alive:
        problems.append(f"Burrow exited during the tests ({burrow.exit_code})")
    errors = burrow.log_errors()
    if errors:
        print(f"# Burrow logged {errors}; log tail:\n{burrow.log_tail(40)}")
    results = outcomes(junit) if junit.exists() else []
    print("\n" + summary(results))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([asdict(r) for r in results], indent=1))
    if args.keep_tmp:
        print(f"# temp dir kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems or not results else 0


if __name__ == "__main__":
    sys.exit(main())
