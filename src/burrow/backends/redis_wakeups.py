"""Long-poll wake-ups across Burrow servers sharing one Redis: pub/sub into a `Notifier`.

Every write script PUBLISHes on its queue's channel `<writer id> <ms until each
hidden message shows>`; the writer wakes its own waiters directly and ignores
its own echo. Each backend holds ONE pub/sub connection and subscribes to a
queue's channel only while it has local waiters on that queue (refcounted), so
a server receives the traffic of the queues it waits on and nothing else.

`Backend.subscribe()` is synchronous, so the SUBSCRIBE is confirmed a round
trip later. A look at the queue that began before the confirmation and found
nothing may have missed another server's write: its waiters are woken to look
again, at once if the confirmation came meanwhile, else when it comes. A lost connection
is re-established with every channel, and all waiters are woken likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio.client import PubSub

from burrow.backends.background import stop_tasks
from burrow.backends.base import Subscription
from burrow.backends.notify import Notifier

logger = logging.getLogger(__name__)

# A silent connection is pinged after this many seconds and dropped after twice that.
_IDLE = 5.0
_RETRY_MIN, _RETRY_MAX = 0.05, 1.0

Connect = Callable[[], Awaitable[PubSub]]


def channel_for(account: str, queue: str) -> bytes:
    return f"b:{{{account.encode().hex()}}}:w:{queue.encode().hex()}".encode()


def _queue_of(channel: bytes) -> tuple[str, str]:
    tag, _, queue = channel.decode().rpartition(":w:")
    account = tag[tag.index("{") + 1 : tag.index("}")]
    return bytes.fromhex(account).decode(), bytes.fromhex(queue).decode()


class _RedisSubscription(Subscription):
    __slots__ = ("_channel", "_closed", "_inner", "_wakeups")

    def __init__(self, wakeups: Wakeups, channel: bytes, inner: Subscription) -> None:
        self._wakeups = wakeups
        self._channel = channel
        self._inner = inner
        self._closed = False

    async def wait(self, seconds: float) -> bool:
        return await self._inner.wait(seconds)

    def interrupt(self) -> None:
        self._inner.interrupt()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.close()
            self._wakeups.release(self._channel)


class Wakeups:
    """One pub/sub connection feeding the local `Notifier`; see the module docstring."""

    def __init__(self, connect: Connect, notifier: Notifier, origin: str) -> None:
        self._connect = connect
        self._notifier = notifier
        self._origin = origin.encode()
        self._own = f"b:wake:{origin}".encode()
        self._refs: dict[bytes, int] = {}
        self._pending: dict[bytes, int] = {}  # SUBSCRIBEs sent but not confirmed
        self._confirmed: set[bytes] = set()
        self._dirty: set[bytes] = set()  # waiters must look again once confirmed
        self._commands: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await stop_tasks([self._task])

    def subscribe(self, account: str, queue: str) -> Subscription:
        channel = channel_for(account, queue)
        inner = self._notifier.subscribe(account, queue)
        count = self._refs.get(channel, 0)
        self._refs[channel] = count + 1
        if count == 0:
            self._send("subscribe", channel)
        return _RedisSubscription(self, channel, inner)

    def release(self, channel: bytes) -> None:
        count = self._refs.get(channel, 0) - 1
        if count > 0:
            self._refs[channel] = count
            return
        self._refs.pop(channel, None)
        self._confirmed.discard(channel)
        self._dirty.discard(channel)
        self._send("unsubscribe", channel)

    def unconfirmed(self, account: str, queue: str) -> bool:
        """True while a look at the queue could miss a write its waiters are not told of."""
        channel = channel_for(account, queue)
        return channel in self._refs and channel not in self._confirmed

    def found_nothing(self, account: str, queue: str) -> None:
        """A look begun while `unconfirmed` found nothing: its waiters must look again."""
        channel = channel_for(account, queue)
        if channel in self._confirmed:
            self._notifier.changed(account, queue)
        elif channel in self._refs:
            self._dirty.add(channel)

    def _send(self, command: str, channel: bytes) -> None:
        if command == "subscribe":
            self._confirmed.discard(channel)
            self._pending[channel] = self._pending.get(channel, 0) + 1
        self._commands.put_nowait((command, channel))

    async def _run(self) -> None:
        delay = _RETRY_MIN
        while True:
            pubsub: PubSub | None = None
            try:
                pubsub = await self._connect()
                channels = list(self._refs)
                self._pending = dict.fromkeys(channels, 1)
                self._confirmed.clear()
                self._dirty.update(channels)
                while not self._commands.empty():
                    self._commands.get_nowait()
                await pubsub.subscribe(self._own, *channels)
                sender = asyncio.create_task(self._send_commands(pubsub))
                try:
                    await self._read(pubsub)
                finally:
                    sender.cancel()
                    # Not `suppress(CancelledError)`: that would also swallow a cancel of
                    # this task arriving meanwhile (`stop`), which then waited forever.
                    await asyncio.gather(sender, return_exceptions=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect with every channel
                logger.warning("redis pub/sub connection lost (%s); reconnecting", exc)
            finally:
                self.connected.clear()
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)

    async def _send_commands(self, pubsub: PubSub) -> None:
        while True:
            command, channel = await self._commands.get()
            if command == "subscribe":
                await pubsub.subscribe(channel)
            else:
                await pubsub.unsubscribe(channel)

    async def _read(self, pubsub: PubSub) -> None:
        heard = time.monotonic()
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=_IDLE)
            now = time.monotonic()
            if message is None:
                if now - heard > 2 * _IDLE:
                    raise ConnectionError("no answer to ping")
                if not pinged:
                    await pubsub.ping()
                    pinged = True
                continue
            heard, pinged = now, False
            kind = message["type"]
            channel = message["channel"]
            if kind == "message":
                self._deliver(channel, message["data"])
            elif kind == "subscribe":
                self._confirm(channel)

    def _confirm(self, channel: bytes) -> None:
        if channel == self._own:
            self.connected.set()
            return
        left = self._pending.get(channel, 0) - 1
        if left > 0:
            self._pending[channel] = left
            return
        self._pending.pop(channel, None)
        if channel in self._refs:
            self._confirmed.add(channel)
            if channel in self._dirty:
                self._dirty.discard(channel)
                self._notifier.changed(*_queue_of(channel))

    def _deliver(self, channel: bytes, data: bytes) -> None:
        origin, *hides = data.split()
        if origin == self._origin:
            return  # the writer woke its own waiters already
        now = time.time()
        self._notifier.written(*_queue_of(channel), (now + int(ms) / 1000 for ms in hides))
