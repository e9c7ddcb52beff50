"""The turn to write, among the processes that share one SQLite file (`--workers`).

SQLite serialises writers itself, but a writer that finds the file locked polls for it
with sleeps of 1 ms and more, which would cap several workers, each writing thousands
of times a second, well below one. So every writer first takes an `flock` on a file
next to the database, `burrow.db-lock`, around its transaction: the kernel hands the
lock to the next process the moment the holder lets go, and SQLite's own lock is then
always free. The lock is released by the kernel when its process dies, `kill -9`
included.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

FILE_MODE = 0o600


class WriteLock:
    """An exclusive lock on `path`, held by at most one process at a time."""

    def __init__(self, path: Path) -> None:
        # Opened here, in the process that writes: an flock belongs to an open file, and
        # a file opened before a fork would be one lock shared by parent and child.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self) -> None:
        """Wait for the lock (blocks: call it from a thread, not the event loop)."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)
