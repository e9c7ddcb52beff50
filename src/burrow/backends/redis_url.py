"""What a Redis backend URL says: the engine's kind and nodes, and Burrow's options.

`redis://host:port/db`, `redis+sentinel://h1:p1,h2:p2/master/db`,
`redis+cluster://h1:p1,h2:p2`, each with the query options of `OPTIONS`
(docs/redis.md). A URL that cannot work is a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from burrow.backends import redacted
from burrow.backends.redis_durability import Durability, durability_option
from burrow.config import boolean
from burrow.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RedisURL:
    """A parsed backend URL."""

    kind: str  # "redis", "sentinel" or "cluster"
    hosts: list[tuple[str, int]]
    db: int = 0
    master: str = ""
    replicas: int = 0  # replicas that must confirm a write (0 = not durable)
    wait_ms: int = 1000
    durability: Durability = Durability.FSYNC
    max_connections: int = 100  # to each node; past it a call waits for a free one

    @classmethod
    def parse(cls, url: str) -> RedisURL:
        """Check every part of the URL; any problem is a ConfigError naming it."""
        parts = urlsplit(url)
        kind = {"redis": "redis", "redis+sentinel": "sentinel", "redis+cluster": "cluster"}[
            parts.scheme
        ]
        if "@" in parts.netloc:
            raise ConfigError(f"backend {redacted(url)!r}: a redis URL takes no user or password")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(query) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"backend {url!r}: unknown option {unknown[0]!r}; "
                f"the options are {', '.join(OPTIONS)}"
            )
        try:
            hosts = [_host_port(h) for h in parts.netloc.split(",") if h]
        except ValueError as exc:
            raise ConfigError(f"backend {url!r}: {exc}") from None
        try:
            durable = boolean(query.get("durable", "0"))
        except ValueError:
            raise ConfigError(
                f"backend {url!r}: durable must be 1/0, true/false or yes/no"
            ) from None
        wants_replicas = durable or query.get("durability") == Durability.REPLICAS.value
        replicas = _option(query, "replicas", 1 if wants_replicas else 0, 0, url)
        wait_ms = _option(query, "wait_ms", 1000, 1, url)
        durability = durability_option(query, replicas, url)
        max_connections = _option(query, "max_connections", 100, 1, url)
        path = parts.path.strip("/")
        if not hosts:
            raise ConfigError(f"backend {url!r}: no host")
        if kind == "sentinel" and not path:
            raise ConfigError(f"backend {url!r}: a redis+sentinel URL needs a master name")
        if kind == "cluster" and path:
            raise ConfigError(f"backend {url!r}: a redis+cluster URL takes no database")
        if kind == "redis" and (len(hosts) != 1 or (path and not path.isdigit())):
            raise ConfigError(f"backend {url!r} must look like redis://host:port/db")
        master, db = (path, 0) if kind == "sentinel" else ("", int(path or 0))
        return cls(kind, hosts, db, master, replicas, wait_ms, durability, max_connections)


# The query options of a Redis URL (docs/redis.md).
OPTIONS = ("durable", "replicas", "wait_ms", "durability", "max_connections")


def _option(query: dict[str, str], name: str, default: int, minimum: int, url: str) -> int:
    text = query.get(name, str(default))
    if not text.isdigit() or int(text) < minimum:
        raise ConfigError(f"backend {url!r}: {name} must be an integer >= {minimum}, not {text!r}")
    return int(text)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, 6379
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not host:port (a port from 1 to 65535)")
    return host, int(port)
