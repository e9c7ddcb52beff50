"""Rate limits: a token bucket per account, per credential, and per client address.

A request takes one token from its account's bucket and one from its credential's; an
empty bucket answers 429 with `Retry-After`. An address's bucket is taken from by its
failed authentications (401s) only, and once empty, every request from that address is
refused (429) before its credentials are looked at, until the bucket refills. Refusing
is cheap, so a tenant or client that floods the server is turned away early and others
keep being served. Buckets live in the process (each server limits what it sees), and
refusals are audited in aggregate (`burrow.audit`).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from burrow.audit import Refusal, Tally
from burrow.config import Limits
from burrow.errors import RateLimited

MAX_BUCKETS = 100_000  # idle full buckets are dropped past this many


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
        self._refill(bucket, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def wait(self, name: str) -> float:
        """The seconds until `name` has a token (0: it has one); takes none."""
        bucket = self._buckets.get(name)
        if bucket is None:  # full, or never used: the common case, with no clock to read
            return 0.0
        self._refill(bucket, time.monotonic())
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def _refill(self, bucket: Bucket, now: float) -> None:
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now

    def _forget_full(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {
            name: b for name, b in self._buckets.items() if now - b.updated < full_after
        }


class RateLimiter:
    """The limits of `Limits.rate_per_*` and `auth_failure_*`; a rate of 0 turns that
    limit off. `audit` counts every refusal, these and admission's."""

    def __init__(self, limits: Limits, accounts: Mapping[str, Limits]) -> None:
        self.audit = Tally()
        self._accounts = _buckets(limits.rate_per_account, limits.burst_per_account)
        self._credentials = _buckets(limits.rate_per_credential, limits.burst_per_credential)
        self._addresses = _buckets(
            limits.auth_failure_rate_per_address, limits.auth_failure_burst_per_address
        )
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
        for buckets, name, what in (
            (accounts, account, "account"),
            (self._credentials, credential, "credential"),
        ):
            if buckets is not None and name is not None:
                wait = buckets.take(name, now)
                if wait:
                    self.audit.add(Refusal(429, "rate limited", account=account, key=credential))
                    raise RateLimited(
                        f"rate limit of {buckets.rate:g} requests/s per {what} exceeded",
                        retry_after=math.ceil(wait),
                    )

    def check_address(self, address: str | None) -> None:
        """Raise RateLimited if `address` has failed to authenticate too often lately."""
        if self._addresses is None or address is None:
            return
        wait = self._addresses.wait(_address_block(address))
        if wait:
            rate = self._addresses.rate
            reason = f"too many failed authentications from this address (over {rate:g}/s)"
            self.audit.add(Refusal(429, reason, address=address))
            raise RateLimited(reason, retry_after=math.ceil(wait))

    def failed_authentication(self, address: str | None) -> None:
        """Count a 401 against `address` (see `check_address`)."""
        if self._addresses is not None and address is not None:
            self._addresses.take(_address_block(address), time.monotonic())


def _address_block(address: str) -> str:
    """The bucket of an address: its own for IPv4; its /64 for IPv6, the block that one
    host usually holds (so that it cannot walk through its addresses)."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def _buckets(rate: float, burst: int) -> TokenBuckets | None:
    """Buckets for a limit; None when its rate is 0 (unlimited)."""
    return TokenBuckets(rate, burst) if rate > 0 else None
