"""Background tasks of a backend (sweepers, probes, listeners): stopping them cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
"""Seconds a cancelled task has to end: one that swallows its cancel (a driver's bug, or
ours) is logged and left behind rather than holding a shutdown forever."""


async def stop_tasks(tasks: Iterable[asyncio.Future[Any] | None]) -> None:
    """Cancel the tasks (None: never started) and wait until each has ended."""
    started = [task for task in tasks if task is not None]
    if not started:
        return
    for task in started:
        task.cancel()
    done, pending = await asyncio.wait(started, timeout=STOP_TIMEOUT)
    for task in pending:
        logger.warning("a background task did not end when cancelled: %r", task)
    for task in done:
        if not task.cancelled():
            task.result()  # an error it ended with is the caller's to see
