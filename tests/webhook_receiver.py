"""A real webhook endpoint for tests: an HTTP/1.1 server (keep-alive) on a free port of
127.0.0.1, in a thread of the test process, that records every POST it gets.

What it answers is the test's choice (`answer`: a delivery's status and headers); it
also notes each overlap, a POST that arrived while another of the same subscription
was still being answered, which ordered delivery by one server at a time never makes.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import standardwebhooks


@dataclass
class Delivery:
    """One POST as it arrived, and the status it was answered."""

    path: str  # the URL path it was sent to
    headers: dict[str, str]  # lowercase names
    body: bytes
    attempt: int  # 1 for the first POST of this message id to this path, 2 for the next...
    status: int = 0
    arrived: float = field(default_factory=time.monotonic)

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def subscription(self) -> str:
        return self.headers.get("burrow-subscription", "")

    def verified(self, secret: str) -> dict[str, object]:
        """The body as JSON, once its signature checks out (else WebhookVerificationError)."""
        found: dict[str, object] = standardwebhooks.Webhook(secret).verify(self.body, self.headers)
        return found


Answer = Callable[[Delivery], tuple[int, dict[str, str]]]


def always(status: int, **headers: str) -> Answer:
    return lambda delivery: (status, headers)


def failing_first(times: int, status: int = 500) -> Answer:
    """Fails each message's first `times` POSTs with `status`, then answers 204."""
    return lambda delivery: (status if delivery.attempt <= times else 204, {})


@dataclass
class Receiver:
    answer: Answer = field(default_factory=lambda: always(204))
    hold: float = 0.0  # seconds each POST is held before its answer (to widen overlaps)
    deliveries: list[Delivery] = field(default_factory=list)
    overlaps: list[Delivery] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: dict[str, int] = field(default_factory=dict)
    _attempts: dict[tuple[str, str], int] = field(default_factory=dict)

    def received(self, path: str | None = None) -> list[Delivery]:
        """The POSTs so far (to `path` only, if given), in arrival order."""
        with self._lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def accepted_ids(self, path: str | None = None) -> list[str]:
        """The message ids of the POSTs answered 2xx, in order."""
        return [d.message_id for d in self.received(path) if 200 <= d.status < 300]

    def _arrived(self, path: str, headers: dict[str, str], body: bytes) -> Delivery:
        with self._lock:
            key = (path, headers.get("webhook-id", ""))
            attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
            delivery = Delivery(path, headers, body, attempt)
            self.deliveries.append(delivery)
            busy = self._in_flight.get(delivery.subscription, 0)
            if busy:
                self.overlaps.append(delivery)
            self._in_flight[delivery.subscription] = busy + 1
        return delivery

    def _answered(self, delivery: Delivery) -> None:
        with self._lock:
            self._in_flight[delivery.subscription] -= 1


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    """Serve `receiver` on a free port of 127.0.0.1 (`receiver.url`) while in the block."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as webhook senders use it

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            delivery = receiver._arrived(self.path, headers, body)
            try:
                if receiver.hold:
                    time.sleep(receiver.hold)
                delivery.status, extra = receiver.answer(delivery)
            finally:
                receiver._answered(delivery)
            self.send_response(delivery.status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the test reads `receiver.deliveries`

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll: `shutdown` returns within it.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
