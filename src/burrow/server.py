"""Assembly: settings → backend → service → frontends → one ASGI app, and serving it.

Start-up, in order: every setting is checked (`Settings.load`, then `build_app`: TLS
files, backend URL, key file), the port is bound, the backend is opened, and the ready
line is logged: `Burrow ready at http://H:P (worker PID): backend …, auth …`. A setting
that cannot work is a ConfigError before anything is bound or opened; a backend that
cannot be opened (its engine down) is one log line and exit status 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator
from time import perf_counter

import uvicorn

from burrow.audit import escaped
from burrow.auth import Guard, OpenAccess, open_guard
from burrow.backends import backend_kind, describe_backend, open_backend
from burrow.backends.base import Backend, KnownFault
from burrow.config import Settings
from burrow.errors import BurrowError, ConfigError, InvalidRequest, MethodNotAllowed, NotFound
from burrow.frontends import openapi
from burrow.frontends.asgi import (
    Answer,
    Receive,
    Response,
    Scope,
    Send,
    path_segments,
    query_params,
)
from burrow.frontends.burrow_v1 import BurrowV1
from burrow.frontends.http_limits import bounded_protocol
from burrow.frontends.sqs import SqsFrontend, is_sqs
from burrow.frontends.websocket import WebSocketStreams
from burrow.logs import RequestIds, current
from burrow.metrics import Metrics
from burrow.service import Service
from burrow.ui import Dashboard
from burrow.webhooks import Deliveries, DeliverySettings
from burrow.workers import Supervisor, listening_socket

logger = logging.getLogger(__name__)

VERSIONS = Response.json(["v1.0"])
LIVE = Response.json({"status": "live"})
BAD_SETTING = 2  # exit status for a setting that cannot work (as `burrow serve` gives it)
BACKEND_DOWN = 3  # exit status when the backend cannot be opened (uvicorn's for a failed start)
CUT_SHORT = 1  # exit status when requests were still unanswered as serving stopped


class App:
    """The ASGI application: `/`, `/health`, `/openapi.json`, `/metrics`, `/v1.0/…` (v1.0
    frontend), the dashboard (`/ui/`, `/whoami`: `burrow.ui`), and SQS's requests (the
    SQS frontend: `sqs.is_sqs` tells them).

    Every request is counted for `/metrics` (`burrow.metrics_recorder`) and answered
    with an `X-Request-Id` (`burrow.logs`).

    `/health` is the backend's `health()`, 503 when failing (readiness, for load
    balancers); `/health?live` only says the process answers (liveness), always 200.

    Its backend is opened and closed by the server around serving (`serve`), not by
    ASGI lifespan events, so that a backend that cannot open stops the server first.
    """

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        guard: Guard,
        metrics_directory: str | None = None,
    ) -> None:
        """`metrics_directory`: where each worker's counters go, with `--workers` > 1."""
        self.backend = backend
        self.guard = guard
        self.backend_description = describe_backend(settings.backend)
        self.description = f"backend {self.backend_description}, auth {guard.description}"
        self.service = Service(backend, settings.limits, settings.accounts)
        self.v1 = BurrowV1(self.service, guard)
        self.sqs = SqsFrontend(self.service, guard)
        self.metrics = Metrics(self.service, guard, settings.metrics, metrics_directory)
        self.request_ids = RequestIds()
        self.logs_request_ids = settings.log_format == "json"  # (text lines have none)
        self.dashboard = Dashboard(self.service, guard)
        self.webhooks = (
            Deliveries(self.service, _delivery_settings(settings)) if settings.webhooks else None
        )
        self.websockets = WebSocketStreams(self.service, guard)
        self.meta = {
            "": VERSIONS,
            "openapi.json": Response.json(openapi.document(settings.limits)),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            started = perf_counter()
            request_id = self.request_ids.of(scope)
            if self.logs_request_ids:  # (each request has a task, and context, of its own)
                current.set((request_id, started))
            response = await self._respond(scope, receive)
            await response.send(send, request_id)
            self.metrics.recorder.http(scope, response.status, perf_counter() - started)
        elif scope["type"] == "websocket":
            await self.websockets(scope, receive, send)

    async def _respond(self, scope: Scope, receive: Receive) -> Answer:
        try:
            path = path_segments(scope)
            if path and path[0] == "v1.0":
                return await self.v1.handle(scope, receive, path[1:], query_params(scope))
            if path not in (["sign"], ["health"], ["whoami"], ["metrics"]) and is_sqs(scope):
                return await self.sqs.handle(scope, receive)  # (it reads its own query)
            query = query_params(scope)
            if path and path[0] == "ui":
                return self.dashboard.page(scope, path[1:], query)
            if path == ["whoami"]:
                return self.dashboard.whoami(scope, query)
            if path == ["sign"]:
                return await self.v1.sign(scope, receive, query)
            if path == ["health"]:
                return await self._health(scope["method"], query)
            if path == ["metrics"]:
                return await self.metrics.handle(scope, query)
            return self._meta(scope["method"], path, query)
        except BurrowError as error:
            if error.status >= 500 and not isinstance(error, KnownFault):
                logger.error("%s %s failed: %s", *_logged(scope), escaped(error.message))
            elif logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s %s: %s", *_logged(scope), escaped(error.message))
            return Response.error(error)
        except Exception:
            logger.exception("unexpected error on %s %s", *_logged(scope))
            return Response.json({"error": "internal error"}, 500)

    async def _health(self, method: str, query: dict[str, str]) -> Response:
        self._check_meta(method, {})
        if query == {"live": ""}:
            return LIVE
        if query:
            raise InvalidRequest("/health takes no query parameter but live, with no value")
        report = await self.backend.health()
        return Response.json(report, 503 if report["status"] == "failing" else 200)

    def _meta(self, method: str, path: list[str], query: dict[str, str]) -> Response:
        """`/` and `/openapi.json` (and `/health`): open to all, GET only."""
        if len(path) != 1 or path[0] not in self.meta:
            raise NotFound("no such path")
        self._check_meta(method, query)
        return self.meta[path[0]]

    @staticmethod
    def _check_meta(method: str, query: dict[str, str]) -> None:
        if method != "GET":
            raise MethodNotAllowed(method, ("GET",))
        if query:
            raise InvalidRequest("this path takes no query parameters")


def build_app(settings: Settings, metrics_directory: str | None = None) -> App:
    """The app for `settings`, once every setting it uses is checked (ConfigError)."""
    if settings.auth == "none" and not settings.insecure and not _loopback(settings.host):
        raise ConfigError(
            f"refusing to serve on {settings.host} with no authentication: "
            "use --auth keys:PATH, or --insecure if you really mean it"
        )
    if settings.tls_cert:
        _check_tls(settings.tls_cert, settings.tls_key)
    backend = open_backend(settings.backend)
    guard = open_guard(settings.auth, settings.signing_secret_file)
    return App(backend, settings, guard, metrics_directory)


def _delivery_settings(settings: Settings) -> DeliverySettings:
    return DeliverySettings(
        settings.webhook_timeout,
        settings.webhook_lease,
        settings.webhook_backoff,
        settings.webhook_max_backoff,
        settings.webhook_scan_every,
    )


def _logged(scope: Scope) -> tuple[str, str]:
    """A request's method and path, escaped for a log line (the client chose them)."""
    return escaped(scope["method"]), escaped(scope["path"])


def _check_tls(cert: str, key: str) -> None:
    """Load the certificate and key once now: a bad one stops the server before it starts."""
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        if not os.path.isfile(path):
            raise ConfigError(f"{name} {path}: no such file")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cert)
    except ssl.SSLError as error:
        raise ConfigError(f"tls_cert {cert} is not a PEM certificate ({error})") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise ConfigError(
            f"tls_key {key} is not the PEM private key of tls_cert {cert} ({error})"
        ) from None


