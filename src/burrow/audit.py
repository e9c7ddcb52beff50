"""The audit log (`burrow.audit`): refused requests, counted, with client values escaped.

Every 401, 403 and 429 is a WARNING of the `burrow.audit` logger, and a flood of them
cannot flood the log: the first refusal of a kind (same status, method, account, key,
reason and address) is written at once, its repeats are counted and written as one line
a second with their number, and at most `MAX_LINES` kinds a second get a line of their
own (the rest are summed up in one). Every value a client chose goes through `escaped`,
so none can end a line and begin a forged one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

audit = logging.getLogger("burrow.audit")

WINDOW = 1.0  # seconds: a kind's repeats are written at most this often
MAX_LINES = 100  # kinds itemized per window; a flood of distinct refusals stays bounded
_PLAIN = re.compile(r"[\w.~:@+=,/%-]+", re.ASCII)  # logged as they are


def escaped(value: str) -> str:
    """`value` as it is when it holds only plain characters (`acme`, `/v1.0/a/q`), else as
    a JSON string: control characters, spaces, quotes and non-ASCII are escaped."""
    return value if _PLAIN.fullmatch(value) else json.dumps(value)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One kind of refused request; the values are as the client sent them."""

    status: int
    reason: str  # the server's words
    method: str | None = None  # set for a refused credential (401/403)
    account: str | None = None  # None: a call across all accounts
    key: str | None = None  # the id of the key presented, when the key file has it
    address: str | None = None

    def log(self, count: int) -> None:
        """One line for `count` refusals of this kind."""
        account = "(all)" if self.account is None else escaped(self.account)
        key, address = escaped(self.key or "-"), escaped(self.address or "-")
        extra = {
            "tenant": self.account,
            "key": self.key,
            "action": self.method or "rate-limit",
            "address": self.address,
            "count": count,
        }
        if self.method is not None:  # a refused credential
            method = escaped(self.method)
            form = "%d %s on account %s by key %s: %s (x%d from %s)"
            args: tuple[object, ...] = (method, account, key, self.reason, count, address)
        elif self.address is not None:  # an address refused before its credentials
            form, args = "%d x%d from %s: %s", (count, address, self.reason)
        else:  # a rate limit
            form, args = "%d x%d on account %s by key %s: %s", (count, account, key, self.reason)
        audit.warning(form, self.status, *args, extra=extra)


class Tally:
    """Refusals, written to the audit log in aggregate (see the module's docstring)."""

    def __init__(self) -> None:
        self._repeats: dict[Refusal, int] = {}  # since each kind's last line
        self._written: set[Refusal] = set()  # kinds with a line in this window
        self._window_ends = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, refusal: Refusal) -> None:
        now = time.monotonic()
        if now >= self._window_ends:
            self._flush(now)
        if refusal not in self._written and len(self._written) < MAX_LINES:
            self._written.add(refusal)
            refusal.log(1)
            return
        self._repeats[refusal] = self._repeats.get(refusal, 0) + 1
        if self._timer is None:
            self._timer = _later(self._window_ends - now, self._on_timer)

    def _on_timer(self) -> None:
        """The tail of a flood that has stopped is written all the same."""
        self._timer = None
        now = time.monotonic()
        if now >= self._window_ends:
            self._flush(now)
        elif self._repeats:
            self._timer = _later(self._window_ends - now, self._on_timer)

    def _flush(self, now: float) -> None:
        """Write the window's repeats, most frequent first, and begin the next window."""
        ranked = sorted(self._repeats.items(), key=lambda item: item[1], reverse=True)
        itemized, rest = ranked[:MAX_LINES], ranked[MAX_LINES:]
        for refusal, count in itemized:
            refusal.log(count)
        if rest:
            audit.warning(
                "%d more refusals of %d other kinds in the last %gs",
                sum(count for _, count in rest),
                len(rest),
                WINDOW,
            )
        self._written = {refusal for refusal, _ in itemized}
        self._repeats = {}
        self._window_ends = now + WINDOW


def _later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle | None:
    """Call `callback` in `delay` seconds on the running event loop; None outside one
    (the next refusal then writes what is pending)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later(max(delay, 0.0), callback)
