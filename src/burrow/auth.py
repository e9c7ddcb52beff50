"""Who may do what: the guard that admission (`Service.admit`) asks about every request.

`OpenAccess` lets everything through (local development). `KeyGuard` checks the
request's token, its signed URL, or its SigV4 signature (the SQS frontend's), against a
key file (`burrow.keys`): no or unknown token → 401; a token that does not grant the
account, or a reader's write → 403; calls across all accounts (`account` None) are for
admins only. A guard only judges: admission
acts on its verdict, and audits refusals (`burrow.audit`) with the account and key id,
never the token.

Signed URLs and SigV4 requests are signed with secrets of their key's, derived from the
server's signing secret (`burrow.signing_secret`), which is not in the key file: the key
file alone lets no one make one. A key's SQS credentials are its id (the access key id)
and `keys.sqs_secret`; SigV4 refusals carry the SQS error code to answer with
(`burrow.sigv4`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from burrow import keys, signing_secret, sigv4
from burrow.errors import ConfigError, Forbidden, Unauthorized
from burrow.keys import Key, Role
from burrow.sigv4 import AccessDenied, SigV4Refused, SigV4Request

logger = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET"})
RELOAD_INTERVAL = 1.0  # seconds between looks at the key file's modification time
SIGV4_SERVICE = "sqs"  # the one service a SigV4 signature may be scoped to here


class NoCredentials(Unauthorized):
    """A request that presents no credentials at all (no token, signed URL or SigV4)."""

    sqs_code = "MissingAuthenticationToken"


@dataclass(slots=True)
class Credentials:
    """What a request presents: a token, a signed URL's query parameters, or a SigV4
    signature."""

    token: str | None
    path: str  # the raw (percent-encoded) request path, which a signed URL covers ("" if none)
    signed: dict[str, str] | None = None
    sigv4: SigV4Request | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """What admission looks at: who asks, from where, to do what on which account."""

    credentials: Credentials
    method: str
    account: str | None  # None for calls across all accounts
    address: str | None  # the client's IP address, when the server knows it
    zone: str | None = None  # the zone the caller says it is in (`X-Burrow-Zone`)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A guard's answer: the id of the key the credentials name (None when there is none,
    or the key file has no such key), and why they are refused (None: allowed)."""

    key_id: str | None
    refusal: Unauthorized | Forbidden | None = None


ALLOWED = Verdict(None)


class Guard(Protocol):
    @property
    def description(self) -> str:
        """The mode, for the ready line: `none`, or `keys:/abs/keys.json (3 keys)`."""

    def check(self, credentials: Credentials, method: str, account: str | None) -> Verdict:
        """Whether the credentials allow `method` on `account` (None: across all accounts)."""

    def sign(self, key_id: str | None, methods: Iterable[str], prefix: str, seconds: int) -> str:
        """A URL (path and query) that lets anyone call `methods` below `prefix` for
        `seconds`, on the rights of key `key_id` (the one `check` named)."""

    def home_account(self, credentials: Credentials) -> str | None:
        """The account an SQS call that names no queue (CreateQueue, ListQueues) acts on,
        before `check` has judged the credentials; None when they have none."""

    def key_of(self, credentials: Credentials) -> Key | None:
        """The key (its role and accounts) that the credentials' token is, before `check`
        has judged them; None for a token it does not know, or with no keys at all."""


class OpenAccess:
    """Every request is allowed: for local development only (the server says so when
    it is ready)."""

    description = "none"

    def check(self, credentials: Credentials, method: str, account: str | None) -> Verdict:
        return ALLOWED

    def sign(self, key_id: str | None, methods: Iterable[str], prefix: str, seconds: int) -> str:
        raise Forbidden("authentication is off: there are no keys to sign URLs with")

    def home_account(self, credentials: Credentials) -> str | None:
        """The access key id: with no keys, it names the account."""
        signed = credentials.sigv4
        return None if signed is None else signed.access_key_id

    def key_of(self, credentials: Credentials) -> Key | None:
        return None


