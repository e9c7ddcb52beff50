"""A str-keyed dict that grows without stopping the world: `SplitDict`.

A Python dict grows by rebuilding its whole table: with a million entries that is one
step of 25-50 ms, and of twice that at the next doubling, with every request waiting.
A `SplitDict` keeps its entries in dicts of at most `SHARD_LIMIT` entries each, chosen
by the key's hash (extendible hashing): a full one splits in two by one more bit of the
hash, a step bounded by that limit whatever the size, and no other shard moves.
Iteration is in no particular order.

Each shard is full at a size of its own, drawn between half the limit and the limit:
keys spread evenly, so shards of one size would all fill, and split, within a few
thousand writes of one another (a storm of splits every time the dict doubles, whose
fresh shards the garbage collector's next pass over young objects then walks at once:
17 ms with a million entries).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Generic, TypeVar

V = TypeVar("V")
SHARD_LIMIT = 1 << 12  # entries in one shard before it splits (a split: about 1.5 ms)


class SplitDict(Generic[V]):
    """The mapping operations the memory backend uses, over shards of bounded size.

    `_table` has 2**depth slots, slot `hash(key) & mask`; a shard of local depth d
    fills the 2**(depth - d) slots that agree with it on the hash's d low bits, and
    `_depths` holds each slot's shard's d."""

    __slots__ = ("_depths", "_fills", "_mask", "_size", "_table")

    def __init__(self) -> None:
        self._table: list[dict[str, V]] = [{}]
        self._depths = [0]
        self._fills = [_fill()]  # each slot's shard's size when full
        self._mask = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: object) -> bool:
        return key in self._table[hash(key) & self._mask]

    def __getitem__(self, key: str) -> V:
        return self._table[hash(key) & self._mask][key]

    def get(self, key: str) -> V | None:
        return self._table[hash(key) & self._mask].get(key)

    def __setitem__(self, key: str, value: V) -> None:
        slot = hash(key) & self._mask
        shard = self._table[slot]
        if key not in shard:
            self._size += 1
            if len(shard) >= self._fills[slot]:
                self._split(slot)
                shard = self._table[hash(key) & self._mask]
        shard[key] = value

    def pop(self, key: str) -> V:
        value = self._table[hash(key) & self._mask].pop(key)
        self._size -= 1
        return value

    def __iter__(self) -> Iterator[str]:
        for shard in self._shards():
            yield from shard

    def values(self) -> Iterator[V]:
        return itertools.chain.from_iterable(shard.values() for shard in self._shards())

    def value_lists(self) -> Iterator[list[V]]:
        """The values, a shard's copy at a time: for a walk with other work in between
        (what a shard holds is read as the walk comes to it)."""
        for shard in self._shards():
            yield list(shard.values())

    def drop_some(self, count: int) -> None:
        """Remove up to `count` entries, any."""
        for shard in self._shards():
            while shard and count:
                shard.popitem()
                self._size -= 1
                count -= 1

    def _shards(self) -> list[dict[str, V]]:
        return list({id(shard): shard for shard in self._table}.values())

    def _split(self, slot: int) -> None:
        """Split the shard at `slot` by the next bit of the hash (doubling the table
        first when that shard already uses all of its bits)."""
        depth = self._depths[slot]
        if depth == self._mask.bit_count():
            self._table += self._table
            self._depths += self._depths
            self._fills += self._fills
            self._mask = (self._mask << 1) | 1
        old = self._table[slot]
        low: dict[str, V] = {}
        high: dict[str, V] = {}
        bit = 1 << depth
        for key, value in old.items():
            (high if hash(key) & bit else low)[key] = value
        fills = {id(low): _fill(), id(high): _fill()}
        for i, shard in enumerate(self._table):
            if shard is old:
                self._table[i] = new = high if i & bit else low
                self._depths[i] = depth + 1
                self._fills[i] = fills[id(new)]


def _fill() -> int:
    return random.randint(SHARD_LIMIT // 2, SHARD_LIMIT)
