"""One exception hierarchy for Burrow; each category carries its HTTP status.

    BurrowError (500)
    ├── ConfigError          a setting the server cannot start with (never an answer)
    ├── InvalidRequest (400)
    ├── Unauthorized (401)
    ├── Forbidden (403)
    ├── NotFound (404)
    │   ├── MessageNotFound     one message addressed by id is absent
    │   └── NoMatch             a filter matched nothing
    ├── MethodNotAllowed (405)
    ├── RequestTimeout (408)
    ├── Conflict (409)
    │   └── QuotaExceeded       a write would take an account past a quota
    ├── PayloadTooLarge (413)
    ├── RateLimited (429)
    └── BackendUnavailable (503)

Backends translate driver exceptions into these at their boundary; frontends map
them onto their protocol in one place.
"""

from __future__ import annotations


class BurrowError(Exception):
    """Root of every error Burrow raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(BurrowError):
    """A setting that cannot work, found at start-up: `burrow serve` exits with status 2.

    Not a request error: no client ever gets one as an answer.
    """


class InvalidRequest(BurrowError):
    status = 400


class Unauthorized(BurrowError):
    status = 401


class Forbidden(BurrowError):
    status = 403


class NotFound(BurrowError):
    status = 404


class MessageNotFound(NotFound):
    def __init__(self, message_id: str) -> None:
        super().__init__(f"message {message_id!r} not found")


class NoMatch(NotFound):
    def __init__(self, what: str = "messages") -> None:
        super().__init__(f"no {what} matched")


class MethodNotAllowed(BurrowError):
    status = 405

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"method {method} not allowed here")
        self.allowed = allowed


class RequestTimeout(BurrowError):
    status = 408


class Conflict(BurrowError):
    status = 409


class QuotaExceeded(Conflict):
    """Names the quota (a `Quota` field) so clients and operators know which one."""

    def __init__(self, quota: str, message: str) -> None:
        super().__init__(message)
        self.quota = quota


class PayloadTooLarge(BurrowError):
    status = 413


class RateLimited(BurrowError):
    status = 429

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendUnavailable(BurrowError):
    status = 503

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds the server asked to wait before trying again (its Retry-After), if it did."""


ERROR_BY_STATUS: dict[int, type[BurrowError]] = {
    category.status: category
    for category in BurrowError.__subclasses__()
    if category.status != BurrowError.status
}
"""Each category by its HTTP status, for clients turning an error answer back into its
exception: derived from the classes above, so that the two sides cannot drift apart."""
