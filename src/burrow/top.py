"""`burrow top`: a live terminal view of the busiest queues, from the stats API.

Each refresh asks one server for `GET /v1.0?detail=stats` (every account, admin keys
only) and each account's `GET /v1.0/{a}?detail=stats`, or with `--account` that one
account's alone, page after page. put/s and claim/s are the changes of `put_total` and
`claimed_total` since the refresh before, per second: those counters are the server
process's own, so the view watches the first `--server` only (rates taken across
servers would be nonsense). Rows are ordered busiest first (put/s + claim/s, then
depth), as many as the terminal has lines for. `q` quits: stdin is in cbreak mode while
the view runs, and is put back as it was however the view ends (q, Ctrl-C, an error). A
server error is a line in the view, and the next refresh tries again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import click
import orjson
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from burrow.cli_client import HELP_OPTIONS, Session, client_command
from burrow.client import Client
from burrow.client.wire import API_ROOT, Call, Request, path, read_json
from burrow.errors import BurrowError

PAGE = 100  # accounts or queues asked for at once: no more than any server's max_limit
INTERRUPT_LOOK = 0.2  # seconds between looks for a Ctrl-C while waiting for a key
CHROME = 7  # terminal lines taken by the header, the table's head and the error line

QueueKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # time.monotonic() when it was taken
    queues: dict[QueueKey, dict[str, Any]]  # each queue's stats, as the server gives them


@dataclass(frozen=True, slots=True)
class Row:
    account: str
    queue: str
    messages: int
    visible: int
    hidden: int
    oldest_age: float | None
    put_rate: float | None  # None on the first refresh, or when the server restarted
    claim_rate: float | None

    @property
    def order(self) -> tuple[float, int]:
        return ((self.put_rate or 0) + (self.claim_rate or 0), self.messages)


def rows(previous: Sample | None, current: Sample) -> list[Row]:
    """The queues of `current`, busiest first, with their rates since `previous`."""
    found = []
    for (account, queue), stats in current.queues.items():
        before = None if previous is None else previous.queues.get((account, queue))
        seconds = 0.0 if previous is None else current.at - previous.at
        found.append(
            Row(
                account,
                queue,
                stats["messages"],
                stats["visible"],
                stats["hidden"],
                stats["oldest_age"],
                _rate(before, stats, "put_total", seconds),
                _rate(before, stats, "claimed_total", seconds),
            )
        )
    return sorted(found, key=lambda row: row.order, reverse=True)


def _rate(
    before: dict[str, Any] | None, now: dict[str, Any], counter: str, seconds: float
) -> float | None:
    if before is None or seconds <= 0 or now[counter] < before[counter]:
        return None
    return float(now[counter] - before[counter]) / seconds


class Stats:
    """Samples one server's stats: every account's, or those of `account`."""

    def __init__(self, client: Client, account: str | None) -> None:
        self.client = client
        self.account = account

    def sample(self) -> Sample:
        accounts = [self.account] if self.account else list(self._pages(API_ROOT))
        queues = {
            (account, queue): stats
            for account in accounts
            for queue, stats in self._pages(path(account)).items()
        }
        return Sample(time.monotonic(), queues)

    def _pages(self, where: str) -> dict[str, dict[str, Any]]:
        """Every account's (at `/v1.0`) or queue's (at `/v1.0/{a}`) stats, page after page."""
        found: dict[str, dict[str, Any]] = {}
        params = {"detail": "stats", "limit": str(PAGE)}
        while True:
            request = Request("GET", where, params)
            page: dict[str, dict[str, Any]] = self.client.send(Call(request, read_json, dict))
            found.update(page)
            if len(page) < PAGE:
                return found
            params = {**params, "marker": next(reversed(page))}


class Keys:
    """The keyboard: stdin in cbreak mode (keys come one at a time, unechoed) while in use.

    Ctrl-C (SIGINT) is noted rather than raised while in use: raised in the middle of a
    request it could leave the HTTP client's connection pool locked, and its closing
    waiting forever; the view ends at the next wait for a key instead (a second Ctrl-C
    raises at once).
    """

    def __init__(self) -> None:
        self.fd: int | None = sys.stdin.fileno() if sys.stdin.isatty() else None
        self._saved: list[Any] | None = None
        self._interrupted = False
        self._previous: Any = None

    def __enter__(self) -> Keys:
        self._previous = signal.signal(signal.SIGINT, self._interrupt)
        if self.fd is not None:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.fd is not None and self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        signal.signal(signal.SIGINT, self._previous)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self._interrupted:  # a second Ctrl-C: a request that hangs is not waited for
            raise KeyboardInterrupt
        self._interrupted = True

    def quit_within(self, seconds: float) -> bool:
        """Wait `seconds` for `q`; True if it was pressed."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self._interrupted:
            if self.fd is None:
                time.sleep(min(left, INTERRUPT_LOOK))
                continue
            readable, _, _ = select.select([self.fd], [], [], min(left, INTERRUPT_LOOK))
            if readable:
                typed = os.read(self.fd, 64)
                if not typed:  # the terminal is gone: no key will come
                    self.fd = None
                elif b"q" in typed.lower():
                    return True
        return self._interrupted


