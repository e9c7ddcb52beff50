"""The query parameters of v1.0 calls: which a route takes, and `Params`, which reads
and checks them (a bad number, flag or detail is a 400 that changes nothing)."""

from __future__ import annotations

from burrow.errors import InvalidRequest
from burrow.frontends.v1_bodies import base64_field
from burrow.model import ALL_ITEMS, NO_QUOTA, Attributes, Detail, Filters, Quota

NAME_DETAILS = (Detail.NONE, Detail.ID, Detail.ALL)
BATCH_DETAILS = (Detail.ID, Detail.ALL)
# `GET … ?detail=stats` (an extension): a queue's stats, or each queue's or account's.
STATS = "stats"
DETAILS = {detail.value: detail for detail in Detail}  # quicker than calling the enum
# How a message may be rendered (`detail`): the details, and `full` (an extension:
# `all` and the rest of a `Message`, for a proxy storing through this server).
FULL = "full"
VIEWS: dict[str, str] = {**DETAILS, FULL: FULL}  # each spelling's one object (`is` tells)
DETAIL_OF_VIEW = {**DETAILS, FULL: Detail.ALL}  # what the service is asked for
# v1.0 read these from every call but a PUT, and its client sends whichever its caller
# gives: each is accepted wherever v1.0 took it, and checked even where it has no effect.
FILTERS = frozenset({"limit", "marker", "match_hidden", "detail", "wait"})
MATCHING = frozenset({"limit", "marker", "match_hidden"})  # what `Filters` holds
ATTRIBUTES = frozenset({"ttl", "hide"})
# A caller (a proxy in front of this server) may ask for quotas stricter than ours.
# (In a fixed order, so that of several bad ones the error names the same each time.)
QUOTA_PARAMS = ("max_queue_messages", "max_account_queues", "max_account_bytes")
QUOTAS = frozenset(QUOTA_PARAMS)
NO_PARAMS: frozenset[str] = frozenset()
NO_CHANGE = Attributes()
MAX_DIGITS = 12  # of a number in the query (larger than any limit allows)


class Params:
    """Query parameters of one request, checked against what its route accepts."""

    def __init__(self, raw: dict[str, str], allowed: frozenset[str]) -> None:
        self._raw = raw
        self.only(allowed)

    def only(self, allowed: frozenset[str]) -> None:
        """Refuse (400) any parameter but `allowed` (some routes take fewer in one mode)."""
        if not allowed.issuperset(self._raw):
            unknown = self._raw.keys() - allowed
            raise InvalidRequest(
                f"unknown query parameter(s) {', '.join(sorted(unknown))}; "
                f"allowed here: {', '.join(sorted(allowed)) or 'none'}"
            )

    def integer(self, name: str) -> int | None:
        value = self._raw.get(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or len(value) > MAX_DIGITS:
            raise InvalidRequest(f"{name} must be a non-negative integer, not {value!r}")
        return int(value)

    def flag(self, name: str) -> bool:
        """A boolean: `true` or `false` in any letter case (v1.0 clients send `True`)."""
        value = self._raw.get(name)
        if value is None:
            return False
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise InvalidRequest(f"{name} must be true or false, not {value!r}")
        return lowered == "true"

    def filters(self) -> Filters:
        if MATCHING.isdisjoint(self._raw):
            return ALL_ITEMS
        return Filters(self.integer("limit"), self._raw.get("marker"), self.flag("match_hidden"))

    def name_filters(self) -> Filters:
        """Filters of an account or queue listing, which `match_hidden` and `wait` do not
        change (checked all the same)."""
        self.wait()
        filters = self.filters()
        return Filters(filters.limit, filters.marker) if filters.match_hidden else filters

    def check_unused_filters(self) -> None:
        """A call on one message has no use for filters; a v1.0 client may still send them."""
        self.filters()
        self.wait()

    def attributes(self) -> Attributes:
        if ATTRIBUTES.isdisjoint(self._raw):
            return NO_CHANGE
        return Attributes(self.integer("ttl"), self.integer("hide"))

    def wait(self) -> int:
        return self.integer("wait") or 0

    def quota(self) -> Quota:
        if QUOTAS.isdisjoint(self._raw):
            return NO_QUOTA
        return Quota(**{name: self.integer(name) or 0 for name in QUOTA_PARAMS})

    def detail(self, default: Detail, choices: tuple[Detail, ...] = tuple(Detail)) -> Detail:
        return DETAILS[self.view(default, choices)]

    def view(self, default: str, choices: tuple[str, ...] = tuple(VIEWS)) -> str:
        """How to render messages: a `Detail`, or `FULL`."""
        value = self._raw.get("detail")
        if value is None:
            return default
        if value not in choices:
            raise InvalidRequest(f"detail must be one of {', '.join(choices)}, not {value!r}")
        return VIEWS[value]

    def text(self, name: str) -> str | None:
        return self._raw.get(name)

    def stats(self) -> bool:
        """Whether the call asks for stats (`detail=stats`) rather than a listing."""
        return self._raw.get("detail") == STATS

    def meta(self) -> bytes:
        """A single PUT's `meta`: base64 as RFC 4648 writes it, padded."""
        value = self._raw.get("meta")
        return b"" if value is None else base64_field(value, "meta")
