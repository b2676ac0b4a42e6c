"""Facet counts and the hit timeline over a WHOLE result set (not just the page shown).

The engine gives every matching id (``engine.all_ids``). The four columns facets need (sender,
conversation, format, time) of every message are kept in memory per case (:class:`FacetColumns`,
brought up to date from case.db at each call: messages are only ever added), so the hits are
counted there (:func:`_aggregate_ids`) and only the names of the senders and conversations found are
looked up. Days, months and weeks are local to the display zone: each
hit's UTC offset comes from the zone's offset changes over the hits' time span, so DST changes land
on the right day.

The plain path (:func:`_fill` then :func:`_aggregate`: the hits' columns copied into a temporary
table, each facet a GROUP BY over it, the offsets one SQL CASE expression) answers the whole case
(an empty query) and is what the fast one is checked against.
"""

from __future__ import annotations

import json
import threading
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from itertools import repeat
from operator import add
from pathlib import Path
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
    ids: list[str] | None = field(default=None, repr=False, compare=False)  # every hit id (None: all), for other facets

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
    if isinstance(node, q.MatchAll):
        return _aggregate(case, "messages", zone, interval, top)
    ids = case.engine().all_ids(node)
    result = _aggregate_ids(case, ids, zone, interval, top)
    result.ids = ids
    return result


def aggregate_plain(case: Case, node: q.Node, *, zone: tzinfo = UTC, interval: str = "auto",
                    top: int = 10) -> Aggregation:
    """:func:`aggregate` by the plain path (a temporary table and GROUP BYs), for the tests."""
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


class FacetColumns:
    """The facet columns (sender, conversation, format, time) of every message of one case, in memory.

    Messages are only ever added to case.db (ingest inserts them; nothing updates or deletes them),
    so :meth:`refresh` brings the copy up to date by reading the rows past the highest ``seq`` it
    holds; when the count does not add up (case.db edited by hand, or another case at the same path)
    it reads everything again, into a new copy. Values are kept once each, rows as small integer codes:
    about 150 bytes a message, most of it the id.
    """

    def __init__(self) -> None:
        self.seq = -1
        self.count = 0
        self.row: dict[str, int] = {}
        self.sender = array("i")
        self.conversation = array("i")
        self.format = array("i")
        self.time = array("q")
        self.values: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        self._codes: tuple[dict[Any, int], dict[Any, int], dict[Any, int]] = ({}, {}, {})

    def refresh(self, db: Any) -> FacetColumns:
        """These columns caught up with DB (rows only appended: safe for readers of this copy), or a
        new copy read whole. The checks and the rows come from one read transaction (one snapshot)."""
        own = not db.in_transaction
        if own:
            db.execute("BEGIN")
        try:
            top = db.execute("SELECT MAX(seq) FROM messages").fetchone()[0]
            top = -1 if top is None else int(top)
            count = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
            if top == self.seq and count == self.count:
                return self
            if top > self.seq:
                added = db.execute(f"{self._SELECT} WHERE seq > ? ORDER BY seq", (self.seq,)).fetchall()
                if self.count + len(added) == count:
                    self._append(added)
                    self.seq = top
                    return self
            fresh = FacetColumns()
            fresh._append(db.execute(f"{self._SELECT} ORDER BY seq").fetchall())
            fresh.seq, fresh.count = top, count
            return fresh
        finally:
            if own:
                db.commit()  # never leave a transaction open: it would pin this connection to an old snapshot

    _SELECT = "SELECT id, sender_id, conversation_id, source_format, sent_at_us FROM messages"

    def _append(self, rows: list[Any]) -> None:
        columns = (self.sender, self.conversation, self.format)
        row = self.row
        for message_id, *values, at in rows:
            if message_id in row:
                continue  # cannot happen (ids are unique); never count one twice
            row[message_id] = len(self.time)
            for column, codes, known, value in zip(columns, self._codes, self.values, values, strict=True):
                code = codes.get(value)
                if code is None:
                    code = codes[value] = len(known)
                    known.append(value)
                column.append(code)
            self.time.append(at)
        self.count += len(rows)

    def counts(self, ids: Iterable[str]) -> tuple[Counter[Any], Counter[Any], Counter[Any], list[int]]:
        """(senders, conversations, formats) counted over the messages with IDS, and their times;
        ids case.db does not hold are skipped, duplicates count once."""
        found = [place for place in map(self.row.get, ids) if place is not None]  # ids' order: near places
        if len(set(found)) != len(found):
            found = sorted(set(found))
        counted = []
        for column, known in zip((self.sender, self.conversation, self.format), self.values, strict=True):
            by_code = Counter(map(column.__getitem__, found))
            counted.append(Counter({known[code]: n for code, n in by_code.items()}))
        return counted[0], counted[1], counted[2], list(map(self.time.__getitem__, found))