def view(shown: list[Row], heading: str, error: str | None, height: int) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, expand=True)
    table.add_column("account")
    table.add_column("queue")
    for name in ("depth", "visible", "hidden", "oldest", "put/s", "claim/s"):
        table.add_column(name, justify="right")
    for row in shown[: max(height - CHROME, 1)]:
        table.add_row(
            row.account,
            row.queue,
            str(row.messages),
            str(row.visible),
            str(row.hidden),
            _age(row.oldest_age),
            _per_second(row.put_rate),
            _per_second(row.claim_rate),
        )
    parts: list[RenderableType] = [Text(heading, style="bold"), table]
    if not shown and error is None:
        parts.append(Text("no queue holds messages", style="dim"))
    if error is not None:
        parts.append(Text(error, style="bold red"))
    return Group(*parts)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _per_second(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1f}"


def refreshes(stats: Stats) -> Iterator[tuple[list[Row], str | None]]:
    """Each refresh's rows and error (None, or why this one failed: the last rows stay)."""
    previous: Sample | None = None
    shown: list[Row] = []
    while True:
        try:
            current = stats.sample()
        except BurrowError as error:
            yield shown, error.message
            continue
        shown = rows(previous, current)
        previous = current
        yield shown, None


def run(stats: Stats, interval: float, show: Callable[[list[Row], str | None], None]) -> None:
    """Refresh every `interval` seconds until `q`."""
    with Keys() as keys:
        for shown, error in refreshes(stats):
            show(shown, error)
            if keys.quit_within(interval):
                return


@click.command(context_settings=HELP_OPTIONS)
@click.option("--account", help="Only this account's queues (any key of it will do).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@client_command
def top(cli: Session, account: str | None, interval: float) -> None:
    """A live view of the busiest queues: depth, visible, hidden, oldest age, put/s and
    claim/s. Press q to quit.

    Without --account it shows every account's queues (an admin key's view). With
    several --server URLs it watches the first. --json prints each refresh as one JSON
    document per line instead.
    """
    server = cli.servers[0]
    scope = f"account {account}" if account else "all accounts"
    heading = f"burrow top: {server}, {scope}, every {interval:g} s (q quits)"
    with (
        contextlib.suppress(KeyboardInterrupt),
        Client(server, token=cli.token, verify=cli.tls) as client,
    ):
        stats = Stats(client, account)
        if cli.as_json:
            run(stats, interval, _print_json)
            return
        console = Console()
        with Live(console=console, screen=True, auto_refresh=False) as live:

            def show(shown: list[Row], error: str | None) -> None:
                stamp = f"{heading}  {time.strftime('%H:%M:%S')}"
                live.update(view(shown, stamp, error, console.height), refresh=True)

            run(stats, interval, show)


def _print_json(shown: list[Row], error: str | None) -> None:
    document = {"queues": [dataclasses.asdict(row) for row in shown], "error": error}
    click.echo(orjson.dumps(document))
