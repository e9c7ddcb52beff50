"""Credentials: a key file of hashed tokens, each granting accounts with a role.

A token reads `ID.SECRET`. The file keeps the id, the SHA-256 of the secret (the
secret is 256 random bits, so a fast hash is enough), the accounts and the role;
never the token. `burrow keys add|list|revoke` edit it; the server rereads it
when it changes. Each key's other secrets, for signed URLs and as SQS credentials,
are derived from it and the server's signing secret (`burrow.signing_secret`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlencode

import orjson

from burrow.errors import ConfigError, InvalidRequest


class Role(StrEnum):
    READER = "reader"  # GET only, on its accounts
    WRITER = "writer"  # everything, on its accounts
    ADMIN = "admin"  # everything, on every account, and across accounts


@dataclass(frozen=True, slots=True)
class Key:
    id: str
    secret_sha256: str
    accounts: tuple[str, ...]
    role: Role
    created: float

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(_digest(secret), self.secret_sha256)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed token, else None."""
    key_id, dot, secret = token.partition(".")
    return (key_id, secret) if dot and key_id and secret else None


def load(path: Path) -> dict[str, Key]:
    """Keys by id; a missing file holds none. A file that cannot be read is a ConfigError."""
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as error:
        raise ConfigError(f"cannot read key file {path}: {error}") from error
    try:
        keys = [
            Key(k["id"], k["secret_sha256"], tuple(k["accounts"]), Role(k["role"]), k["created"])
            for k in raw["keys"]
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"key file {path} is malformed: {error!r}") from error
    return {key.id: key for key in keys}


def save(path: Path, keys: dict[str, Key]) -> None:
    """Write atomically (temporary file, fsync, rename), readable by the owner only."""
    document = {"keys": [asdict(key) for key in keys.values()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add(path: Path, accounts: list[str], role: Role) -> tuple[Key, str]:
    """Create a key; returns it and its token (shown once, stored nowhere)."""
    if not accounts and role is not Role.ADMIN:
        raise InvalidRequest("a reader or writer key needs at least one --account")
    keys = load(path)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = Key(key_id, _digest(secret), tuple(accounts), role, time.time())
    save(path, {**keys, key_id: key})
    return key, f"{key_id}.{secret}"


def find(keys: dict[str, Key], path: Path, key_id: str) -> Key:
    """The key `key_id` of the file at `path`, or a clear error."""
    if key_id not in keys:
        raise InvalidRequest(f"no key {key_id!r} in {path}")
    return keys[key_id]


def revoke(path: Path, key_id: str) -> Key:
    keys = load(path)
    revoked = find(keys, path, key_id)
    del keys[key_id]
    save(path, keys)
    return revoked


# Each key's derived secrets -------------------------------------------------------------


def _derived(server_secret: bytes, purpose: str, key: Key) -> bytes:
    """A secret of `key`'s for `purpose`: derived from the server's signing secret, which
    the key file does not hold, and from the key (so it dies with it)."""
    text = f"{purpose}\n{key.id}\n{key.secret_sha256}".encode()
    return hmac.new(server_secret, text, hashlib.sha256).digest()


def signing_key(server_secret: bytes, key: Key) -> bytes:
    """The secret `key`'s signed URLs are signed with."""
    return _derived(server_secret, "burrow signed URL key", key)


def sqs_secret(server_secret: bytes, key: Key) -> str:
    """`key`'s SQS secret access key (its access key id is the key's id): stored nowhere,
    and URL-safe base64, so that it needs no quoting in a shell or a config file."""
    derived = _derived(server_secret, "burrow SQS secret access key", key)
    return base64.urlsafe_b64encode(derived).rstrip(b"=").decode()


# Signed URLs ----------------------------------------------------------------------------

SIGNATURE_PARAMS = ("sig", "sig_key", "sig_expires", "sig_methods", "sig_prefix")


@dataclass(frozen=True, slots=True)
class Grant:
    """What a signed URL allows: these methods, below this path prefix, until then."""

    key_id: str
    methods: tuple[str, ...]
    prefix: str
    expires: int

    def signature(self, key: bytes) -> str:
        """HMAC-SHA256 over every field, keyed by the key's `signing_key`."""
        text = "\n".join((self.key_id, ",".join(self.methods), self.prefix, str(self.expires)))
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    def signed_by(self, key: bytes, signature: str) -> bool:
        """Whether `signature` (as the client sent it: any text) is this grant's, in
        constant time."""
        return hmac.compare_digest(self.signature(key).encode(), signature.encode())

    def query(self, key: bytes) -> dict[str, str]:
        return {
            "sig": self.signature(key),
            "sig_key": self.key_id,
            "sig_expires": str(self.expires),
            "sig_methods": ",".join(self.methods),
            "sig_prefix": self.prefix,
        }

    def covers(self, method: str, path: str) -> bool:
        prefix = self.prefix.rstrip("/")
        under = path == prefix or path.startswith(prefix + "/")
        return method in self.methods and under and time.time() < self.expires


def grant_from_query(params: dict[str, str]) -> tuple[Grant, str] | None:
    """The grant and signature a request's query carries; None if it carries none."""
    if "sig" not in params:
        return None
    expires = params.get("sig_expires", "")
    if not (expires.isascii() and expires.isdigit()):
        return None
    try:
        grant = Grant(
            params["sig_key"],
            tuple(params["sig_methods"].split(",")),
            params["sig_prefix"],
            int(expires),
        )
    except KeyError:
        return None
    return grant, params["sig"]


API_METHODS = ("DELETE", "GET", "POST", "PUT")  # every method of the v1.0 API


def signable_methods(methods: Iterable[str]) -> tuple[str, ...]:
    """The methods a signed URL may grant, upper-case and sorted: API methods only."""
    upper = tuple(sorted({m.strip().upper() for m in methods if m.strip()}))
    unknown = [m for m in upper if m not in API_METHODS]
    if unknown or not upper:
        named = f"no method {unknown[0]} in the API" if unknown else "no method given"
        raise InvalidRequest(f"{named}: a signed URL grants some of {', '.join(API_METHODS)}")
    return upper


def signed_url(
    key: Key, server_secret: bytes, methods: Iterable[str], prefix: str, seconds: int
) -> str:
    """The path and query that let anyone holding them call `methods` below `prefix`
    for `seconds`, within `key`'s rights."""
    upper = signable_methods(methods)
    if not prefix.startswith("/v1.0/") or seconds <= 0:
        raise InvalidRequest("a signed URL needs a /v1.0/… path and a positive expiry")
    grant = Grant(key.id, upper, prefix, int(time.time()) + seconds)
    return f"{prefix}?{urlencode(grant.query(signing_key(server_secret, key)))}"
