"""The queue gauges of a scrape: a bounded look at the queues, and a bounded set of series.

A scrape looks at `[metrics] max_queues` queues at most: the listed ones
(`[metrics] queues`), then accounts and their queues holding messages in listing order
(`Service.account_stats`, a page at a time) until the cap. Of those, the listed queues
and the `top_queues` deepest get series of their own; every other one is summed into
its account's `queue="_other"`, and past `top_queues` such accounts (the ones with the
fewest messages left over) into one `account="_other", queue="_other"`. So a gauge has
at most `2 * top_queues + len(queues) + 1` series, however many queues there are. Sums
are sums, but for the oldest message's age, the largest.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import TypeVar

from burrow.config import MetricsSettings
from burrow.errors import NoMatch
from burrow.model import Filters
from burrow.service import Service
from burrow.stats import QueueStats
from burrow.tally import Labels, Values

K = TypeVar("K")
OTHER = "_other"
Key = tuple[str, str]  # (account, queue)
# Each gauge, and the stats it shows.
GAUGES: dict[str, Callable[[QueueStats], int]] = {
    "burrow_queue_messages_visible": lambda stats: stats.visible,
    "burrow_queue_messages_hidden": lambda stats: stats.hidden,
    "burrow_queue_messages_delayed": lambda stats: stats.delayed,
}
OLDEST = "burrow_queue_oldest_message_age_seconds"
LOOKED_AT = "burrow_metrics_queues_looked_at"
CUT_SHORT = "burrow_metrics_queues_cut_short"


async def queue_gauges(service: Service, settings: MetricsSettings) -> Values:
    """The queue gauges (see the module's docstring), and how many queues were looked
    at and whether the cap cut the look short (1) or not (0)."""
    listed = [_key(name) for name in settings.queues]
    found: dict[Key, QueueStats] = {key: await service.queue_stats(*key) for key in listed}
    cut_short = await _look(service, found, settings.max_queues)
    own = set(listed)
    depths = {key: stats.messages for key, stats in found.items() if key not in own}
    own.update(_deepest(depths, settings.top_queues))
    series: dict[Labels, list[QueueStats]] = {}
    leftover: dict[str, list[QueueStats]] = {}
    for key, stats in found.items():
        if key in own:
            series.setdefault(key, []).append(stats)
        else:
            leftover.setdefault(key[0], []).append(stats)
    left = {account: sum(stats.messages for stats in group) for account, group in leftover.items()}
    kept = set(_deepest(left, settings.top_queues))
    for account, queues in leftover.items():
        labels = (account, OTHER) if account in kept else (OTHER, OTHER)
        series.setdefault(labels, []).extend(queues)
    gauges: Values = {
        name: {labels: sum(map(show, group)) for labels, group in series.items()}
        for name, show in GAUGES.items()
    }
    gauges[OLDEST] = {labels: _oldest(group) for labels, group in series.items()}
    gauges[LOOKED_AT] = {(): len(found)}
    gauges[CUT_SHORT] = {(): int(cut_short)}
    return gauges


async def _look(service: Service, found: dict[Key, QueueStats], cap: int) -> bool:
    """Add the stats of queues holding messages, account by account, until `found` holds
    `cap`; True if the cap was reached with queues still to look at."""
    page = service.limits.max_limit
    marker: str | None = None
    while True:
        try:
            accounts = await service.get_accounts(Filters(page, marker))
        except NoMatch:
            return False
        for account in accounts:
            queue_marker: str | None = None
            while True:
                room = cap - len(found)
                if room <= 0:
                    return True
                limit = min(page, room)
                stats = await service.account_stats(account, Filters(limit, queue_marker))
                for queue, queue_stats in stats.items():
                    found.setdefault((account, queue), queue_stats)
                if len(stats) < limit:
                    break
                queue_marker = next(reversed(stats))
        if len(accounts) < page:
            return False
        marker = accounts[-1]


def _deepest(messages: dict[K, int], n: int) -> list[K]:
    """The `n` keys with the most messages (of equals, the first looked at)."""
    return heapq.nlargest(n, messages, key=messages.__getitem__)


def _oldest(group: Iterable[QueueStats]) -> float:
    """The oldest message's age of a group; 0 when none has one (all empty)."""
    return max((stats.oldest_age or 0.0 for stats in group), default=0.0)


def _key(name: str) -> Key:
    account, _, queue = name.partition("/")  # (checked as ACCOUNT/QUEUE by the settings)
    return account, queue
