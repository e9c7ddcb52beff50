"""Who may do what: the hook every frontend calls before touching an account.

Only open access exists so far; credential-checking guards plug in here.
"""

from __future__ import annotations

import logging
from typing import Protocol

logger = logging.getLogger(__name__)


class Guard(Protocol):
    def check(self, token: str | None, method: str, account: str | None) -> None:
        """Raise Unauthorized/Forbidden unless `token` may `method` on `account`.

        `account` is None for calls across all accounts.
        """


class OpenAccess:
    """Every request is allowed: for local development only."""

    def __init__(self) -> None:
        logger.warning("authentication is off: every request is accepted")

    def check(self, token: str | None, method: str, account: str | None) -> None:
        return None
