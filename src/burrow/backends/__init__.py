"""Storage backends, chosen by URL; each module is imported only when used."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from burrow.backends.base import Backend
from burrow.errors import ConfigError, InvalidRequest

DEFAULT_BACKEND_URL = "sqlite:///data/burrow.db"
# Each URL scheme and the backend it names.
SCHEMES = {
    "memory": "memory",
    "sqlite": "sqlite",
    "redis": "redis",
    "redis+sentinel": "redis",
    "redis+cluster": "redis",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "http": "http",
    "https": "http",
    "ring": "ring",
}
URL_FORMS = (
    "memory://, sqlite:///PATH, redis://HOST:PORT/DB, redis+sentinel://HOSTS/MASTER, "
    "redis+cluster://HOSTS, postgresql://HOST/DB (or postgres://), http(s)://HOST:PORT, "
    "ring:///PATH"
)
# Query parameters that hold secrets (PostgreSQL's): never printed.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def open_backend(url: str) -> Backend:
    """A backend for `url` (not yet opened): `memory://`, `sqlite:///path.db`, …

    A URL that cannot work is a ConfigError, raised here, before anything is opened.
    """
    kind = backend_kind(url)
    try:
        return _construct(kind, url)
    except InvalidRequest as error:  # what the ring file and http URL checks raise
        raise ConfigError(error.message) from error


def _construct(kind: str, url: str) -> Backend:
    if kind == "memory":
        from burrow.backends.memory import MemoryBackend

        if url != "memory://":
            raise ConfigError(f"backend {redacted(url)!r}: memory:// takes nothing after it")
        return MemoryBackend()
    if kind == "sqlite":
        from burrow.backends.sqlite import SQLiteBackend, check_location

        path = file_path(url, "sqlite")
        check_location(path)
        return SQLiteBackend(path)
    if kind == "ring":
        from burrow.backends.ring import RingBackend
        from burrow.backends.ring_placement import load_ring

        return RingBackend(load_ring(file_path(url, "ring")), open_backend)
    if kind == "http":
        from burrow.backends.http import HttpBackend

        return HttpBackend(url)
    if kind == "redis":
        from burrow.backends.redis import RedisBackend

        return RedisBackend(url)
    from burrow.backends.postgres import PostgresBackend

    return PostgresBackend(url)


def backend_kind(url: str) -> str:
    """The backend a URL names (`redis` for all three Redis schemes, …)."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError as error:
        raise ConfigError(f"backend {url!r} is not a URL: {error}") from None
    if scheme not in SCHEMES:
        problem = f"unknown scheme {scheme!r}" if scheme else "no scheme"
        raise ConfigError(f"backend {redacted(url)!r}: {problem}; use one of {URL_FORMS}")
    return SCHEMES[scheme]


def describe_backend(url: str) -> str:
    """The backend and where it keeps its data, for the log: never a password or token.

    `sqlite /abs/path/burrow.db`, `memory (nothing persists)`, `redis redis://host:6379/0`.
    """
    kind = backend_kind(url)
    if kind == "memory":
        return "memory (nothing persists)"
    if kind in ("sqlite", "ring"):
        return f"{kind} {os.path.abspath(file_path(url, kind))}"
    return f"{kind} {redacted(url)}"


def redacted(url: str) -> str:
    """`url` without its user, password or token, nor any secret query parameter."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<not a URL>"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in SECRET_PARAMETERS]
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query), ""))


def file_path(url: str, scheme: str) -> str:
    """SQLAlchemy's convention: `sqlite:///relative.db`, `sqlite:////absolute.db`."""
    prefix = f"{scheme}:///"
    if not url.startswith(prefix) or len(url) == len(prefix) or "?" in url:
        raise ConfigError(
            f"backend {url!r} must look like {scheme}:///relative/path "
            f"or {scheme}:////absolute/path"
        )
    return url[len(prefix) :]