_COLUMNS: dict[tuple[str, str | None], FacetColumns] = {}
_COLUMNS_LOCK = threading.Lock()


def facet_columns(case: Case) -> FacetColumns:
    """CASE's FacetColumns, shared by every thread of the process, brought up to date now."""
    key = (str(Path(case.folder).resolve()), case.get_meta("created_at"))
    with _COLUMNS_LOCK:
        columns = _COLUMNS.get(key)
        if columns is None:
            for other in [k for k in _COLUMNS if k[0] == key[0]]:  # a case made anew at the same path
                del _COLUMNS[other]
            columns = FacetColumns()
        columns = _COLUMNS[key] = columns.refresh(case.db)
        return columns


def _aggregate_ids(case: Case, ids: list[str], zone: tzinfo, interval: str, top: int) -> Aggregation:
    """What :func:`_aggregate` computes for the messages with IDS, counted in memory (see the docstring)."""
    sender_counts, conversation_counts, format_counts, times = facet_columns(case).counts(ids)
    result = Aggregation(total=len(times))
    if not result.total:
        result.distinct = {"senders": 0, "conversations": 0, "formats": 0}
        return result
    db = case.db
    sender_names = _names(db, "participants", [s for s in sender_counts if s is not None])
    conversation_names = _names(db, "conversations", [c for c in conversation_counts if c is not None])
    groups = {
        "senders": _ranked(sender_counts, lambda s: _coalesce(sender_names.get(s), s, "(unknown sender)")),
        "conversations": _ranked(conversation_counts, lambda c: _coalesce(conversation_names.get(c), c)),
        "formats": [FacetValue(fmt, fmt, n) for fmt, n in sorted(format_counts.items(), key=_by_count_then_value)],
    }
    for name, values in groups.items():
        result.facets[name] = values[:top]
        result.distinct[name] = len(values)
    days = local_days(times, zone)
    _fill_dates(result, days, interval, top)
    return result


def _names(db: Any, table: str, ids: list[Any]) -> dict[Any, Any]:
    """{id: name} for IDS in TABLE (participants or conversations); ids without a row are left out."""
    if not ids:
        return {}
    rows = db.execute(f"SELECT t.id, t.name FROM json_each(?) AS j CROSS JOIN {table} AS t ON t.id = j.value",
                      (json.dumps(ids),)).fetchall()
    if db.in_transaction:
        db.commit()
    return {row[0]: row[1] for row in rows}


def _coalesce(*values: Any) -> Any:
    """SQL's COALESCE: the first value that is not None (an empty name is a name)."""
    return next((value for value in values if value is not None), None)


def _sort_key(value: Any) -> tuple[int, Any]:
    """SQLite's order of mixed values: NULL, then numbers, then text (we only see NULL and text)."""
    if value is None:
        return (0, "")
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, value)


def _by_count_then_value(item: tuple[Any, int]) -> tuple[int, tuple[int, Any]]:
    return -item[1], _sort_key(item[0])


def _ranked(counts: Counter[Any], label: Any) -> list[FacetValue]:
    """Every group, most hits first, ties by label (as ``ORDER BY n DESC, label``), then by value."""
    labelled = [(value, label(value), n) for value, n in counts.items()]
    labelled.sort(key=lambda item: (-item[2], _sort_key(item[1]), _sort_key(item[0])))
    return [FacetValue("" if value is None else str(value), str(name), n) for value, name, n in labelled]


def local_days(times: list[int], zone: tzinfo) -> Counter[date]:
    """Counts per local calendar day in ZONE of the instants TIMES (µs since the epoch, UTC)."""
    if not times:
        return Counter()
    changes = offset_changes(zone, min(times), max(times))
    if len(changes) == 1:  # one offset (UTC, a fixed zone, a span without a change): C-level maps
        shifted = map(add, times, repeat(changes[0][1]))
        per_day = Counter(map(DAY_US.__rfloordiv__, shifted))  # (at + offset) // DAY_US
    else:
        bounds = [start for start, _ in changes[1:]]  # the offset of changes[i] holds from bounds[i - 1] on
        offsets = [offset for _, offset in changes]
        per_day = Counter((at + offsets[bisect_right(bounds, at)]) // DAY_US for at in times)
    return Counter({EPOCH_DAY + timedelta(days=day): count for day, count in per_day.items()})


def _fill_dates(result: Aggregation, days: Counter[date], interval: str, top: int) -> None:
    """The months facet and the timeline of RESULT, from the hits per local day."""
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
    _fill_dates(result, days, interval, top)
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
