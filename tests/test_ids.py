"""Server-made ids: UUIDv7 strings, each after the ones made before it in the process."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest

from burrow import ids
from burrow.ids import new_id, new_ids


def test_ids_are_uuid7_strings_of_the_clock() -> None:
    made = [new_id(), *new_ids(3)]
    now_ms = time.time_ns() // 1_000_000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        # (Within a second: another test may have spent whole milliseconds' counters.)
        assert abs((parsed.int >> 80) - now_ms) < 1000


def test_ids_ascend_across_calls_and_counter_overflows(monkeypatch: pytest.MonkeyPatch) -> None:
    made = new_ids(10)
    # A clock stuck in one millisecond (or gone back): the counter keeps the order, and
    # once its 4,096 values are spent the ids move on to the next millisecond.
    stuck = time.time_ns()
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: stuck))
    for _ in range(3):
        made += new_ids(5000)
        made.append(new_id())
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: stuck - 10**9))
    made += new_ids(100)
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert new_ids(0) == []
