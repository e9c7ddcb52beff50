"""Server-generated message ids: time-ordered (UUIDv7 layout), unique, URL-safe."""

from __future__ import annotations

import threading
import time
from random import getrandbits

_lock = threading.Lock()
_last_ms = 0
_counter = 0
_ms_hex = ""  # `_last_ms` as an id's first two groups and the version digit: "01a24cb8-104e-7"
# The counter's three hex digits, made once: formatting them is most of an id's cost.
_COUNTER_HEX = tuple(f"{n:03x}" for n in range(0x1000))
_VARIANT = 0x2 << 62


def new_id() -> str:
    """A UUIDv7 string; ids made later in this process sort after earlier ones."""
    return new_ids(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` UUIDv7 strings in ascending order, after every id made before them here."""
    global _last_ms, _counter, _ms_hex
    ids: list[str] = []
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms, _counter, _ms_hex = now_ms, getrandbits(10) - 1, _milliseconds(now_ms)
        for _ in range(count):
            _counter += 1  # same (or earlier) millisecond: keep order with the counter
            if _counter > 0xFFF:
                _last_ms, _counter = _last_ms + 1, 0
                _ms_hex = _milliseconds(_last_ms)
            # Unique, not secret: the module's PRNG (reseeded after fork), no system call.
            tail = (_VARIANT | getrandbits(62)).to_bytes(8, "big").hex("-", 6)
            ids.append(f"{_ms_hex}{_COUNTER_HEX[_counter]}-{tail}")
    return ids


def _milliseconds(ms: int) -> str:
    digits = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
    return f"{digits[:8]}-{digits[8:]}-7"
