"""Facet counts and the hit timeline over a WHOLE result set (not just the page shown).

The engine gives every matching id (``engine.all_ids``); the counting happens in case.db: the
ids go into a temporary table, the few columns facets need are copied beside them once, and each
facet is a GROUP BY over that small table. Days, months and weeks are local to the display zone:
the zone's UTC offsets over the hits' time span become one SQL CASE expression, so DST changes
land on the right day.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

from dateutil import tz as dateutil_tz

from discovery.case import Case
from discovery.query import ast as q

DAY_US = 86_400_000_000
INTERVALS = ("day", "week", "month", "year")
EPOCH_DAY = date(1970, 1, 1)
_SAMPLE = timedelta(days=7)  # offsets are sampled weekly, then each change is located to the minute
_MAX_BARS = 400
_ONE_MICRO = timedelta(microseconds=1)


@dataclass
class FacetValue:
    value: str  # what the filter takes (an id, a format name, a month "YYYY-MM")
    label: str  # what a person reads
    count: int


@dataclass
class Bucket:
    first: date  # local days, inclusive
    last: date
    label: str
    count: int


@dataclass
class Aggregation:
    total: int
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    distinct: dict[str, int] = field(default_factory=dict)  # how many values each facet has in all
    interval: str = "day"
    timeline: list[Bucket] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "facets": {name: [asdict(v) for v in values] for name, values in self.facets.items()},
            "distinct": self.distinct,
            "timeline": {
                "interval": self.interval,
                "buckets": [
                    {"from": b.first.isoformat(), "to": b.last.isoformat(), "label": b.label, "count": b.count}
                    for b in self.timeline
                ],
            },
        }


def aggregate(case: Case, node: q.Node, *, zone: tzinfo = UTC, interval: str = "auto", top: int = 10) -> Aggregation:
    """Facets (senders, conversations, months, formats) and a timeline for every message NODE matches."""
    if interval not in ("auto", *INTERVALS):
        raise ValueError(f"interval must be auto or one of {', '.join(INTERVALS)}, not {interval!r}")
    ids = None if isinstance(node, q.MatchAll) else case.engine().all_ids(node)
    table = _fill(case, ids)
    try:
        return _aggregate(case, table, zone, interval, top)
    finally:
        if table != "messages":
            case.db.execute(f"DELETE FROM {table}")
            case.db.commit()  # never leave a transaction open: it would pin this connection to an old snapshot


# A covering index over exactly what facets read (case.py may create it): without it each hit costs a
# read of its whole message row (text, raw record), which dominates on large result sets.
FACET_INDEX = "messages_facets"
FACET_INDEX_SQL = f"CREATE INDEX IF NOT EXISTS {FACET_INDEX} ON messages(id, sender_id, conversation_id, " \
                  "source_format, sent_at_us)"


def _fill(case: Case, ids: list[str] | None) -> str:
    """The table facets read: all messages, or the hits' few facet columns copied into a temporary table."""
    if ids is None:
        return "messages"
    db = case.db
    if not db.in_transaction:
        db.execute("PRAGMA temp_store = MEMORY")
    db.execute(
        "CREATE TEMP TABLE IF NOT EXISTS facet_rows "
        "(sender_id TEXT, conversation_id TEXT, source_format TEXT, sent_at_us INTEGER)"
    )
    db.execute("DELETE FROM temp.facet_rows")
    indexed = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (FACET_INDEX,)).fetchone()
    hint = f"INDEXED BY {FACET_INDEX}" if indexed else ""
    # All ids travel as one JSON parameter (no IN-list limits, no per-id INSERT); CROSS JOIN keeps the
    # ids as the outer loop, so each is one index probe, and sorted ids probe neighbouring pages.
    db.execute(
        "INSERT INTO temp.facet_rows SELECT m.sender_id, m.conversation_id, m.source_format, m.sent_at_us "
        f"FROM json_each(?) AS j CROSS JOIN messages AS m {hint} ON m.id = j.value",
        (json.dumps(sorted(ids)),),
    )
    return "temp.facet_rows"


def _aggregate(case: Case, table: str, zone: tzinfo, interval: str, top: int) -> Aggregation:
    db = case.db
    by_format = db.execute(
        f"SELECT source_format, COUNT(*) AS n, MIN(sent_at_us), MAX(sent_at_us) FROM {table} "
        f"GROUP BY source_format ORDER BY n DESC, 1"
    ).fetchall()
    result = Aggregation(total=sum(row[1] for row in by_format))
    if not result.total:
        result.distinct = {"senders": 0, "conversations": 0, "formats": 0}
        return result
    first_us, last_us = min(row[2] for row in by_format), max(row[3] for row in by_format)
    groups = {
        "senders": _groups(db, (
            f"SELECT g.sender_id, COALESCE(p.name, g.sender_id, '(unknown sender)'), g.n FROM "
            f"(SELECT sender_id, COUNT(*) AS n FROM {table} GROUP BY sender_id) g "
            f"LEFT JOIN participants p ON p.id = g.sender_id ORDER BY g.n DESC, 2")),
        "conversations": _groups(db, (
            f"SELECT g.conversation_id, COALESCE(c.name, g.conversation_id), g.n FROM "
            f"(SELECT conversation_id, COUNT(*) AS n FROM {table} GROUP BY conversation_id) g "
            f"LEFT JOIN conversations c ON c.id = g.conversation_id ORDER BY g.n DESC, 2")),
        "formats": [FacetValue(fmt, fmt, n) for fmt, n, _, _ in by_format],
    }
    for name, values in groups.items():  # every group is fetched, so the number of distinct values is exact
        result.facets[name] = values[:top]
        result.distinct[name] = len(values)
    days = _local_days(case, table, zone, first_us, last_us)
    months = _roll_up(days, "month")
    result.facets["months"] = [FacetValue(b.first.strftime("%Y-%m"), b.label, b.count)
                               for b in sorted(months, key=lambda b: b.first, reverse=True)[:top * 2]]
    result.distinct["months"] = len(months)
    result.interval = choose_interval(min(days), max(days)) if interval == "auto" else interval
    result.timeline = timeline(days, result.interval)
    if len(result.timeline) > _MAX_BARS:  # a forced interval too fine for the span: coarsen it
        for coarser in INTERVALS[INTERVALS.index(result.interval) + 1:]:
            result.interval, result.timeline = coarser, timeline(days, coarser)
            if len(result.timeline) <= _MAX_BARS:
                break
    return result


