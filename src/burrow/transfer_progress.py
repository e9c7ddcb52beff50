"""Progress of a transfer, always on stderr (stdout may carry a dump): a rich progress
bar on a terminal, else a plain line every few seconds and one at the end."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bar
from rich.text import Text

PLAIN_EVERY = 5.0


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} msgs/s")


class Progress:
    """Messages done out of `total` (None: unknown), for one phase named `what`."""

    def __init__(
        self, what: str, total: int | None, stream: TextIO | None = None, every: float = PLAIN_EVERY
    ) -> None:
        self._what = what
        self._total = total
        self._stream = stream or sys.stderr
        self._every = every
        self._started = time.monotonic()
        self._next_line = self._started + every
        self.done = 0
        self._bar: Bar | None = None
        if self._stream.isatty():
            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _Rate(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
            )
            self._task = self._bar.add_task(what, total=total)

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            self._line(ended=True)

    def advance(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.advance(self._task, count)
        elif time.monotonic() >= self._next_line:
            self._line(ended=False)
            self._next_line = time.monotonic() + self._every

    def _line(self, ended: bool) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.done / elapsed
        line = f"{self._what}: {self.done:,}"
        if self._total is not None:
            line += f" of {self._total:,}"
        line += f" messages in {elapsed:.1f} s, {rate:,.0f} msgs/s"
        if self._total and not ended and rate:
            line += f", about {max(self._total - self.done, 0) / rate:.0f} s left"
        print(line, file=self._stream, flush=True)
