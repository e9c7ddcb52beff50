"""`burrow top` in a pseudo-terminal against a real server: rows refresh, q quits."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator

import httpx
import pytest

from tests import test_auth
from tests.servers import BurrowServer
from tests.test_auth import Tokens
from tests.waiting import PATIENCE, missing

secured = test_auth.secured  # a server with --auth keys: a writer and a reader of "a", an admin

ROWS, COLUMNS = 30, 120
ESCAPES = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>78])")


class Terminal:
    """`burrow top ARGS` on a pseudo-terminal of ROWS x COLUMNS; its screen's text gathered."""

    def __init__(self, *args: str, token: str | None = None) -> None:
        controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.update(TERM="xterm-256color", BURROW_TOKEN=token or "")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "burrow", "top", *args],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=env,
        )
        os.close(terminal)
        self.controller = controller
        self.shown = b""

    def text(self) -> str:
        return ESCAPES.sub(b"", self.shown).decode(errors="replace")

    def wait_for(self, pattern: str, what: str) -> list[re.Match[str]]:
        """Every match of `pattern` on the screen so far, once there is one."""
        deadline = time.monotonic() + PATIENCE
        while not (found := list(re.finditer(pattern, self.text()))):
            if time.monotonic() > deadline:
                raise missing(f"{what}; the screen:\n{self.text()[-3000:]}", PATIENCE)
            self._read(0.1)
        return found

    def _read(self, seconds: float) -> None:
        if select.select([self.controller], [], [], seconds)[0]:
            try:
                self.shown += os.read(self.controller, 65536)
            except OSError:  # the program has ended and closed the terminal
                time.sleep(seconds)

    def quit(self) -> int:
        """Press q; the exit status."""
        os.write(self.controller, b"q")
        return self._exit_status()

    def interrupt(self) -> int:
        """Ctrl-C (SIGINT: the terminal is not the program's controlling one); the exit status."""
        os.kill(self.process.pid, signal.SIGINT)
        return self._exit_status()

    def echoes(self) -> bool:
        """Whether the terminal is back in its usual mode (cbreak mode turns echo off)."""
        return bool(termios.tcgetattr(self.controller)[3] & termios.ECHO)

    def _exit_status(self) -> int:
        deadline = time.monotonic() + PATIENCE
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)  # keep draining, so a full terminal never blocks it
        return self.process.wait(1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.controller)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for terminal in started:
        terminal.close()


def put(server: BurrowServer, token: str, queue: str, message: str) -> None:
    url = f"{server.url}/v1.0/a/{queue}/{message}"
    assert httpx.put(url, content=b"x", headers={"X-Auth-Token": token}).status_code == 201


def row(queue: str, depth: int) -> str:
    """A row of account a's `queue` with `depth` messages, all visible; group 1 its put/s."""
    return rf"\ba\s+{queue}\s+{depth}\s+{depth}\s+0\s+\S+\s+(-|\d+\.\d)\s+(-|\d+\.\d)"


def test_rows_refresh_with_rates_and_q_quits(
    secured: tuple[BurrowServer, Tokens], terminals: list[Terminal]
) -> None:
    server, tokens = secured
    put(server, tokens.admin, "jobs", "m1")
    terminal = Terminal("--server", server.url, "--interval", "0.3", token=tokens.admin)
    terminals.append(terminal)
    terminal.wait_for(row("jobs", 1), "the queue's row with its one message")
    put(server, tokens.admin, "jobs", "m2")
    rows = terminal.wait_for(row("jobs", 2), "the row again, with the second message")
    assert float(rows[0][1]) > 0, "the refresh after the put shows its rate"
    assert "all accounts" in terminal.text()
    assert terminal.quit() == 0
    assert terminal.echoes()


def test_one_account_with_its_reader_key(
    secured: tuple[BurrowServer, Tokens], terminals: list[Terminal]
) -> None:
    server, tokens = secured
    put(server, tokens.admin, "mail", "m1")
    terminal = Terminal("--server", server.url, "--account", "a", "--token", tokens.reader_a)
    terminals.append(terminal)
    terminal.wait_for(row("mail", 1), "the queue's row")
    assert terminal.quit() == 0


def test_errors_show_in_the_view_and_ctrl_c_restores_the_terminal(
    secured: tuple[BurrowServer, Tokens], terminals: list[Terminal]
) -> None:
    server, tokens = secured
    terminal = Terminal("--server", server.url, token=tokens.reader_a)  # not an admin's view
    terminals.append(terminal)
    terminal.wait_for("this key does not grant that account", "the refusal, in the view")
    assert not terminal.echoes()  # in cbreak mode while it runs
    assert terminal.interrupt() == 0
    assert terminal.echoes()
    assert "Traceback" not in terminal.text()
