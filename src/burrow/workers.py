"""`burrow serve --workers N`: N server processes on one port, kept running.

Each worker is a forked process with its own event loop, backend connections
and listening socket; the kernel spreads new connections over them
(`SO_REUSEPORT`). The parent holds the port (so `--port 0` picks one port for
all), starts the workers, starts a new one when one dies, and on SIGTERM or
SIGINT asks every worker to shut down gracefully and waits for them: it exits 0
when every worker has drained cleanly, else with the status of the first that
has not.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

from burrow.errors import ConfigError

logger = logging.getLogger(__name__)

# A worker that fails by itself (not killed by a signal) sooner than this after its
# start cannot start (its backend down, say): starting it again would loop, so the
# whole server stops instead, with that worker's exit status.
MIN_UPTIME = 5.0
BACKLOG = 2048
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies

Worker = Callable[[socket.socket], int]  # serves on the socket; returns the exit status


def listening_socket(host: str, port: int, shared: bool = False) -> socket.socket:
    """A socket bound to host:port; `shared` (SO_REUSEPORT) lets every worker bind it.

    Binding is the last check of the settings: a port in use, or an address that is not
    this machine's, is a ConfigError.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        raise ConfigError(f"cannot listen on host {host} port {port}: {reason}") from None
    return sock


class Supervisor:
    """Starts `count` workers running `worker(sock)` and keeps them running until stopped."""

    def __init__(self, count: int, host: str, port: int, worker: Worker) -> None:
        self.count = count
        self.host = host
        self.worker = worker
        # Bound, never listening: it only reserves the port for the workers.
        self._reserved = listening_socket(host, port, shared=True)
        self.port: int = self._reserved.getsockname()[1]
        self._started: dict[int, float] = {}  # pid -> when
        self._stopping = False

    def run(self) -> int:
        """Serve until a signal; returns the exit status for the parent process."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for _ in range(self.count):
            self._start()
        status = 0
        while self._started:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            started = self._started.pop(pid, None)
            if started is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if self._stopping:
                if code and not status:  # a drain cut short, or a worker killed while stopping
                    logger.error("worker %d exited (%d) while stopping", pid, code)
                    status = code if code > 0 else 128 - code  # (-signal: as a shell says it)
                continue
            if code > 0 and time.monotonic() - started < MIN_UPTIME:
                logger.error("worker %d exited (%d) right after starting; stopping", pid, code)
                status = code
                self._stop(signal.SIGTERM, None)
            else:
                logger.warning("worker %d exited (%d); starting another", pid, code)
                self._start()
        self._reserved.close()
        return status

    def _start(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            os._exit(self._work(parent))
        self._started[pid] = time.monotonic()

    def _work(self, parent: int) -> int:
        # Its own process group: a Ctrl+C at the terminal reaches the parent only,
        # which then stops each worker exactly once.
        os.setpgid(0, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _stop_with(parent)
        try:
            sock = listening_socket(self.host, self.port, shared=True)
            sock.listen(BACKLOG)
            return self.worker(sock)
        except BaseException:
            logger.exception("worker %d failed", os.getpid())
            return 1

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        for pid in self._started:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _stop_with(parent: int) -> None:
    """Have the kernel send this worker SIGTERM (a graceful stop) when the supervisor
    dies, however it dies (`kill -9` too), so that no worker goes on serving the port
    unsupervised. Linux only (prctl); elsewhere workers outlive a killed supervisor."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("worker %d will outlive a killed supervisor: prctl failed", os.getpid())
    if os.getppid() != parent:  # it died before the prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
