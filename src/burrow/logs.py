"""Request ids, and the log line formats of `burrow serve` (`--log-format text|json`).

Every response carries `X-Request-Id`: the request's own when it is 1-128 printable
ASCII characters (a proxy's or a client's, so one id follows a request through), else a
new one. Ids made here are this process's random prefix and a counter: unique, and a
fraction of a microsecond to make (a uuid4 costs about 2 us).

The request being answered (its id and when it began) is in a context variable, which
each request's task has its own of: log lines written while answering it, uvicorn's
access lines too, carry its id without it being passed around.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

from burrow.frontends.asgi import Scope

REQUEST_ID = b"x-request-id"
MAX_REQUEST_ID = 128
TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "uvicorn.access"

# (request id, `time.perf_counter()` when it began), of the request being answered.
current: ContextVar[tuple[bytes, float] | None] = ContextVar("burrow_request", default=None)


class RequestIds:
    """Makes this process's request ids (one per worker: made after the fork)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6).encode() + b"-"
        self._next = itertools.count(1)

    def of(self, scope: Scope) -> bytes:
        """The id a request is answered with (see the module's docstring)."""
        for name, value in scope["headers"]:
            if name == REQUEST_ID:
                if 0 < len(value) <= MAX_REQUEST_ID and _printable_ascii(value):
                    return bytes(value)
                break
        return b"%s%x" % (self._prefix, next(self._next))


def _printable_ascii(value: bytes) -> bool:
    return value.isascii() and value.decode().isprintable()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id where known;
    an access line also has method, path, status and duration (seconds)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request = current.get()
        if request is not None:
            line["request_id"] = request[0].decode()
            if record.name == ACCESS_LOGGER:
                line.update(_access_fields(record, request[1]))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def _access_fields(record: logging.LogRecord, started: float) -> dict[str, Any]:
    """uvicorn's access line's parts: its arguments are (client, method, path, HTTP
    version, status)."""
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, _, status = args
    return {
        "client": client,
        "method": method,
        "path": path,
        "status": status,
        "duration": round(time.perf_counter() - started, 6),
    }


def configure(level: str, log_format: str) -> None:
    """The root logger, to stderr, in `log_format` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