def _tune_gc() -> None:
    """Collect less often while serving; called once the server is up (in each worker).

    What is alive by now (modules, the app, the backend's connections) stays for the
    process's life: frozen, it is never walked again. At the default threshold (700)
    the young generation was collected hundreds of times a second under load, 3-4% of
    the CPU (memory and redis backends); at 20,000 about 1%. The middle generation
    every 5 young passes: at (50,000, 20) one of its passes walked up to a million
    objects, 80-100 ms with every request waiting (batch PUTs into a memory queue of a
    million messages); now 25 ms at most. The oldest rarely (100): with the startup
    heap frozen it holds only what the backend keeps.
    """
    gc.collect()  # no startup garbage frozen for good
    gc.freeze()
    gc.set_threshold(20_000, 5, 100)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _BurrowServer(uvicorn.Server):
    """Opens the backend before serving and says it is ready in one line; answers pending
    long polls as soon as shutdown starts, so it is quick, and closes the backend last.

    Stopped by SIGTERM or SIGINT, it exits 0 once every request is answered (uvicorn
    would raise the signal again, and SIGTERM would end the process with it), or
    `CUT_SHORT` if the drain was (a second Ctrl+C, or `timeout_graceful_shutdown`)."""

    def __init__(self, config: uvicorn.Config, app: App) -> None:
        super().__init__(config)
        self.burrow = app
        self.unanswered = 0  # requests still running when the drain ended

    async def run_app(self, sock: socket.socket) -> int:
        """Serve on `sock` until SIGINT/SIGTERM; returns the exit status."""
        try:
            await self.burrow.backend.open()
        except BurrowError as error:
            sock.close()
            return _cannot_open(self.burrow, error)
        self.burrow.sqs.moves.open()
        if self.burrow.webhooks is not None:
            self.burrow.webhooks.open()
        if self.burrow.metrics.shared is not None:
            self.burrow.metrics.shared.start()
        await self.serve([sock])
        return CUT_SHORT if self.unanswered else 0

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()  # handled: the server has stopped (see the class)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started or not sockets:
            return
        _tune_gc()
        scheme = "https" if self.config.ssl else "http"
        host, port = sockets[0].getsockname()[:2]
        address = f"[{host}]" if ":" in host else host
        logger.info(
            "Burrow ready at %s://%s:%d (worker %d): %s",
            scheme,
            address,
            port,
            os.getpid(),
            self.burrow.description,
        )
        if isinstance(self.burrow.guard, OpenAccess):
            logger.warning("authentication is off: every request is accepted")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.burrow.webhooks is not None:
            self.burrow.webhooks.stop()  # (before the drain wakes their long polls)
        self.burrow.service.drain()
        await super().shutdown(sockets)
        self.unanswered = len(self.server_state.tasks)  # (cancelled, if any, not yet ended)
        if self.unanswered:
            logger.error("the drain was cut short: %d request(s) unanswered", self.unanswered)
        if self.burrow.webhooks is not None:
            await self.burrow.webhooks.close()  # (each delivery ends its POST first)
        await self.burrow.sqs.moves.close()
        if self.burrow.metrics.shared is not None:
            await self.burrow.metrics.shared.stop()
        await self.burrow.backend.close()  # no request is left to use it
        logger.info("Burrow stopped (worker %d)", os.getpid())


