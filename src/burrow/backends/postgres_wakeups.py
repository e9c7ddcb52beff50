"""Long-poll wake-ups across Burrow servers sharing one PostgreSQL: LISTEN/NOTIFY into a
`Notifier`.

A write notifies the local `Notifier` directly (the backend does), and every other
server through `pg_notify` once it has committed (several notices in one statement;
see `sql.NOTIFY_MANY`), with the hide deadlines as seconds from now. A look at a queue
someone here waits on first reads when its next hidden message shows (`sql.NEXT_SHOWN`),
unless the notifier knows already; the notifier keeps that one deadline per waited-on
queue, lowered by the hides it hears of, and nothing for other queues. Each backend
holds one listening connection, which reconnects by itself; after a reconnect, waiters
are woken (they may have missed a write) and look their deadlines up again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterable

import asyncpg

from burrow.backends import postgres_sql as sql
from burrow.backends.background import stop_tasks
from burrow.backends.notify import Notifier
from burrow.backends.postgres_pool import Pool
from burrow.errors import BackendUnavailable

logger = logging.getLogger(__name__)

# The listening connection is pinged when silent this long, and replaced when lost.
LISTEN_IDLE = 5.0
_RETRY_MIN, _RETRY_MAX = 0.05, 1.0
# At most this many distinct hide delays travel in one notification (payloads are
# limited to 8000 bytes; names take up to about 2 KB of it).
_MAX_NOTICE_HIDES = 200


class Wakeups:
    """One listening connection feeding the local `Notifier`, and the notices sent to the
    other servers; see the module docstring."""

    def __init__(self, pool: Pool, notifier: Notifier) -> None:
        self._pool = pool
        self._notifier = notifier
        self._origin = uuid.uuid4().hex  # this backend's notices, to skip their echo
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()
        self._outbox: dict[str, None] = {}  # notices to send, in order, each once
        self._outbox_ready = asyncio.Event()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever()),
            asyncio.create_task(self._send_forever()),
        ]

    async def stop(self) -> None:
        await stop_tasks(self._tasks)

    def publish(self, account: str, queue: str, hides: Iterable[int]) -> None:
        """Tell the other servers of a committed write, with the next batch of notices."""
        self._outbox[self._notice(account, queue, hides)] = None
        self._outbox_ready.set()

    async def look_ahead(self, conn: asyncpg.Connection, account: str, queue: str) -> None:
        """Before a look at a queue someone here waits on: learn when its next hidden
        message shows, unless the notifier knows (see `Notifier.unknown`)."""
        ticket = self._notifier.unknown(account, queue)
        if ticket is not None:
            seconds: float | None = await conn.fetchval(sql.NEXT_SHOWN, account, queue)
            self._notifier.learned(ticket, None if seconds is None else time.time() + seconds)

    # Notices to the other servers ------------------------------------------------------

    async def _send_forever(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            notices, self._outbox = list(self._outbox), {}
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(sql.NOTIFY_MANY, notices)
            except BackendUnavailable as exc:
                # Other servers' waiters then wake at their next look or their timeout.
                logger.warning("postgresql: %d wake-ups not sent: %s", len(notices), exc.message)

    def _notice(self, account: str, queue: str, hides: Iterable[int]) -> str:
        """The payload other servers receive: who wrote, where, and when hidden ones show."""
        shown_in = sorted({h for h in hides if h})
        step = 1
        while len(shown_in) > _MAX_NOTICE_HIDES:
            # Round up to coarser steps: waking a little late is harmless, too early
            # would leave the waiter with no timer for the real moment.
            step *= 2
            shown_in = sorted({-(-h // step) * step for h in shown_in})
        return json.dumps([self._origin, account, queue, shown_in], ensure_ascii=False)

    # Wake-ups from other servers --------------------------------------------------------

    async def _listen_forever(self) -> None:
        delay = _RETRY_MIN
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._pool.connect()
                await self._listen(conn)
            except Exception as exc:  # whatever broke it, listen on a new connection
                if self.listening.is_set():
                    logger.warning("postgresql listener lost (%s); reconnecting", exc)
                    delay = _RETRY_MIN
            finally:
                self.listening.clear()
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        """Deliver notifications until the connection is lost (or stops answering)."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        await conn.add_listener(sql.CHANNEL, self._heard)
        self._notifier.lost_track()  # listening now: waiters look again, deadlines anew
        self.listening.set()
        while not conn.is_closed():
            try:
                async with asyncio.timeout(LISTEN_IDLE):
                    await lost.wait()
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=LISTEN_IDLE)
        raise ConnectionError("connection closed")

    def _heard(self, conn: object, pid: int, channel: str, payload: str) -> None:
        try:
            origin, account, queue, hides = json.loads(payload)
        except ValueError:
            logger.warning("postgresql: ignored a malformed notification %r", payload[:200])
            return
        if origin == self._origin:
            return  # the writer woke its own waiters already
        now = time.time()
        self._notifier.written(account, queue, (now + h for h in hides))
