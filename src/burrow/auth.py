"""Who may do what: the guard every frontend calls before touching an account.

`OpenAccess` lets everything through (local development). `KeyGuard` checks the
request's token against a key file (`burrow.keys`): no or unknown token → 401; a
token that does not grant the account, or a reader's write → 403; calls across all
accounts (`account` None) are for admins only. Every refusal is logged to the
`burrow.audit` logger with the account and key id, never the token.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from burrow import keys
from burrow.errors import ConfigError, Forbidden, Unauthorized
from burrow.keys import Key, Role

logger = logging.getLogger(__name__)
audit = logging.getLogger("burrow.audit")

READ_METHODS = frozenset({"GET"})
RELOAD_INTERVAL = 1.0  # seconds between looks at the key file's modification time


@dataclass(slots=True)
class Credentials:
    """What a request presents: a token, or a signed URL's query parameters."""

    token: str | None
    path: str  # the raw (percent-encoded) request path, which a signed URL covers ("" if none)
    signed: dict[str, str] | None = None


class Guard(Protocol):
    @property
    def description(self) -> str:
        """The mode, for the ready line: `none`, or `keys:/abs/keys.json (3 keys)`."""

    def check(self, credentials: Credentials, method: str, account: str | None) -> str | None:
        """Raise Unauthorized/Forbidden unless the credentials allow `method` on `account`.

        `account` is None for calls across all accounts. Returns the id of the key that
        allowed it (None when no keys are in use), which rate limits and logs name.
        """


class OpenAccess:
    """Every request is allowed: for local development only (the server says so when
    it is ready)."""

    description = "none"

    def check(self, credentials: Credentials, method: str, account: str | None) -> str | None:
        return None


class KeyGuard:
    """Tokens checked against a key file, reread when it changes (no restart needed)."""

    def __init__(self, path: Path) -> None:
        """Raises ConfigError unless the file holds keys: a server with none would refuse
        every request."""
        self.path = path
        self._keys: dict[str, Key] = {}
        self._stamp: tuple[int, int] | None = None
        self._next_look = 0.0
        make_one = f"make one with `burrow keys add --file {path}`"
        if not path.exists():
            raise ConfigError(f"auth keys:{path}: no such key file; {make_one}")
        self._reload()
        if not self._keys:
            raise ConfigError(f"auth keys:{path}: the key file holds no keys; {make_one}")

    @property
    def description(self) -> str:
        count = len(self._keys)
        return f"keys:{os.path.abspath(self.path)} ({count} key{'' if count == 1 else 's'})"

    def check(self, credentials: Credentials, method: str, account: str | None) -> str | None:
        self._maybe_reload()
        if credentials.signed is not None:
            key = self._signed_key(credentials.signed, credentials.path, method, account)
        else:
            key = self._key(credentials.token, method, account)
        if key.role is Role.ADMIN:
            return key.id
        if account is None or account not in key.accounts:
            self._refuse(Forbidden("this key does not grant that account"), key, method, account)
        if key.role is Role.READER and method not in READ_METHODS:
            self._refuse(Forbidden("this key may only read"), key, method, account)
        return key.id

    def _key(self, token: str | None, method: str, account: str | None) -> Key:
        parts = None if token is None else keys.split_token(token)
        key = None if parts is None else self._keys.get(parts[0])
        if key is None or parts is None or not key.matches(parts[1]):
            reason = "no token given" if token is None else "unknown or revoked token"
            self._refuse(Unauthorized(reason), None, method, account)
        return key

    def _signed_key(
        self, signed: dict[str, str], path: str, method: str, account: str | None
    ) -> Key:
        """The key behind a signed URL, if the signature holds and covers this request."""
        found = keys.grant_from_query(signed)
        if found is None:
            self._refuse(Unauthorized("malformed signed URL"), None, method, account)
        grant, signature = found
        key = self._keys.get(grant.key_id)
        if key is None:  # the file cannot tell a revoked key from one that never was
            self._refuse(Unauthorized("signed URL's key revoked or unknown"), None, method, account)
        if not hmac.compare_digest(grant.signature(key.secret_sha256), signature):
            self._refuse(Unauthorized("bad signature"), key, method, account)
        if not grant.covers(method, path):
            reason = "signed URL expired or does not cover this request"
            self._refuse(Unauthorized(reason), key, method, account)
        return key

    @staticmethod
    def _refuse(
        error: Unauthorized | Forbidden, key: Key | None, method: str, account: str | None
    ) -> NoReturn:
        audit.warning(
            "%d %s on account %s by key %s: %s",
            error.status,
            method,
            account if account is not None else "(all)",
            key.id if key is not None else "-",
            error.message,
            extra={"tenant": account, "key": key.id if key else None, "action": method},
        )
        raise error

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now >= self._next_look:
            self._next_look = now + RELOAD_INTERVAL
            try:
                self._reload()
            except ConfigError as error:  # keep serving with the keys we have
                logger.error("key file not reloaded: %s", error.message)

    def _reload(self) -> None:
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or stamp is None:
            self._keys = keys.load(self.path)
            self._stamp = stamp


def open_guard(spec: str) -> Guard:
    """`none` or `keys:PATH`."""
    if spec == "none":
        return OpenAccess()
    kind, colon, path = spec.partition(":")
    if kind == "keys" and colon and path:
        return KeyGuard(Path(path))
    raise ConfigError(f"auth must be none or keys:PATH, not {spec!r}")