def serve(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; in-flight requests finish, waiters are answered.

    Returns the exit status. Raises ConfigError for a setting that cannot work.
    """
    app = build_app(settings)
    if settings.workers == 1:
        return _serve_one(settings, app, listening_socket(settings.host, settings.port))
    if not app.backend.shared_between_processes:
        raise ConfigError(
            "--workers > 1 needs a backend shared between processes (sqlite, redis, "
            "postgresql, http, ring); "
            f"{backend_kind(settings.backend)} lives in one process"
        )
    try:
        app.backend.prepare()
    except BurrowError as error:
        return _cannot_open(app, error)
    # Each worker builds its own app (and backend connections) after the fork; what this
    # process holds is frozen first, so the workers' collections leave the pages they
    # share with it untouched (no copy on write).
    gc.freeze()
    # Each worker's counters are gathered there for /metrics (`burrow.metrics_shared`).
    with tempfile.TemporaryDirectory(prefix="burrow-metrics-") as shared:
        supervisor = Supervisor(
            settings.workers,
            settings.host,
            settings.port,
            lambda sock: _serve_one(settings, build_app(settings, shared), sock),
        )
        return supervisor.run()


def _cannot_open(app: App, error: BurrowError) -> int:
    """Log why the backend cannot open; the exit status that says so."""
    logger.error("cannot open the backend, %s: %s", app.backend_description, error.message)
    # An engine whose settings cannot keep Burrow's promises is a setting to fix.
    return BAD_SETTING if isinstance(error, ConfigError) else BACKEND_DOWN


def _serve_one(settings: Settings, app: App, sock: socket.socket) -> int:
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=bounded_protocol(settings.limits.header_timeout),
        lifespan="off",  # the backend is opened by `_BurrowServer.run_app`
        access_log=settings.access_log,
        log_config=None,
        timeout_graceful_shutdown=30,
        server_header=False,
        # WebSocket streams: a frame holds at most what a batch PUT's body may; no
        # compression, whose state per connection would cost more than the stream.
        ws_max_size=settings.limits.max_batch_bytes,
        ws_per_message_deflate=False,
        proxy_headers=False,  # no proxy in front by default; saves work on every request
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        return runner.run(_BurrowServer(config, app).run_app(sock))
