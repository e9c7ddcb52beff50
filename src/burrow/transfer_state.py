"""Where a `burrow migrate` has got to: per queue, the last message id the target holds.

Saved after each batch the target has acknowledged (written anew and renamed over the
old file, so a crash leaves one whole version), never before: a rerun resumes after the
saved id and at worst copies one batch again, which replaces what it put.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from burrow.errors import ConfigError

VERSION = 1


def default_path(source: str, target: str, accounts: Iterable[str]) -> Path:
    """`burrow-migrate-HASH.json` in the current directory, one per source, target and
    accounts, so that the same command run again finds its state."""
    key = orjson.dumps([source, target, sorted(accounts)])
    return Path(f"burrow-migrate-{hashlib.sha256(key).hexdigest()[:12]}.json")


class MigrateState:
    """The state file of one migrate from `source` to `target` (as `describe_backend`
    names them: a file of another migrate is refused rather than resumed)."""

    def __init__(self, path: Path, source: str, target: str) -> None:
        self.path = path
        self._head = {"version": VERSION, "from": source, "to": target}
        self.last: dict[tuple[str, str], str] = {}
        if path.exists():
            self._load()
        self.save()  # a state that cannot be kept is refused before anything is copied

    def _load(self) -> None:
        try:
            saved = orjson.loads(self.path.read_bytes())
            head = {name: saved[name] for name in self._head}
            entries = saved["queues"]
            self.last = {(account, queue): last for account, queue, last in entries}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"state file {self.path} cannot be read: {error}") from None
        if head != self._head:
            raise ConfigError(
                f"state file {self.path} is of a migrate from {head['from']} to {head['to']}: "
                "give another --state, or remove it to start over"
            )

    def committed(self, account: str, queue: str, last_id: str) -> None:
        self.last[account, queue] = last_id
        self.save()

    def save(self) -> None:
        entries = [[account, queue, last] for (account, queue), last in self.last.items()]
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            partial.write_bytes(orjson.dumps({**self._head, "queues": entries}))
            os.replace(partial, self.path)
        except OSError as error:
            raise ConfigError(f"state file {self.path} cannot be written: {error}") from None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
