"""What a Redis URL accepts of the engine's durability, checked when the backend opens.

`?durability=` (docs/redis.md#durability):
    fsync     every primary appends each write to its AOF and fsyncs it before it
              answers (appendonly yes, appendfsync always, no-appendfsync-on-rewrite no).
              The default, unless the URL asks for replicas.
    replicas  a write is acknowledged once `replicas` replicas have it (WAIT, on every
              write); persistence is the operator's choice. `durable=1` is the older
              spelling, and `replicas=N` alone means it too.
    none      whatever the engine does; a warning at start-up says what is at risk.
A primary's settings come from CONFIG GET or, where CONFIG is refused (renamed or denied,
as on managed services), from INFO persistence, which says whether the AOF is on but
not how often it is fsynced: then fsync mode cannot be proven and is refused.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence

from redis import exceptions as rx
from redis.asyncio import Redis

from burrow.errors import ConfigError

logger = logging.getLogger(__name__)

# What a primary must be set to for fsync mode.
FSYNC_SETTINGS = {"appendonly": "yes", "appendfsync": "always", "no-appendfsync-on-rewrite": "no"}


class Durability(enum.Enum):
    """What an acknowledged write is promised to have survived."""

    FSYNC = "fsync"
    REPLICAS = "replicas"
    NONE = "none"


def durability_option(query: Mapping[str, str], replicas: int, url: str) -> Durability:
    """The mode a URL's query asks for; a ConfigError for one that contradicts itself."""
    text = query.get("durability")
    if text is None:
        return Durability.REPLICAS if replicas else Durability.FSYNC
    if "durable" in query:
        raise ConfigError(
            f"backend {url!r}: durable=1 is the older spelling of durability=replicas; "
            "give one of them"
        )
    try:
        durability = Durability(text)
    except ValueError:
        raise ConfigError(
            f"backend {url!r}: durability must be fsync, replicas or none, not {text!r}"
        ) from None
    if durability is Durability.REPLICAS and not replicas:
        raise ConfigError(f"backend {url!r}: durability=replicas needs replicas >= 1")
    return durability


async def check_durability(durability: Durability, primaries: Sequence[tuple[str, Redis]]) -> None:
    """Refuse (ConfigError) primaries that do not fsync each write, in fsync mode; warn
    in none mode. `primaries` are each primary's address and a client on it. A primary
    that cannot be reached raises the driver's error."""
    if durability is Durability.REPLICAS:
        return  # the WAIT on every write is the check
    found = await asyncio.gather(*(_fsync_gap(address, node) for address, node in primaries))
    gaps = [gap for gap in found if gap]
    if durability is Durability.NONE:
        at_risk = "; ".join(gaps) or "every primary fsyncs each write now, but nothing requires it"
        logger.warning(
            "redis durability=none: acknowledged writes are lost if Redis stops before it "
            "saves them (%s)",
            at_risk,
        )
    elif gaps:
        raise ConfigError(
            "durability=fsync (the default) needs every primary to fsync each write before "
            f"it answers, but {'; '.join(gaps)}: set appendonly yes and appendfsync always, "
            "or say what you accept with ?durability=replicas (each write waits for "
            "replicas) or ?durability=none (docs/redis.md#durability)"
        )


async def _fsync_gap(address: str, node: Redis) -> str | None:
    """What keeps `node` from fsyncing each write before it answers, or None."""
    try:
        # One pattern, not several names: Redis before 7.0 takes a single one.
        raw = await node.config_get("*append*")
    except rx.ResponseError as refused:
        return await _aof_from_info(address, node, str(refused).strip())
    settings = {_text(name): _text(value) for name, value in raw.items()}
    wrong = [
        f"{name} {settings.get(name, '(unknown)')}"
        for name, wanted in FSYNC_SETTINGS.items()
        if settings.get(name) != wanted
    ]
    return f"{address} has {', '.join(wrong)}" if wrong else None


async def _aof_from_info(address: str, node: Redis, refused: str) -> str:
    """INFO says whether the AOF is on, not its fsync policy: either way not provable."""
    try:
        info = await node.info("persistence")
    except rx.ResponseError as also_refused:
        return (
            f"{address} lets read neither CONFIG GET ({refused}) nor INFO persistence "
            f"({str(also_refused).strip()})"
        )
    if not info.get("aof_enabled"):
        return f"{address} has no AOF (INFO persistence: aof_enabled:0)"
    return f"{address} has an AOF whose appendfsync cannot be read (CONFIG GET: {refused})"


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
