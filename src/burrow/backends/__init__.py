"""Storage backends, chosen by URL; each module is imported only when used."""

from __future__ import annotations

from urllib.parse import urlsplit

from burrow.backends.base import Backend
from burrow.errors import InvalidRequest

DEFAULT_BACKEND_URL = "sqlite:///data/burrow.db"


def open_backend(url: str) -> Backend:
    """A backend for `url` (not yet opened): `memory://`, `sqlite:///path.db`, …"""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from burrow.backends.memory import MemoryBackend

        return MemoryBackend()
    if scheme == "sqlite":
        from burrow.backends.sqlite import SQLiteBackend

        return SQLiteBackend(file_path(url, "sqlite"))
    if scheme == "ring":
        from burrow.backends.ring import RingBackend
        from burrow.backends.ring_placement import load_ring

        return RingBackend(load_ring(file_path(url, "ring")), open_backend)
    if scheme in ("http", "https"):
        from burrow.backends.http import HttpBackend

        return HttpBackend(url)
    if scheme in ("redis", "redis+sentinel", "redis+cluster"):
        from burrow.backends.redis import RedisBackend

        return RedisBackend(url)
    if scheme in ("postgresql", "postgres"):
        from burrow.backends.postgres import PostgresBackend

        return PostgresBackend(url)
    raise InvalidRequest(f"unsupported backend URL {url!r}")


def file_path(url: str, scheme: str) -> str:
    """SQLAlchemy's convention: `sqlite:///relative.db`, `sqlite:////absolute.db`."""
    prefix = f"{scheme}:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise InvalidRequest(f"{scheme} URL must look like {scheme}:///path, not {url!r}")
    return url[len(prefix) :]
