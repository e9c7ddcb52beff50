"""Server-generated message ids: time-ordered (UUIDv7 layout), unique, URL-safe."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A UUIDv7 string; ids made later in this process sort after earlier ones."""
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms, _counter = now_ms, int.from_bytes(os.urandom(2)) & 0x3FF
        else:
            _counter += 1  # same (or earlier) millisecond: keep order with the counter
            if _counter > 0xFFF:
                _last_ms, _counter = _last_ms + 1, 0
        value = (_last_ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | _counter << 64
        value |= 0x2 << 62 | int.from_bytes(os.urandom(8)) & 0x3FFF_FFFF_FFFF_FFFF
    return str(uuid.UUID(int=value))
