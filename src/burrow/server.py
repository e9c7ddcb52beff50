"""Assembly: settings → backend → service → frontends → one ASGI app, and serving it."""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import socket

import uvicorn

from burrow.auth import Guard, open_guard
from burrow.backends import open_backend
from burrow.backends.base import Backend
from burrow.config import Settings
from burrow.errors import BurrowError, InvalidRequest, MethodNotAllowed, NotFound
from burrow.frontends import openapi
from burrow.frontends.asgi import (
    Receive,
    Response,
    Scope,
    Send,
    path_segments,
    query_params,
)
from burrow.frontends.burrow_v1 import BurrowV1
from burrow.frontends.http_limits import bounded_protocol
from burrow.service import Service
from burrow.workers import Supervisor

logger = logging.getLogger(__name__)

VERSIONS = Response.json(["v1.0"])


class App:
    """The ASGI application: `/`, `/health`, `/openapi.json`, and `/v1.0/…` (v1.0 frontend)."""

    def __init__(self, backend: Backend, settings: Settings, guard: Guard) -> None:
        self.backend = backend
        self.service = Service(backend, settings.limits, settings.accounts)
        self.v1 = BurrowV1(self.service, guard)
        self.meta = {
            "": VERSIONS,
            "openapi.json": Response.json(openapi.document(settings.limits)),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await (await self._respond(scope, receive)).send(send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        try:
            path = path_segments(scope)
            query = query_params(scope)
            if path and path[0] == "v1.0":
                return await self.v1.handle(scope, receive, path[1:], query)
            if path == ["health"]:
                self._check_meta(scope["method"], query)
                return Response.json(await self.backend.health())
            return self._meta(scope["method"], path, query)
        except BurrowError as error:
            if error.status >= 500:
                logger.error("%s %s failed: %s", scope["method"], scope["path"], error.message)
            elif logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s %s: %s", scope["method"], scope["path"], error.message)
            return Response.error(error)
        except Exception:
            logger.exception("unexpected error on %s %s", scope["method"], scope["path"])
            return Response.json({"error": "internal error"}, 500)

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

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.backend.open()
                except Exception as error:
                    logger.exception("cannot open the backend")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.backend.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_app(settings: Settings) -> App:
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise InvalidRequest("--tls-cert and --tls-key go together")
    if settings.auth == "none" and not settings.insecure and not _loopback(settings.host):
        raise InvalidRequest(
            f"refusing to serve on {settings.host} with no authentication: "
            "use --auth keys:PATH, or --insecure if you really mean it"
        )
    return App(open_backend(settings.backend), settings, open_guard(settings.auth))


def _tune_gc() -> None:
    """Collect less often while serving; called once the server is up (in each worker).

    What is alive by now (modules, the app, the backend's connections) stays for the
    process's life: frozen, it is never walked again. At the default threshold (700)
    the young generation was collected hundreds of times a second under load, 3-4% of
    the CPU (memory and redis backends); at 50,000, under 1%, in passes of 10 ms at
    most. The older generations are collected less often too (20, 100): with the
    startup heap frozen they hold only what the backend keeps.
    """
    gc.collect()  # no startup garbage frozen for good
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _DrainingServer(uvicorn.Server):
    """Tunes the collector once up; answers pending long polls as soon as shutdown
    starts, so it is quick."""

    def __init__(self, config: uvicorn.Config, app: App) -> None:
        super().__init__(config)
        self.burrow = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        _tune_gc()
        if sockets:  # uvicorn only says where it listens when it binds
            scheme = "https" if self.config.ssl else "http"
            host, port = sockets[0].getsockname()[:2]
            logger.info(
                "Uvicorn running on %s://%s:%d (worker %d)", scheme, host, port, os.getpid()
            )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.burrow.service.drain()
        await super().shutdown(sockets)


def serve(settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; in-flight requests finish, waiters are answered.

    Returns the exit status.
    """
    app = build_app(settings)
    if settings.workers == 1:
        _serve_one(settings, app)
        return 0
    if settings.workers < 1 or not app.backend.shared_between_processes:
        raise InvalidRequest(
            "--workers > 1 needs a backend shared between processes (redis, postgresql); "
            f"{settings.backend.split(':')[0]} lives in one process"
        )
    # Each worker builds its own app (and backend connections) after the fork; what this
    # process holds is frozen first, so the workers' collections leave the pages they
    # share with it untouched (no copy on write).
    gc.freeze()
    supervisor = Supervisor(
        settings.workers,
        settings.host,
        settings.port,
        lambda sock: _serve_one(settings, build_app(settings), sock),
    )
    return supervisor.run()


def _serve_one(settings: Settings, app: App, sock: socket.socket | None = None) -> None:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=bounded_protocol(settings.limits.header_timeout),
        lifespan="on",
        access_log=settings.access_log,
        log_config=None,
        timeout_graceful_shutdown=30,
        server_header=False,
        proxy_headers=False,  # no proxy in front by default; saves work on every request
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )
    _DrainingServer(config, app).run(sockets=None if sock is None else [sock])