class KeyGuard:
    """Tokens checked against a key file, reread when it changes (no restart needed)."""

    def __init__(self, path: Path, signing_secret_file: Path | None = None) -> None:
        """Raises ConfigError unless the file holds keys (a server with none would refuse
        every request), and the signing secret can be had (`signing_secret.of_server`)."""
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
        self._secret = signing_secret.of_server(path, signing_secret_file)

    @property
    def description(self) -> str:
        count = len(self._keys)
        return f"keys:{os.path.abspath(self.path)} ({count} key{'' if count == 1 else 's'})"

    def check(self, credentials: Credentials, method: str, account: str | None) -> Verdict:
        self._maybe_reload()
        if credentials.sigv4 is not None:
            found = self._sigv4_key(credentials.sigv4)
        elif credentials.signed is not None:
            found = self._signed_key(credentials.signed, credentials.path, method)
        else:
            found = self._key(credentials.token)
        if isinstance(found, Verdict):
            return found
        refusal = AccessDenied if credentials.sigv4 is not None else Forbidden
        return Verdict(found.id, _forbidden(found, method, account, refusal))

    def home_account(self, credentials: Credentials) -> str | None:
        """The key's first account; None if it grants none (an admin key). A key this
        file does not have gets its access key id, so that admission refuses it as it
        refuses any unknown key (401, counted against the address)."""
        signed = credentials.sigv4
        if signed is None:
            return None
        key = self._keys.get(signed.access_key_id)
        if key is None:
            return signed.access_key_id
        return key.accounts[0] if key.accounts else None

    def key_of(self, credentials: Credentials) -> Key | None:
        self._maybe_reload()
        found = self._key(credentials.token)
        return None if isinstance(found, Verdict) else found

    def sign(self, key_id: str | None, methods: Iterable[str], prefix: str, seconds: int) -> str:
        key = self._keys.get(key_id or "")
        if key is None:  # revoked since `check`
            raise Unauthorized("unknown or revoked token")
        return keys.signed_url(key, self._secret, methods, prefix, seconds)

    def _key(self, token: str | None) -> Key | Verdict:
        if token is None:
            return Verdict(None, NoCredentials("no token given"))
        parts = keys.split_token(token)
        key = None if parts is None else self._keys.get(parts[0])
        if key is None or parts is None or not key.matches(parts[1]):
            return Verdict(None, Unauthorized("unknown or revoked token"))
        return key

    def _signed_key(self, signed: dict[str, str], path: str, method: str) -> Key | Verdict:
        """The key behind a signed URL, if the signature holds and covers this request."""
        found = keys.grant_from_query(signed)
        if found is None:
            return Verdict(None, Unauthorized("malformed signed URL"))
        grant, signature = found
        key = self._keys.get(grant.key_id)
        if key is None:  # the file cannot tell a revoked key from one that never was
            return Verdict(None, Unauthorized("signed URL's key revoked or unknown"))
        if not grant.signed_by(keys.signing_key(self._secret, key), signature):
            return Verdict(key.id, Unauthorized("bad signature"))
        if not grant.covers(method, path):
            reason = "signed URL expired or does not cover this request"
            return Verdict(key.id, Unauthorized(reason))
        return key

    def _sigv4_key(self, signed: SigV4Request) -> Key | Verdict:
        """The key behind a SigV4 signature, if it holds (`sigv4.verify`)."""
        key = self._keys.get(signed.access_key_id)
        if key is None:
            refused = SigV4Refused(sigv4.INVALID_CLIENT_TOKEN_ID, sigv4.UNKNOWN_KEY)
            return Verdict(None, refused)
        if signed.service != SIGV4_SERVICE:
            wrong = f"Credential should be scoped to correct service: {SIGV4_SERVICE!r}."
            return Verdict(key.id, SigV4Refused(sigv4.SIGNATURE_DOES_NOT_MATCH, wrong))
        try:
            sigv4.verify(signed, keys.sqs_secret(self._secret, key), time.time())
        except SigV4Refused as refused:
            return Verdict(key.id, refused)
        return key

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


def _forbidden(
    key: Key, method: str, account: str | None, refusal: type[Forbidden]
) -> Forbidden | None:
    """Why `key` may not call `method` on `account`, as a `refusal`; None if it may."""
    if key.role is Role.ADMIN:
        return None
    if account is None or account not in key.accounts:
        return refusal("this key does not grant that account")
    if key.role is Role.READER and method not in READ_METHODS:
        return refusal("this key may only read")
    return None


def covering_method(methods: Iterable[str]) -> str:
    """The one method whose check allows all of `methods`: a write if there is one."""
    return next((method for method in methods if method not in READ_METHODS), "GET")


def open_guard(spec: str, signing_secret_file: str = "") -> Guard:
    """`none` or `keys:PATH`, signing with the secret in `signing_secret_file` ("": the
    default one, `signing_secret.of_server`)."""
    if spec == "none":
        return OpenAccess()
    kind, colon, path = spec.partition(":")
    if kind == "keys" and colon and path:
        return KeyGuard(Path(path), Path(signing_secret_file) if signing_secret_file else None)
    raise ConfigError(f"auth must be none or keys:PATH, not {spec!r}")
