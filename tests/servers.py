"""Real `burrow serve` processes for tests: free ports, readiness, stop by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY = re.compile(r"Burrow ready at (https?)://([\d.]+):(\d+)")
WORKER = re.compile(r"Burrow ready at https?://[\d.]+:\d+ \(worker (\d+)\)")
START_TIMEOUT = 20.0


class BurrowServer:
    """One `burrow serve` child process; the OS picks its port (`--port 0`)."""

    def __init__(self, workdir: Path, backend: str | None, *extra: str) -> None:
        self.workdir = workdir
        self.backend = backend
        self.extra = extra
        self.log_path = workdir / f"server-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> BurrowServer:
        args = [sys.executable, "-m", "burrow", "serve", "--port", "0"]
        if self.backend is not None:
            args += ["--backend", self.backend]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*args, *self.extra], cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        self.url = self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> str:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            found = READY.search(self.log())
            if found:
                url = f"{found[1]}://{found[2]}:{found[3]}"
                if httpx.get(url + "/", verify=False).status_code == 200:
                    return url
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"server not ready after {START_TIMEOUT}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def workers(self) -> list[int]:
        """The PIDs of the workers started so far (`--workers`), in order."""
        return [int(pid) for pid in WORKER.findall(self.log())]

    def served_by(self, request: str) -> set[int]:
        """The PIDs whose access lines (`--access-log`) show `request` ("GET /v1.0/a/q")."""
        line = re.compile(rf"(\d+) INFO uvicorn\.access: .*\b{re.escape(request)}\b")
        return {int(pid) for pid in line.findall(self.log())}

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait()
