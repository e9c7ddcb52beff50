"""What one process counted, as plain data: summed across workers, then exported.

A `Tally` holds, per metric name, a value or a `Histogram` per tuple of label values.
It turns into JSON and back (each worker's is a file the scraping worker reads, see
`burrow.metrics_shared`), and adds up: counters and histograms sum, and so do gauges
(each worker's long polls, say), which `without_gauges` leaves out for a worker that is
gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from burrow.histogram import Histogram

Labels = tuple[str, ...]
Values = dict[str, dict[Labels, float]]


@dataclass(slots=True)
class Tally:
    counters: Values = field(default_factory=dict)
    gauges: Values = field(default_factory=dict)
    histograms: dict[str, dict[Labels, Histogram]] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        for mine, theirs in ((self.counters, other.counters), (self.gauges, other.gauges)):
            for name, series in theirs.items():
                into = mine.setdefault(name, {})
                for labels, value in series.items():
                    into[labels] = into.get(labels, 0) + value
        for name, histograms in other.histograms.items():
            into_histograms = self.histograms.setdefault(name, {})
            for labels, histogram in histograms.items():
                found = into_histograms.get(labels)
                if found is None:
                    found = into_histograms[labels] = Histogram(histogram.bounds)
                found.add(*histogram.snapshot())

    def without_gauges(self) -> Tally:
        return Tally(self.counters, {}, self.histograms)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "counters": _values_json(self.counters),
                "gauges": _values_json(self.gauges),
                "histograms": {
                    name: [[list(labels), list(h.bounds), *h.snapshot()] for labels, h in s.items()]
                    for name, s in self.histograms.items()
                },
            }
        )

    @classmethod
    def from_json(cls, text: bytes) -> Tally:
        """The tally `to_json` wrote; ValueError (or KeyError, TypeError) if it is not one."""
        document = orjson.loads(text)
        histograms: dict[str, dict[Labels, Histogram]] = {}
        for name, series in document["histograms"].items():
            into = histograms[name] = {}
            for labels, bounds, counts, total in series:
                histogram = into[tuple(labels)] = Histogram(bounds)
                histogram.add(counts, total)
        return cls(_values(document["counters"]), _values(document["gauges"]), histograms)


def _values_json(values: Values) -> dict[str, list[Any]]:
    return {name: [[list(k), v] for k, v in series.items()] for name, series in values.items()}


def _values(document: dict[str, list[Any]]) -> Values:
    return {name: {tuple(k): v for k, v in series} for name, series in document.items()}
