"""OpenStack Zaqar as a benchmark target: gunicorn from its own virtualenv, on a
throwaway redis-server that is pinned with it and stopped after it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.servers import BENCH, HOST, Pinning, Server, Target
from bench.zaqar_phases import ZAQAR

ZAQAR_VENV = BENCH / ".zaqar-venv"
# The best throughput measured on the 2-core bench machine (see README.md, "Zaqar").
ZAQAR_WORKERS = "gevent:1"
ZAQAR_RATE = 3_000  # its prefill-sizing guess: Zaqar moves a few thousand msgs/s at best
# Re-open gevent keep-alive connections this often: each stays on the worker that
# accepted it, and one worker can accept them all.
ZAQAR_REOPEN_EVERY = 200


@dataclass(frozen=True)
class ZaqarWorkers:
    """A gunicorn worker model for Zaqar, written `sync:1`, `gevent:2`, …"""

    kind: str
    count: int

    @classmethod
    def parse(cls, text: str) -> ZaqarWorkers:
        kind, _, count = text.strip().partition(":")
        if kind not in ("sync", "gevent") or not count.isdigit() or not 1 <= int(count) <= 16:
            raise SystemExit(f"bad Zaqar worker model {text!r}: sync:N or gevent:N, N in 1..16")
        return cls(kind, int(count))

    def __str__(self) -> str:
        return f"{self.kind}:{self.count}"


ZAQAR_CONF = """\
[DEFAULT]
auth_strategy =
pooling = False
unreliable = True

[drivers]
message_store = redis
management_store = redis

[drivers:message_store:redis]
uri = {uri}

[drivers:management_store:redis]
uri = {uri}

# The profiler stays disabled, but its notifier is built at start-up anyway: the
# default (oslo.messaging, not installed) logs a traceback, the redis one loads.
[profiler]
connection_string = {uri}
"""


def require_zaqar() -> None:
    if not (ZAQAR_VENV / "bin" / "gunicorn").exists() or not shutil.which("redis-server"):
        raise SystemExit(
            "Zaqar needs bench/.zaqar-venv and redis-server: run `make bench-deps` "
            "(or pass --no-zaqar)"
        )


def zaqar_server(workers: ZaqarWorkers, name: str, tmp: Path, pinning: Pinning) -> Server:
    """Zaqar under gunicorn, with a throwaway redis-server as its helper."""
    redis_cmd = ["redis-server", "--port", "{port}", "--bind", HOST]
    redis_cmd += ["--save", "", "--appendonly", "no"]
    redis = Server(Target(f"{name}-redis", redis_cmd, api=None), pinning, tmp / f"{name}-redis.log")
    # The WSGI app reads $HOME/.zaqar/zaqar.conf: a HOME of its own keeps the user's out.
    home = tmp / f"{name}-home"
    (home / ".zaqar").mkdir(parents=True)
    conf = ZAQAR_CONF.format(uri=f"redis://{HOST}:{redis.port}")
    (home / ".zaqar" / "zaqar.conf").write_text(conf)
    cmd = [str(ZAQAR_VENV / "bin" / "gunicorn"), "--bind", f"{HOST}:{{port}}"]
    cmd += ["--workers", str(workers.count), "--worker-class", workers.kind]
    cmd += ["--graceful-timeout", "5", "--no-control-socket", "--log-level", "warning"]
    cmd += ["zaqar.transport.wsgi.app:app"]
    target = Target(
        name,
        cmd,
        api=ZAQAR,
        env={"HOME": str(home)},
        rate_guess=ZAQAR_RATE,
        reopen_every=ZAQAR_REOPEN_EVERY if workers.kind == "gevent" and workers.count > 1 else None,
        reference=True,
    )
    server = Server(target, pinning, tmp / f"{name}.log")
    server.helpers.append(redis)
    return server


def zaqar_versions() -> str:
    """Versions of what serves Zaqar, for the machine notes."""
    code = "from importlib.metadata import version as v; print(v('zaqar'), v('gunicorn'))"
    py = subprocess.run(
        [str(ZAQAR_VENV / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.split()
    redis = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.split()
    zaqar, gunicorn = [*py, "?", "?"][:2]
    redis_version = next((w[2:] for w in redis if w.startswith("v=")), "?")
    return f"Zaqar {zaqar}, gunicorn {gunicorn}, redis-server {redis_version}"
