"""A lean closed-loop HTTP/1.1 load generator (asyncio Protocols + uvloop).

Each of C keep-alive connections runs one request after the other (closed loop).
Requests are pre-built bytes; responses are parsed by hand (Content-Length bodies,
chunked bodies, 204/304 and HEAD-less empty responses), so one core can drive tens of
thousands of requests per second. httpx is far too slow for this.

Library use::

    result = await run_load("127.0.0.1", 8000, workload, concurrency=16,
                            warmup=1.0, duration=5.0)

where `workload` has an ``async step(conn, worker, seq)`` method that sends requests with
``conn.request`` and credits the messages it moved with ``conn.credit(n)`` as each
completes (see ``phases.py``). From the command line, see ``load.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, cast

MAX_RECONNECTS = 100  # per connection per run; bounded so a dead server cannot spin us
CONNECT_TIMEOUT = 5.0
SHUTDOWN_GRACE = 5.0  # seconds to let in-flight requests finish after the window closes


class LoadError(Exception):
    """The connection failed or the response could not be parsed."""


# --------------------------------------------------------------------------- protocol


class _HttpClientProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    __slots__ = ("_buf", "_closed", "_waiter", "announced_close", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._closed = False
        self.announced_close = False  # the server said `Connection: close`: not a failure

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(LoadError(f"connection lost: {exc!r}"))
        self._waiter = None

    def data_received(self, data: bytes) -> None:
        # Common case: the whole response arrives in one chunk; parse it without copying.
        buf = self._buf + data if self._buf else data
        waiter = self._waiter
        if waiter is None:
            self._fail(LoadError("unsolicited data from server"))
            return
        try:
            parsed = _parse_response(buf)
        except (LoadError, ValueError) as exc:
            self._fail(LoadError(str(exc)))
            return
        if parsed is None:
            self._buf = buf
            return
        status, body, used, close = parsed
        self._buf = buf[used:] if used < len(buf) else b""
        self._waiter = None
        if close:
            # Close at once: gunicorn's sync worker lingers until it sees our FIN.
            self._closed = self.announced_close = True
            if self.transport is not None:
                self.transport.close()
        if not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    # API
    @property
    def usable(self) -> bool:
        return not self._closed and self.transport is not None

    def send(self, raw: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None and self._waiter is None
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._waiter = fut
        self.transport.write(raw)
        return fut

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()


_CL = b"\r\ncontent-length: "
_CL_LEN = len(_CL)
_CLOSE = b"\r\nconnection: close"
_CLOSE_GUNICORN = b"\r\nConnection: close"


def _parse_response(buf: bytes) -> tuple[int, bytes, int, bool] | None:
    """Parse one response at the start of `buf`.

    Returns (status, body, bytes consumed, server-will-close) or None if incomplete.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise LoadError("response head too large")
        return None
    if not buf.startswith(b"HTTP/1."):
        raise LoadError(f"bad status line: {buf[:40]!r}")
    status = int(buf[9:12])
    start = end + 4
    # Fast path: a lower-case Content-Length, as uvicorn (ASGI) and falcon write it.
    i = buf.find(_CL, 0, end)
    if i >= 0:
        close = buf.find(_CLOSE, 0, end) >= 0 or buf.find(_CLOSE_GUNICORN, 0, end) >= 0
        if status == 204 or status == 304 or 100 <= status < 200:
            return status, b"", start, close
        j = buf.find(b"\r", i + _CL_LEN)
        stop = start + int(buf[i + _CL_LEN : j])
        if len(buf) < stop:
            return None
        return status, buf[start:stop], stop, close
    head = buf[:end].lower()
    close = _CLOSE in head
    if status == 204 or status == 304 or 100 <= status < 200:
        return status, b"", start, close
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 17)
        stop = start + int(head[i + 17 : j if j >= 0 else len(head)])
        if len(buf) < stop:
            return None
        return status, buf[start:stop], stop, close
    if b"\r\ntransfer-encoding: chunked" in head:
        return _parse_chunked(buf, start, status, close)
    # No length and no chunking: the body runs until the server closes.
    if close:
        return status, buf[start:], len(buf), True
    return status, b"", start, close


