"""`--workers N`: each worker's tally, in a directory the supervisor makes, for one scrape.

Every worker writes its `Tally` to `PID.json` there once a `PUBLISH_INTERVAL` when it
has changed (written whole, then renamed into place: a reader never sees half a file),
and when it stops. The worker a scrape reaches adds the others' files to its own live
tally: what another worker counted shows up to a second late. A worker that is gone
keeps its file, so its counts never go backwards (a replaced worker's requests stay
counted); its gauges are left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from burrow.tally import Tally

logger = logging.getLogger(__name__)

PUBLISH_INTERVAL = 1.0  # seconds


class SharedTallies:
    def __init__(self, directory: str, local: Callable[[], Tally]) -> None:
        self.directory = Path(directory)
        self.local = local
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._publish())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.write()

    def gathered(self) -> Tally:
        """This worker's tally and every other one's, summed."""
        total = Tally()
        total.add(self.local())
        mine = f"{os.getpid()}.json"
        for path in sorted(self.directory.glob("*.json")):
            if path.name == mine:
                continue
            try:
                other, pid = Tally.from_json(path.read_bytes()), int(path.stem)
            except (OSError, ValueError, KeyError, TypeError) as error:
                logger.warning("metrics: skipping %s: %s", path, error)
                continue
            total.add(other if _alive(pid) else other.without_gauges())
        return total

    def write(self) -> None:
        self._save(self.local().to_json())

    def _save(self, text: bytes) -> None:
        path = self.directory / f"{os.getpid()}.json"
        part = path.with_suffix(".part")
        try:
            part.write_bytes(text)
            part.replace(path)
        except OSError as error:  # (the supervisor removed the directory: stopping)
            logger.warning("metrics: cannot write %s: %s", path, error)

    async def _publish(self) -> None:
        written = b""
        while True:
            await asyncio.sleep(PUBLISH_INTERVAL)
            text = self.local().to_json()
            if text != written:
                self._save(text)
                written = text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
