"""Wait for the disk to go quiet before a measured row.

A prefill of a million messages leaves hundreds of megabytes for the kernel to write
back after the answers (and PostgreSQL's checkpoint, Redis's rewrite of its append-only
file, a neighbour target's cleanup): a row measured while that goes on has fsyncs queued
behind it, and its latency tail is another target's write-back, not its own. So each
row starts once what was written before it is on disk: `sync`, then until the disks
write less than `QUIET_BYTES_PER_S` over `QUIET_WINDOW` (counting pages made dirty too:
a process writing into the page cache is writing, though the kernel holds it back for
a while), bounded by `LIMIT`.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

DISKSTATS = Path("/proc/diskstats")
MEMINFO = Path("/proc/meminfo")
SECTOR = 512  # /proc/diskstats counts 512-byte sectors whatever the device's own size
QUIET_BYTES_PER_S = 2 * 1024 * 1024  # an idle target's checkpoints and timers write less
QUIET_WINDOW = 0.5  # seconds
POLL = 0.1
LIMIT = 30.0  # seconds; a row then runs anyway, and its notes say so


@dataclass(frozen=True)
class Settled:
    seconds: float  # how long the wait took
    quiet: bool  # False: the disks were still busy at `LIMIT`


def written_bytes() -> int | None:
    """Bytes written to the machine's disks since boot, plus the dirty pages not written
    yet (None: no /proc/diskstats)."""
    try:
        lines = DISKSTATS.read_text().splitlines()
    except OSError:
        return None
    total = _dirty_bytes()
    for line in lines:
        fields = line.split()
        if len(fields) < 10:
            continue
        # Whole devices only (a partition's writes are its device's too); loop and RAM
        # devices are files and memory, whose writes land on a disk or nowhere.
        name = fields[2]
        if not name.startswith(("loop", "ram")) and Path(f"/sys/block/{name}").exists():
            total += int(fields[9]) * SECTOR
    return total


def _dirty_bytes() -> int:
    """Page cache waiting to be written, or being written (0 where unknown)."""
    try:
        lines = MEMINFO.read_text().splitlines()
    except OSError:
        return 0
    kib = 0
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("Dirty", "Writeback"):
            kib += int(value.split()[0])
    return kib * 1024


async def settle_disk(limit: float = LIMIT) -> Settled:
    """Flush dirty pages, then wait until the disks have been quiet for a while."""
    started = time.monotonic()
    await asyncio.to_thread(os.sync)
    window_start, window_bytes = time.monotonic(), written_bytes()
    if window_bytes is None:
        return Settled(time.monotonic() - started, True)  # nothing to watch
    while (now := time.monotonic()) - started < limit:
        if now - window_start >= QUIET_WINDOW:
            return Settled(now - started, True)
        await asyncio.sleep(POLL)
        written = written_bytes() or window_bytes
        if written - window_bytes > QUIET_BYTES_PER_S * QUIET_WINDOW:
            window_start, window_bytes = time.monotonic(), written  # busy: start over
    return Settled(time.monotonic() - started, False)