def _parse_chunked(
    buf: bytes, pos: int, status: int, close: bool
) -> tuple[int, bytes, int, bool] | None:
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_field = buf[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError as exc:
            raise LoadError(f"bad chunk size {size_field!r}") from exc
        pos = eol + 2
        if size == 0:
            # skip optional trailers up to the blank line
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return status, b"".join(parts), eol + 2, close
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        parts.append(buf[pos : pos + size])
        pos += size + 2


# --------------------------------------------------------------------------- requests


def build_request(
    method: str,
    path: str,
    host: str,
    body: bytes = b"",
    content_type: str = "application/octet-stream",
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Serialise one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{k}: {v}" for k, v in extra_headers)
    if body or method in ("PUT", "POST"):
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------- recording


@dataclass
class Recorder:
    """Counts what completes inside the measured window."""

    measuring: bool = False
    requests: int = 0
    messages: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    warmup_errors: Counter[str] = field(default_factory=Counter)

    def error(self, label: str) -> None:
        if self.measuring:
            self.errors[label] += 1
        else:
            self.warmup_errors[label] += 1

    def credit(self, n: int) -> None:
        """Count `n` messages moved, now (only inside the measured window)."""
        if self.measuring:
            self.messages += n


def _ok(status: int, expect: int | tuple[int, ...]) -> bool:
    return status == expect if isinstance(expect, int) else status in expect


class Connection:
    """What a workload step sees: send a pre-built request, get (status, body)."""

    __slots__ = ("_host", "_port", "_proto", "_rec", "_reopen_every", "_sent", "reconnects")

    def __init__(
        self, host: str, port: int, rec: Recorder, reopen_every: int | None = None
    ) -> None:
        self._host = host
        self._port = port
        self._rec = rec
        self._proto: _HttpClientProtocol | None = None
        self._reopen_every = reopen_every
        self._sent = 0  # requests on the current connection
        self.reconnects = 0  # connections lost without the server announcing it

    async def _connect(self) -> _HttpClientProtocol:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, proto = await loop.create_connection(_HttpClientProtocol, self._host, self._port)
        return proto

    async def request(self, raw: bytes, expect: int | tuple[int, ...] = 200) -> tuple[int, bytes]:
        """Send `raw`; record latency, and an error when the status is not `expect`.

        Returns (status, body); status 0 means a connection/protocol error (recorded).
        """
        t0 = time.perf_counter()  # a reconnect is part of the request's latency
        proto = self._proto
        if proto is not None and self._sent == self._reopen_every:
            proto.close()  # planned, not a failure
            proto = None
        if proto is None or not proto.usable:
            if self.reconnects >= MAX_RECONNECTS:
                raise LoadError("too many reconnects")
            if proto is not None and not proto.announced_close:
                self.reconnects += 1
            self._sent = 0
            try:
                proto = self._proto = await self._connect()
            except (OSError, TimeoutError) as exc:
                self.reconnects += 1
                self._rec.error(f"connect:{type(exc).__name__}")
                await asyncio.sleep(0.05)
                return 0, b""
        rec = self._rec
        self._sent += 1
        try:
            status, body = await proto.send(raw)
        except LoadError:
            rec.error("conn-error")
            return 0, b""
        if rec.measuring:
            rec.latencies.append(time.perf_counter() - t0)
            rec.requests += 1
            if not _ok(status, expect):
                rec.errors[str(status)] += 1
        elif not _ok(status, expect):
            rec.warmup_errors[str(status)] += 1
        return status, body

    def credit(self, n: int) -> None:
        """Count `n` messages moved, now (only inside the measured window)."""
        self._rec.credit(n)

    def close(self) -> None:
        if self._proto is not None:
            self._proto.close()


class Workload(Protocol):
    """One closed-loop iteration: requests via `conn.request`, messages via `conn.credit`."""

    async def step(self, conn: Connection, worker: int, seq: int) -> None: ...


# --------------------------------------------------------------------------- results


@dataclass
class LoadResult:
    concurrency: int
    duration: float  # measured window, seconds
    requests: int
    messages: int
    req_per_s: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    warmup_errors: dict[str, int]
    hung: int  # connections still waiting on a response after the grace period
    client_cpu: float  # CPU seconds this process used / measured seconds (1.0 = one core)
    server_cpu: float | None  # same for the server process, when its PID was given
    other_cpu: float | None  # CPU used by everything else on the machine (cores), if known

    @property
    def error_count(self) -> int:
        return sum(self.errors.values()) + self.hung

    def errors_text(self) -> str:
        parts = [f"{k}x{v}" for k, v in sorted(self.errors.items())]
        if self.hung:
            parts.append(f"hungx{self.hung}")
        return ", ".join(parts) if parts else "0"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --------------------------------------------------------------------------- engine


@dataclass
class Window:
    """What the workers of one run share: the recorder, and whether to stop."""

    rec: Recorder
    stopped: bool = False


# A closed-loop worker: runs steps until `window.stopped`; raises LoadError to give up.
Worker = Callable[[int, Window], Awaitable[None]]


async def closed_loop(
    worker: Worker,
    concurrency: int,
    warmup: float,
    duration: float,
    server_pids: Sequence[int] = (),
) -> LoadResult:
    """Run `concurrency` copies of `worker`: `warmup` s uncounted, then `duration` s.

    `server_pids` are the server's processes (with their children) whose CPU use is
    reported. Workers still stuck SHUTDOWN_GRACE seconds after the window closes are
    cancelled and reported as `hung`; one that raises LoadError counts as `fatal`.
    """
    if concurrency < 1 or duration <= 0 or warmup < 0:
        raise ValueError("concurrency >= 1, duration > 0, warmup >= 0")
    window = Window(Recorder())
    rec = window.rec
    fatal: list[str] = []

    async def guarded(idx: int) -> None:
        try:
            await worker(idx, window)
        except LoadError as exc:
            fatal.append(f"worker {idx}: {exc}")

    tasks = [asyncio.create_task(guarded(i)) for i in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        rec.measuring = True
        t_start = time.perf_counter()
        cpu_start, srv_start = time.process_time(), process_cpu_seconds(server_pids)
        busy_start = machine_busy_seconds()
        await asyncio.sleep(duration)
        rec.measuring = False
        measured = time.perf_counter() - t_start
        cpu_used, srv_end = time.process_time() - cpu_start, process_cpu_seconds(server_pids)
        busy_end = machine_busy_seconds()
        window.stopped = True
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
        hung = len(pending)
    finally:
        window.stopped = True
        rec.measuring = False
        for t in tasks:
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
    for msg in fatal[:3]:
        print(f"loadgen: {msg}", file=sys.stderr)
    if fatal:
        rec.errors["fatal"] += len(fatal)
    lat = sorted(rec.latencies)
    server_cpu = None if srv_start is None or srv_end is None else (srv_end - srv_start) / measured
    other_cpu = None
    if busy_start is not None and busy_end is not None:
        other = (busy_end - busy_start) / measured - cpu_used / measured - (server_cpu or 0.0)
        other_cpu = max(0.0, other)
    return LoadResult(
        concurrency=concurrency,
        duration=measured,
        requests=rec.requests,
        messages=rec.messages,
        req_per_s=rec.requests / measured,
        msgs_per_s=rec.messages / measured,
        p50_ms=percentile(lat, 50) * 1000,
        p99_ms=percentile(lat, 99) * 1000,
        max_ms=(lat[-1] * 1000) if lat else 0.0,
        errors=dict(rec.errors),
        warmup_errors=dict(rec.warmup_errors),
        hung=hung,
        client_cpu=cpu_used / measured,
        server_cpu=server_cpu,
        other_cpu=other_cpu,
    )


async def run_load(
    host: str,
    port: int | list[int],
    workload: Workload,
    concurrency: int,
    warmup: float,
    duration: float,
    max_steps: int = 50_000_000,
    server_pids: Sequence[int] = (),
    reopen_every: int | None = None,
) -> LoadResult:
    """Run `workload` on `concurrency` HTTP connections (see `closed_loop`).

    With several ports (several servers), connection i goes to port i mod their number;
    with `reopen_every`, each connection is replaced after that many requests (so that a
    pre-forking server's workers share the connections). Every connection loop is
    bounded by the clock and by `max_steps`.
    """
    ports = port if isinstance(port, list) else [port]

    async def worker(idx: int, window: Window) -> None:
        conn = Connection(host, ports[idx % len(ports)], window.rec, reopen_every)
        try:
            seq = 0
            while not window.stopped and seq < max_steps:
                await workload.step(conn, idx, seq)
                seq += 1
        finally:
            conn.close()

    return await closed_loop(worker, concurrency, warmup, duration, server_pids)


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (Linux /proc), e.g. a gunicorn master's workers."""
    tree: list[int] = []
    todo = [pid]
    while todo and len(tree) < 1000:
        current = todo.pop()
        tree.append(current)
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/{current}/task/{current}/children", "rb") as f:
                todo.extend(int(child) for child in f.read().split())
    return tree


def process_cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU seconds of `pids` and their descendants (Linux /proc), those
    that exited and were reaped included (their parents' cutime and cstime): otherwise
    the count would drop as a child exits (a PostgreSQL backend, Redis's AOF rewrite).

    None if unknown (none of them could be read)."""
    total, seen = 0, 0
    for pid in {p for top in pids for p in process_tree(top)}:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += sum(int(field) for field in fields[11:15])
            seen += 1
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return total / os.sysconf("SC_CLK_TCK") if seen else None


def machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs spent busy since boot (Linux /proc/stat), None if unknown."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def install_uvloop() -> str:
    """Use uvloop when available; returns the loop implementation's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


# --------------------------------------------------------------------------- workloads


class FixedRequest:
    """A workload issuing the same request forever, crediting `msgs` per expected answer."""

    def __init__(self, raw: bytes, expect: int, msgs: int) -> None:
        self.raw = raw
        self.expect = expect
        self.msgs = msgs

    async def step(self, conn: Connection, worker: int, seq: int) -> None:
        status, _ = await conn.request(self.raw, self.expect)
        if status == self.expect:
            conn.credit(self.msgs)
