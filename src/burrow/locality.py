"""The zone a request comes from, when its caller says (header `X-Burrow-Zone`).

Set by the frontend for the request's task, read by backends that prefer nearby
servers (`ring`); unset, they use their own zone.
"""

from __future__ import annotations

from contextvars import ContextVar

caller_zone: ContextVar[str | None] = ContextVar("caller_zone", default=None)
