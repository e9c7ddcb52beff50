"""Benchmark targets as processes: each on a free port, pinned, stopped by its PID.

A `Target` says what to run; a `Server` runs one, waits until it answers its API's
ping, measures whose CPU is its own, and stops it (and any children) when done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from bench.loadgen import process_tree
from bench.phases import BURROW, READY, Api, one_request

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
DEFAULT_RATE = 20_000  # msgs/s guess for sizing a prefill before anything was measured


@dataclass
class Target:
    name: str  # "sqlite", "memory", "noop", "zaqar", "zaqar-redis"
    command: list[str]
    api: Api | None = BURROW  # None: a helper (Zaqar's redis-server), ready once it listens
    is_noop: bool = False
    env: dict[str, str] = field(default_factory=dict)
    rate_guess: float = DEFAULT_RATE  # msgs/s, to size a prefill before anything was measured
    reopen_every: int | None = None  # requests per connection (None: keep it open)
    # A comparison target (Zaqar): its error answers and logged tracebacks are results
    # about it, reported in the notes; only a harness failure with it is a problem.
    reference: bool = False
    # The engine's processes (redis-server, the postmaster): their CPU is the server's.
    engine_pids: tuple[int, ...] = ()


def burrow_serve(
    python: str, name: str, backend: str, *extra: str, profile: Path | None = None
) -> Target:
    """`burrow serve` on the backend URL `backend`, on the port its `Server` picks;
    under cProfile (`profiled.py`) when given a `profile` directory for its stats."""
    burrow = ["-m", "burrow"] if profile is None else [str(BENCH / "profiled.py")]
    if profile is not None:
        burrow.append(str(profile / f"{name}.prof"))
    cmd = [python, *burrow, "serve", "--host", HOST, "--port", "{port}"]
    return Target(name, [*cmd, "--backend", backend, *extra])


def burrow_target(python: str, name: str, tmp: Path, profile: Path | None = None) -> Target:
    """`burrow serve` on the `sqlite` (a file in `tmp`) or `memory` backend."""
    urls = {"sqlite": f"sqlite:///{tmp / 'bench.db'}", "memory": "memory://"}
    if name not in urls:
        raise SystemExit(f"unknown backend {name!r}; choose from {', '.join(urls)}")
    return burrow_serve(python, name, urls[name], profile=profile)


@contextlib.contextmanager
def on_cpu(cpu: int | None) -> Iterator[None]:
    """Run the block on `cpu` alone (None: as we are): processes started in it inherit
    that, and so do their own children (PostgreSQL's backends)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Pinning:
    server_cpu: int | None
    client_cpu: int | None
    taskset: str | None

    def describe(self) -> str:
        if self.server_cpu is None:
            return "no CPU pinning (fewer than 2 CPUs available)"
        how = f"`taskset -c {self.server_cpu}`" if self.taskset else "sched_setaffinity"
        return (
            f"server pinned to CPU {self.server_cpu} ({how}), "
            f"load generator pinned to CPU {self.client_cpu} (sched_setaffinity)"
        )


def choose_pinning(server_cpu: int, client_cpu: int, enabled: bool) -> Pinning:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not enabled or len(cpus) < 2 or {server_cpu, client_cpu} - set(cpus):
        return Pinning(None, None, None)
    os.sched_setaffinity(0, {client_cpu})
    return Pinning(server_cpu, client_cpu, shutil.which("taskset"))


def pin_tree(pid: int, pinning: Pinning) -> None:
    """Pin a process started elsewhere (by the test suite's engine helpers), every thread
    of it and of its children, to the server CPU; what it forks later inherits that."""
    if pinning.server_cpu is None:
        return
    for proc in process_tree(pid):
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{proc}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), {pinning.server_cpu})


class Server:
    """One target process, started on a free port and stopped by its PID."""

    def __init__(self, target: Target, pinning: Pinning, log_path: Path) -> None:
        self.target = target
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.pinning = pinning
        self.killed = False
        self.unresponsive = False
        # Started before this server and stopped after it; their CPU counts as its own.
        self.helpers: list[Server] = []

    def start(self) -> None:
        cmd = [part.replace("{port}", str(self.port)) for part in self.target.command]
        if self.pinning.server_cpu is not None and self.pinning.taskset:
            cmd = [self.pinning.taskset, "-c", str(self.pinning.server_cpu), *cmd]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
        )
        env.update(self.target.env)
        with open(self.log_path, "wb") as log:
            # New session: a Ctrl-C in the terminal reaches us, and we stop the server.
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.log_path.parent),
                start_new_session=True,
            )
        if self.pinning.server_cpu is not None and not self.pinning.taskset:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, {self.pinning.server_cpu})

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def cpu_pids(self) -> list[int]:
        """Whose CPU is the server's: its process (with children) and its helpers'."""
        own = [s.pid for s in (self, *self.helpers) if s.pid is not None]
        return [*own, *self.target.engine_pids]

    async def answers(self, seconds: float = 5.0) -> bool:
        """Does the server still answer its API's ping (a helper: accept) within `seconds`?"""
        api = self.target.api
        if api is None:
            try:
                async with asyncio.timeout(seconds):
                    _, writer = await asyncio.open_connection(HOST, self.port)
            except (OSError, TimeoutError):
                return False
            writer.close()
            return True
        raw = api.ping(f"{HOST}:{self.port}")
        status, _ = await one_request(HOST, self.port, raw, seconds=seconds)
        return status in READY

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.target.name} exited early:\n{self.log_tail()}")
            if await self.answers(seconds=2.0):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.target.name} not ready in {READY_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self) -> str:
        """SIGTERM by PID, then SIGKILL after STOP_TIMEOUT; returns what happened.

        Children still running once it exited (gunicorn workers) are killed with their
        process group, which is the server's own (it was started in a new session)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return "already exited" if proc is not None else "never started"
        children = process_tree(proc.pid)[1:]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
            how = f"stopped by SIGTERM in {time.monotonic() - t0:.1f}s (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            proc.kill()
            self.killed = True
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            how = f"did not stop {STOP_TIMEOUT:.0f}s after SIGTERM: killed (SIGKILL)"
        leftovers = [pid for pid in children if _running(pid)]
        if leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            self.killed = True
            how += f"; {len(leftovers)} child processes outlived it: killed (SIGKILL)"
        return how

    def log_errors(self) -> str:
        """How many tracebacks and ERROR lines the server logged ("" if none)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, self.log_path.stat().st_size - 4_000_000))
                text = f.read()
        except OSError:
            return ""
        tracebacks, errors = text.count(b"Traceback"), text.count(b" ERROR ")
        if not tracebacks and not errors:
            return ""
        return f"{tracebacks} tracebacks and {errors} ERROR lines"

    def log_tail(self, lines: int = 25) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, self.log_path.stat().st_size - 65536))
                text = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


def _running(pid: int) -> bool:
    """Is `pid` a live (not zombie) process?"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so `finally` blocks stop the servers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
