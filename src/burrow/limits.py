"""Rate limits: a token bucket per account and per credential.

A request takes one token from its account's bucket and one from its
credential's; an empty bucket answers 429 with `Retry-After`. Refusing is cheap,
so a tenant that floods the server is turned away early and other tenants keep
being served. Buckets live in the process (each server limits what it sees).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from burrow.config import Limits
from burrow.errors import RateLimited

MAX_BUCKETS = 100_000  # idle full buckets are dropped past this many
audit = logging.getLogger("burrow.audit")


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`rate` tokens per second, up to `burst`, per name."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: dict[str, Bucket] = {}

    def take(self, name: str, now: float) -> float:
        """Take a token; returns 0, or the seconds until one will be there."""
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[name] = Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {
            name: b for name, b in self._buckets.items() if now - b.updated < full_after
        }


class RateLimiter:
    """The limits of `Limits.rate_per_*`; a rate of 0 turns that limit off."""

    def __init__(self, limits: Limits, accounts: Mapping[str, Limits]) -> None:
        # Refusals not yet logged, by (account, credential); a flood is logged once a
        # second per tenant, with its count, rather than line by line.
        self._unlogged: dict[tuple[str | None, str | None], int] = {}
        self._next_log = 0.0
        self._accounts = _buckets(limits.rate_per_account, limits.burst_per_account)
        self._credentials = _buckets(limits.rate_per_credential, limits.burst_per_credential)
        # Accounts with a rate of their own get a bucket of their own.
        self._own_rates = {
            name: _buckets(own.rate_per_account, own.burst_per_account)
            for name, own in accounts.items()
            if (own.rate_per_account, own.burst_per_account)
            != (limits.rate_per_account, limits.burst_per_account)
        }

    def check(self, account: str | None, credential: str | None) -> None:
        """Raise RateLimited if the account or the credential is over its rate."""
        accounts = self._own_rates.get(account, self._accounts) if account else self._accounts
        if accounts is None and self._credentials is None:
            return
        now = time.monotonic()
        if self._unlogged and now >= self._next_log:
            self._flush_audit(now)  # the tail of a flood that has stopped
        for buckets, name, what in (
            (accounts, account, "account"),
            (self._credentials, credential, "credential"),
        ):
            if buckets is not None and name is not None:
                wait = buckets.take(name, now)
                if wait:
                    self._audit(account, credential, now)
                    raise RateLimited(
                        f"rate limit of {buckets.rate:g} requests/s per {what} exceeded",
                        retry_after=math.ceil(wait),
                    )

    def _audit(self, account: str | None, credential: str | None, now: float) -> None:
        key = (account, credential)
        self._unlogged[key] = self._unlogged.get(key, 0) + 1
        if now >= self._next_log:
            self._flush_audit(now)

    def _flush_audit(self, now: float) -> None:
        self._next_log = now + 1.0
        for (account_name, credential_id), count in self._unlogged.items():
            audit.warning(
                "429 x%d on account %s by key %s: rate limited",
                count,
                account_name if account_name is not None else "(all)",
                credential_id or "-",
                extra={"tenant": account_name, "key": credential_id, "action": "rate-limit"},
            )
        self._unlogged.clear()


def _buckets(rate: float, burst: int) -> TokenBuckets | None:
    """Buckets for a limit; None when its rate is 0 (unlimited)."""
    return TokenBuckets(rate, burst) if rate > 0 else None
