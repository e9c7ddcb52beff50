"""Background tasks of a backend (sweepers, probes, listeners): stopping them cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

RECANCEL_EVERY = 0.1
STOP_TIMEOUT = 10.0
"""Seconds a cancelled task has to end: one that swallows its cancel (a driver's bug, or
ours) is logged and left behind rather than holding a shutdown forever."""


async def stop_tasks(tasks: Iterable[asyncio.Future[Any] | None]) -> None:
    """Cancel the tasks (None: never started) and wait until each has ended."""
    started = [task for task in tasks if task is not None]
    if not started:
        return
    # Cancelled again every 0.1 s: a driver may swallow one cancel (redis-py does, now and
    # then, in the middle of a command), not every one.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_TIMEOUT
    pending = set(started)
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY)
    done = [task for task in started if task.done()]
    for task in pending:
        logger.warning("a background task did not end when cancelled: %r", task)
    for task in done:
        if not task.cancelled():
            task.result()  # an error it ended with is the caller's to see
