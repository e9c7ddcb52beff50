"""Where the `ring` backend keeps things: its config file, and rendezvous hashing.

    [ring]
    zone = "az1"          # this proxy's zone: preferred
    replicas = 3          # members per account in each zone
    [[ring.member]]
    url = "http://127.0.0.1:8001"   # any backend URL
    zone = "az1"

Each account maps to `replicas` members per zone by rendezvous (highest random
weight) hashing: every member gets a weight from a hash of (account, member
URL) and the heaviest win. Adding or removing a member changes only the sets
that member enters or leaves, about 1/N of the accounts. Within an account's
set, each message id orders the members the same way; a message goes to the
first live member of its order.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from burrow.errors import InvalidRequest
from burrow.placement import rendezvous


@dataclass(frozen=True, slots=True)
class Member:
    url: str
    zone: str


@dataclass(frozen=True, slots=True)
class RingConfig:
    zone: str
    replicas: int
    members: tuple[Member, ...]

    @property
    def zones(self) -> list[str]:
        """Every zone, this proxy's first, then the others by name."""
        others = sorted({m.zone for m in self.members} - {self.zone})
        return [self.zone, *others]

    def account_set(self, account: str, zone: str) -> list[Member]:
        """The account's members in one zone, heaviest first."""
        in_zone = [m for m in self.members if m.zone == zone]
        return rendezvous(account, in_zone)[: self.replicas]


def load_ring(path: str | Path) -> RingConfig:
    """Read and check a ring file; every problem is an `InvalidRequest` naming it."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InvalidRequest(f"cannot read ring file {path}: {error}") from error
    ring = document.get("ring")
    if not isinstance(ring, dict) or set(document) != {"ring"}:
        raise InvalidRequest(f"{path}: expected a [ring] table and nothing else")
    unknown = set(ring) - {"zone", "replicas", "member"}
    if unknown:
        raise InvalidRequest(f"{path}: unknown ring setting(s) {', '.join(sorted(unknown))}")
    members = []
    for entry in ring.get("member", []):
        if not isinstance(entry, dict) or set(entry) != {"url", "zone"}:
            raise InvalidRequest(f"{path}: each [[ring.member]] has exactly a url and a zone")
        if not all(isinstance(entry[k], str) and entry[k] for k in ("url", "zone")):
            raise InvalidRequest(f"{path}: member url and zone must be non-empty strings")
        members.append(Member(entry["url"], entry["zone"]))
    if not members:
        raise InvalidRequest(f"{path}: a ring needs at least one [[ring.member]]")
    if len({m.url for m in members}) != len(members):
        raise InvalidRequest(f"{path}: a member URL appears twice")
    zone, replicas = ring.get("zone"), ring.get("replicas", 3)
    if not isinstance(zone, str) or zone not in {m.zone for m in members}:
        raise InvalidRequest(f"{path}: ring.zone must name a zone that has members")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise InvalidRequest(f"{path}: ring.replicas must be a positive integer")
    return RingConfig(zone, replicas, tuple(members))
