"""The v1.0 wire format on the client side, without I/O.

A `Call` is one HTTP exchange described as data: the `Request` to send and how
to turn the response into a value (or an error from `burrow.errors`). The sync
and async clients only carry calls over their `httpx` client, so every rule of
the protocol lives here once.
"""

from __future__ import annotations

import binascii
import contextlib
import email.utils
import functools
import math
import os
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Generic, NoReturn, TypeVar
from urllib.parse import quote

import httpx
import orjson

from burrow.codec import message_from_fields
from burrow.errors import (
    ERROR_BY_STATUS,
    BackendUnavailable,
    BurrowError,
    InvalidRequest,
    MethodNotAllowed,
    QuotaExceeded,
    RateLimited,
)
from burrow.model import Attributes, Filters, Message

T = TypeVar("T")

API_ROOT = "/v1.0"
JSON = "application/json"
OCTETS = "application/octet-stream"
FULL = "full"
"""The `detail` (an extension) that renders all of a `Message`: what a backend reports."""

Verify = bool | str | os.PathLike[str] | ssl.SSLContext
"""How a client checks https servers' certificates, as httpx takes it: True (the default
CA bundle), False (not at all), the path of a PEM CA bundle, or an `ssl.SSLContext`."""

Tls = bool | ssl.SSLContext
"""A `Verify` ready for use: a CA bundle path is loaded (True is, lazily, by `tls_context`)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request relative to the server's base URL."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    content_type: str | None = None
    wait: int = 0
    """Seconds the server may hold the request (long poll); the read timeout grows by it."""
    headers: dict[str, str] = field(default_factory=dict)
    """Headers of this request besides the client's own and `Content-Type`."""

    def arguments(self, timeout: float) -> dict[str, Any]:
        """Keyword arguments for `httpx.Client.request` / `httpx.AsyncClient.request`."""
        headers = self.headers
        if self.content_type is not None:
            headers = {**headers, "Content-Type": self.content_type}
        return {
            "method": self.method,
            "url": self.path,
            "params": self.params,
            "content": self.content,
            "headers": headers,
            "timeout": httpx.Timeout(timeout, read=timeout + self.wait),
        }


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """A request and how to read its answer.

    `decode` reads a successful response; `missing` is what a 404 means for this
    call: it raises (`NoMatch`, `MessageNotFound`) or returns a value such as `[]`.
    """

    request: Request
    decode: Callable[[httpx.Response], T]
    missing: Callable[[], T]

    def result(self, response: httpx.Response) -> T:
        """The value of `response`, or the `BurrowError` it stands for."""
        if response.status_code == 404:
            return self.missing()
        if response.is_error:
            raise error_for(response)
        try:
            return self.decode(response)
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise BackendUnavailable(f"unexpected answer from the server: {error}") from error


# Requests ----------------------------------------------------------------------------


def path(*names: str) -> str:
    """The API path of an account, queue or message, each name percent-encoded.

    `.` and `..` are escaped too, so that no HTTP library folds them away and
    sends the request to a different resource.
    """
    for name in names:
        if not name:
            raise InvalidRequest("account, queue and message names must not be empty")
    return "/".join([API_ROOT, *(_segment(name) for name in names)])


def _segment(name: str) -> str:
    return name.replace(".", "%2E") if name in (".", "..") else quote(name, safe="")


def params(
    filters: Filters | None = None,
    attributes: Attributes | None = None,
    *,
    detail: str | None = None,
    wait: int = 0,
) -> dict[str, str]:
    """Query parameters; what is unset is left out so that server defaults apply.

    `detail` is a `Detail` or `FULL`; `attributes.receipt` makes an update a receive.
    """
    out: dict[str, str] = {}
    if filters is not None:
        if filters.limit is not None:
            out["limit"] = str(filters.limit)
        if filters.marker is not None:
            out["marker"] = filters.marker
        if filters.match_hidden:
            out["match_hidden"] = "true"
    if attributes is not None:
        if attributes.ttl is not None:
            out["ttl"] = str(attributes.ttl)
        if attributes.hide is not None:
            out["hide"] = str(attributes.hide)
        if attributes.receipt is not None:
            out["receipt"] = attributes.receipt
    if wait:
        out["wait"] = str(wait)
    if detail is not None:
        out["detail"] = str(detail)
    return out


def headers(token: str | None, zone: str | None = None) -> dict[str, str]:
    """Headers every request of a client carries: its token, and the zone it is in."""
    found = {"Accept": JSON}
    if token is not None:
        found["X-Auth-Token"] = token
    if zone is not None:
        found["X-Burrow-Zone"] = zone
    return found


