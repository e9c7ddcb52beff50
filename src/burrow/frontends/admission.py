"""What admission (`Service.admit`) looks at of an HTTP request: its token (headers, a
signed URL or a WebSocket's `token`), the client's address and the zone it states."""

from __future__ import annotations

from burrow.auth import Credentials, Guard, Request
from burrow.frontends.asgi import Scope, client_address, headers
from burrow.keys import SIGNATURE_PARAMS

# The headers every request is read for (token and zone), gathered in one pass.
HEADERS = frozenset({b"x-auth-token", b"authorization", b"x-burrow-zone"})


def signed_request(
    scope: Scope, query: dict[str, str], method: str, account: str | None
) -> Request:
    """What admission looks at for a call that may come with a signed URL (see
    `_credentials`), such as any below `/v1.0`."""
    found = headers(scope, HEADERS)
    credentials = _credentials(scope, query, _token(found))
    return Request(credentials, method, account, client_address(scope), _zone(found))


def _credentials(scope: Scope, query: dict[str, str], token: str | None) -> Credentials:
    """The request's token, and its signed URL's parameters (taken out of `query`) if any."""
    if "sig" not in query:
        return Credentials(token, "")
    signed = {name: query.pop(name) for name in SIGNATURE_PARAMS if name in query}
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    return Credentials(token, raw_path, signed)


def token_request(
    scope: Scope, method: str, account: str | None, query_token: str | None = None
) -> Request:
    """What admission looks at for a call that takes its token's word alone (no signed
    URL): the token of the headers, else `query_token` (a WebSocket's `token`)."""
    found = headers(scope, HEADERS)
    token = _token(found) or query_token
    return Request(Credentials(token, ""), method, account, client_address(scope), _zone(found))


def may_write(guard: Guard, scope: Scope, account: str) -> bool:
    """Whether the request's token (see `token_request`) may write to the account."""
    request = token_request(scope, "POST", account)
    return guard.check(request.credentials, "POST", account).refusal is None


def _token(found: dict[bytes, bytes]) -> str | None:
    """`X-Auth-Token`, else an `Authorization: Bearer` token, of the `HEADERS` found."""
    token = found.get(b"x-auth-token")
    if token is None:
        bearer = found.get(b"authorization")
        if bearer is not None and bearer[:7].lower() == b"bearer ":
            token = bearer[7:]
    return None if token is None else token.decode("latin-1")


def _zone(found: dict[bytes, bytes]) -> str | None:
    zone = found.get(b"x-burrow-zone")
    return None if zone is None else zone.decode("latin-1")