def _groups(db: Any, sql: str) -> list[FacetValue]:
    return [FacetValue("" if value is None else str(value), str(label), count)
            for value, label, count in db.execute(sql)]


def _local_days(case: Case, table: str, zone: tzinfo, first_us: int, last_us: int) -> Counter[date]:
    """Hit counts per local calendar day in ZONE."""
    shift, params = offset_sql(zone, first_us, last_us)
    rows = case.db.execute(
        f"SELECT at / {DAY_US} - (at % {DAY_US} < 0) AS day, COUNT(*) FROM "
        f"(SELECT sent_at_us + {shift} AS at FROM {table}) GROUP BY day",
        params,
    )
    return Counter({EPOCH_DAY + timedelta(days=day): count for day, count in rows})


def offset_sql(zone: tzinfo, first_us: int, last_us: int) -> tuple[str, list[int]]:
    """An SQL expression giving ZONE's UTC offset (µs) at sent_at_us, exact over [FIRST_US, LAST_US]."""
    changes = offset_changes(zone, first_us, last_us)
    if len(changes) == 1:
        return "?", [changes[0][1]]
    sql = ["CASE"]
    params: list[int] = []
    for (_, offset), (boundary, _) in zip(changes, changes[1:], strict=False):
        sql.append("WHEN sent_at_us < ? THEN ?")
        params += [boundary, offset]
    sql.append("ELSE ? END")
    params.append(changes[-1][1])
    return " ".join(sql), params


def offset_changes(zone: tzinfo, first_us: int, last_us: int) -> list[tuple[int, int]]:
    """[(from_us, offset_us), ...]: ZONE's offset from each instant on, over the span."""
    def offset_at(moment: datetime) -> int:
        delta = moment.astimezone(zone).utcoffset() or timedelta(0)
        return int(delta.total_seconds() * 1_000_000)

    start = _from_us(first_us)
    end = _from_us(last_us)
    changes = [(first_us, offset_at(start))]
    if isinstance(zone, (timezone, dateutil_tz.tzutc, dateutil_tz.tzoffset)):
        return changes  # a fixed offset never changes
    sample = max(_SAMPLE, (end - start) / 5000)  # weekly, unless decades of (likely bogus) dates
    moment = start
    while moment < end:
        step = min(moment + sample, end)
        if offset_at(step) != changes[-1][1]:
            low, high = moment, step  # the change lies in (low, high]: bisect to the microsecond
            while high - low > _ONE_MICRO:
                middle = low + (high - low) / 2
                low, high = (low, middle) if offset_at(middle) != changes[-1][1] else (middle, high)
            changes.append((_to_us(high), offset_at(high)))
        moment = step
    return changes


def _from_us(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)


def _to_us(moment: datetime) -> int:
    return q.to_us(moment)


def choose_interval(first: date, last: date) -> str:
    span = (last - first).days
    if span <= 62:
        return "day"
    if span <= 2 * 366:
        return "week"
    if span <= 20 * 366:
        return "month"
    return "year"


def bucket_of(day: date, interval: str) -> tuple[date, date]:
    """The local days [first, last] of the INTERVAL bucket holding DAY (weeks start on Monday)."""
    if interval == "day":
        return day, day
    if interval == "week":
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if interval == "month":
        first = day.replace(day=1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, following - timedelta(days=1)
    if interval == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    raise ValueError(f"unknown interval {interval!r}")


def bucket_label(first: date, interval: str) -> str:
    return {
        "day": lambda: first.isoformat(),
        "week": lambda: f"week of {first.isoformat()}",
        "month": lambda: first.strftime("%Y-%m"),
        "year": lambda: str(first.year),
    }[interval]()


def _roll_up(days: Counter[date], interval: str) -> list[Bucket]:
    counts: Counter[tuple[date, date]] = Counter()
    for day, count in days.items():
        counts[bucket_of(day, interval)] += count
    return [Bucket(first, last, bucket_label(first, interval), n) for (first, last), n in sorted(counts.items())]


def timeline(days: Counter[date], interval: str) -> list[Bucket]:
    """Every INTERVAL bucket from the first hit to the last, empty ones included (count 0)."""
    if not days:
        return []
    filled = {b.first: b for b in _roll_up(days, interval)}
    first, _ = bucket_of(min(days), interval)
    _, end = bucket_of(max(days), interval)
    buckets = []
    while first <= end:
        start, last = bucket_of(first, interval)
        buckets.append(filled.get(start) or Bucket(start, last, bucket_label(start, interval), 0))
        first = last + timedelta(days=1)
        if len(buckets) > 20 * _MAX_BARS:
            break
    return buckets
