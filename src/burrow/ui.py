"""The dashboard: its static page at `/ui/`, and `/whoami`, which tells the page its role.

The page's three files ship in the package (`burrow/ui/`) and are read once, when the
app is built; any other name below `/ui/` is a 404. They load with no token: what the
page shows comes from the API, on the token typed into it. Every answer carries a
Content-Security-Policy that allows only this server's own scripts, styles and API
(no inline script, nothing from elsewhere), so a message body that slipped into the page
as markup could still run nothing. `Cache-Control: no-cache` with an ETag: a browser
asks again each time and gets a 304 while the files are unchanged, so a new release is
never hidden behind a stale copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
from importlib import resources

from burrow.auth import Guard
from burrow.errors import InvalidRequest, MethodNotAllowed, NotFound
from burrow.frontends.admission import token_request
from burrow.frontends.asgi import Response, Scope, header
from burrow.service import Service

CONTENT_TYPES = {
    "index.html": b"text/html; charset=utf-8",
    "app.js": b"text/javascript; charset=utf-8",
    "style.css": b"text/css; charset=utf-8",
}
CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    b"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
READ_ONLY = ("GET", "HEAD")
# `/ui` itself: relative, so that the page still works behind a proxy's path prefix.
TO_INDEX = Response(308, headers=[(b"location", b"ui/")])


@dataclasses.dataclass(frozen=True, slots=True)
class _File:
    answer: Response
    etag: bytes
    not_modified: Response


def _load(name: str, content_type: bytes) -> _File:
    body = resources.files("burrow").joinpath("ui", name).read_bytes()
    etag = b'"%s"' % hashlib.sha256(body).hexdigest()[:32].encode()
    headers = [*SECURITY_HEADERS, (b"cache-control", b"no-cache"), (b"etag", etag)]
    return _File(Response(200, body, content_type, headers), etag, Response(304, headers=headers))


class Dashboard:
    """`/ui`, `/ui/<file>` and `/whoami`."""

    def __init__(self, service: Service, guard: Guard) -> None:
        self.service = service
        self.guard = guard
        self.files = {name: _load(name, kind) for name, kind in CONTENT_TYPES.items()}

    def page(self, scope: Scope, path: list[str], query: dict[str, str]) -> Response:
        """`path` below `/ui`: `[]` redirects to `/ui/`, `[""]` is the page, `[name]` a file."""
        method = scope["method"]
        if method not in READ_ONLY:
            raise MethodNotAllowed(method, READ_ONLY)
        if not path:
            return TO_INDEX
        found = self.files.get(path[0] or "index.html") if len(path) == 1 else None
        if found is None:
            raise NotFound("no such file in the dashboard")
        if query:
            raise InvalidRequest("the dashboard's files take no query parameters")
        if header(scope, b"if-none-match") == found.etag:
            return found.not_modified
        return found.answer

    def whoami(self, scope: Scope, query: dict[str, str]) -> Response:
        """`GET /whoami`: the request token's key id, role and accounts, all null or empty
        with no keys in use. Admitted like any call on the key's first account (an admin's:
        across accounts), so a bad token is a 401 that counts against its address."""
        if scope["method"] != "GET":
            raise MethodNotAllowed(scope["method"], ("GET",))
        if query:
            raise InvalidRequest("/whoami takes no query parameters")
        request = token_request(scope, "GET", None)
        key = self.guard.key_of(request.credentials)
        if key is not None and key.accounts:
            request = dataclasses.replace(request, account=key.accounts[0])
        key_id = self.service.admit(self.guard, request)
        role = None if key is None else key.role.value
        accounts = [] if key is None else list(key.accounts)
        return Response.json({"key": key_id, "role": role, "accounts": accounts})
