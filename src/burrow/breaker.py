"""A circuit breaker: skip what fails, for a backoff that doubles while it keeps failing.

Shared by the multi-server client (its servers) and the ring backend (its members).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Breaker:
    first: float  # seconds skipped after a first failure
    longest: float = 30.0
    failures: int = 0  # in a row
    backoff: float = 0.0
    retry_at: float = 0.0  # on the caller's clock; skipped until then

    def usable(self, now: float) -> bool:
        return now >= self.retry_at

    def failed(self, now: float) -> bool:
        """Count a failure; False if it was open already (a failure of a call made
        before it opened does not count twice)."""
        if now < self.retry_at:
            return False
        self.failures += 1
        self.backoff = min(self.longest, self.backoff * 2) if self.backoff else self.first
        self.retry_at = now + self.backoff
        return True

    def answered(self) -> bool:
        """Close it after an answer; True if it had failed."""
        had_failed = self.failures > 0
        self.failures, self.backoff, self.retry_at = 0, 0.0, 0.0
        return had_failed