def client_options(
    url: str, sent: dict[str, str], timeout: float, connections: int = 100, tls: Tls = True
) -> dict[str, Any]:
    """Keyword arguments for `httpx.Client` / `httpx.AsyncClient` talking to `url`."""
    return {
        "base_url": url,
        "headers": sent,
        "timeout": timeout,
        # Long polls each hold a connection for their whole wait.
        "limits": httpx.Limits(max_connections=connections, max_keepalive_connections=100),
        "verify": _verify(url, tls),
    }


def _verify(url: str, tls: Tls) -> Tls:
    # A plain-http server never uses TLS (no redirects are followed), and not
    # loading the CA bundle saves ~100 ms per client, i.e. per CLI command.
    if url.startswith("http://"):
        return False
    return tls_context() if tls is True else tls


def tls_setting(verify: Verify) -> Tls:
    """`verify` ready for `client_options`: a CA bundle path is loaded now, so that a bad
    one is refused (`ValueError`) when the client is made, not at its first request."""
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    return _ca_bundle(os.fspath(verify))


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every https client: loading the CA bundle takes ~100 ms, and
    the blocking client opens short-lived clients for each wait on several servers."""
    return httpx.create_ssl_context()


@functools.cache
def _ca_bundle(path: str) -> ssl.SSLContext:
    """Trust only the CAs of the PEM file at `path` (as `curl --cacert` does)."""
    try:
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"cannot load the CA bundle {path}: {error}") from error


# Bodies --------------------------------------------------------------------------------


def as_bytes(body: bytes | str) -> bytes:
    """Message bodies are bytes; text is sent as UTF-8."""
    return body.encode() if isinstance(body, str) else body


def json_body(value: Any) -> bytes:
    return orjson.dumps(value)


def read_json(response: httpx.Response) -> Any:
    """The JSON document of a response; `None` for an empty (204) one."""
    return orjson.loads(response.content) if response.content else None


def read_messages(response: httpx.Response) -> list[Message]:
    return [message_from_fields(item) for item in read_json(response) or []]


def read_message(response: httpx.Response) -> Message:
    return message_from_fields(read_json(response))


def read_names(response: httpx.Response) -> list[str]:
    """Names at `detail=id` (strings) or `detail=all` (`{"id": name}` objects)."""
    return [item if isinstance(item, str) else item["id"] for item in read_json(response) or []]


def read_nothing(response: httpx.Response) -> None:
    return None


def raiser(error: Callable[[], BurrowError]) -> Callable[[], NoReturn]:
    """A `Call.missing` that raises the error `error()` builds."""

    def missing() -> NoReturn:
        raise error()

    return missing


# Errors -----------------------------------------------------------------------------


def error_for(response: httpx.Response) -> BurrowError:
    """The `burrow.errors` exception for an error response (a 404 is usually the call's
    own, see `Call.missing`): the category of its status, any other 4xx an
    `InvalidRequest`, any other 5xx `BackendUnavailable`."""
    status = response.status_code
    document = _error_document(response)
    text = _error_text(response, document)
    retry_after = _retry_after(response)
    if retry_after is not None:
        text += f" (retry after {retry_after} s)"
    if status == 409 and isinstance(document.get("quota"), str):
        return QuotaExceeded(document["quota"], text)
    if status == 405:
        allowed = tuple(m.strip() for m in response.headers.get("Allow", "").split(",") if m)
        return MethodNotAllowed(response.request.method, allowed)
    if status == 429:
        return RateLimited(text) if retry_after is None else RateLimited(text, retry_after)
    if status >= 500:
        return BackendUnavailable(f"server error {status}: {text}", retry_after)
    return ERROR_BY_STATUS.get(status, InvalidRequest)(text)


def _retry_after(response: httpx.Response) -> int | None:
    """The seconds of a Retry-After header (a number, or an HTTP date); None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isascii() and value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is in GMT
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil(when.timestamp() - time.time()))


def _error_document(response: httpx.Response) -> dict[str, Any]:
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def _error_text(response: httpx.Response, document: dict[str, Any]) -> str:
    if isinstance(document.get("error"), str):
        return str(document["error"])
    return response.text.strip()[:200] or response.reason_phrase or f"HTTP {response.status_code}"


@contextlib.contextmanager
def reaching(url: str) -> Iterator[None]:
    """Turn transport failures (refused, reset, timed out) into `BackendUnavailable`."""
    try:
        yield
    except httpx.TransportError as error:
        reason = str(error) or type(error).__name__
        if _untrusted_certificate(error):
            reason += " (for a private CA, give its certificate: --cacert PATH, verify=PATH)"
        raise BackendUnavailable(f"cannot reach {url}: {reason}") from error


def _untrusted_certificate(error: BaseException) -> bool:
    """Whether a transport error is, underneath, a certificate that failed its check."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    return cause is not None
