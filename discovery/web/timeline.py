"""Geometry of the hit timeline, drawn server-side as SVG by templates/search/_timeline.html.

One bar per day, week, month or year bucket; each non-empty bar links to the same search narrowed
to that bucket's dates. Only numbers and escaped labels reach the template: no script, no styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from discovery.facets import Bucket

WIDTH = 720
HEIGHT = 120
TOP = 8
BOTTOM = 22  # room for the axis labels
LABELS = 6  # at most this many date labels under the axis
MAX_BAR = 48
CHAR_WIDTH = 6.6  # a generous width of one label character at the 11px (user units) tick font


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    bucket: Bucket

    @property
    def description(self) -> str:
        """What the bar says to a screen reader and in its tooltip: "2024-09-10: 1 hit"."""
        return f"{self.bucket.label}: {hits(self.bucket.count)}"


class Label(NamedTuple):
    """A date under the axis: drawn at x with this SVG text-anchor (start, middle or end)."""

    x: float
    text: str
    anchor: str


def hits(count: int) -> str:
    return f"{count} hit" if count == 1 else f"{count} hits"


@dataclass
class Chart:
    width: int
    height: int
    baseline: float
    bars: list[Bar]
    labels: list[Label]
    peak: int

    @property
    def empty(self) -> bool:
        return not self.bars


def chart(buckets: list[Bucket], width: int = WIDTH, height: int = HEIGHT) -> Chart:
    baseline = height - BOTTOM
    if not buckets:
        return Chart(width, height, baseline, [], [], 0)
    peak = max(b.count for b in buckets) or 1
    slot = width / len(buckets)
    gap = min(2.0, slot * 0.2)
    bars = []
    bar_width = max(min(slot - gap, MAX_BAR), 1.0)  # a few buckets: slim bars centred in their slots
    for index, bucket in enumerate(buckets):
        bar_height = 0.0 if not bucket.count else max(2.0, (baseline - TOP) * bucket.count / peak)
        bars.append(Bar(round(index * slot + (slot - bar_width) / 2, 2), round(baseline - bar_height, 2),
                        round(bar_width, 2), round(bar_height, 2), bucket))
    step = max(1, -(-len(buckets) // LABELS))
    labels = [_label(index * slot + slot / 2, _short(buckets[index]), width)
              for index in range(0, len(buckets), step)]
    return Chart(width, height, baseline, bars, labels, peak)


def _label(centre: float, text: str, width: int) -> Label:
    """A label centred under its bar, unless that would cut it off at an edge of the chart: then it is
    anchored at that edge (the first day's label starts at 0, the last one ends at WIDTH)."""
    half = len(text) * CHAR_WIDTH / 2
    if centre - half < 0:
        return Label(0.0, text, "start")
    if centre + half > width:
        return Label(float(width), text, "end")
    return Label(round(centre, 2), text, "middle")


def _short(bucket: Bucket) -> str:
    return bucket.label.removeprefix("week of ")
