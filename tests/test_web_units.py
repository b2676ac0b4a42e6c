"""Pieces of the web layer that need no server: block merging, facets, timeline, params, zones."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from dateutil import tz
from werkzeug.datastructures import MultiDict

from discovery import facets
from discovery.case import Case
from discovery.query import ast as q
from discovery.search import parse_query
from discovery.web import zones
from discovery.web.blocks import merge
from discovery.web.params import BadParam, SearchParams
from discovery.web.timeline import chart

# ------------------------------------------------------------------------------------------- blocks


@dataclass
class FakeHit:
    message: dict[str, Any]
    context: list[dict[str, Any]]


def msg(n: int, conversation: str = "c1", bundle: str | None = None) -> dict[str, Any]:
    return {"id": f"m{n:03d}", "conversation_id": conversation, "bundle_id": bundle, "text": f"message {n}"}


def hit(n: int, context: int = 2, conversation: str = "c1", length: int = 100) -> FakeHit:
    window = [msg(i, conversation) for i in range(max(0, n - context), min(length, n + context + 1))]
    message = dict(msg(n, conversation), highlights=[[0, 7]])
    return FakeHit(message, window)


def ids(block) -> list[int]:
    return [int(line.message["id"][1:]) for line in block.lines]


def test_overlapping_windows_merge_like_grep_c():
    blocks = merge([hit(10), hit(12), hit(30)])
    assert [ids(b) for b in blocks] == [[8, 9, 10, 11, 12, 13, 14], [28, 29, 30, 31, 32]]
    assert [(line.hit_number, line.highlights) for line in blocks[0].hits] == [(1, [[0, 7]]), (2, [[0, 7]])]


def test_merge_keeps_rank_order_and_stream_order():
    blocks = merge([hit(30), hit(12), hit(10), hit(31)], first_number=21)
    assert [ids(b) for b in blocks] == [[28, 29, 30, 31, 32, 33], [8, 9, 10, 11, 12, 13, 14]]
    assert [line.hit_number for line in blocks[0].hits] == [21, 24]
    assert [line.hit_number for line in blocks[1].hits] == [23, 22]


def test_a_later_window_can_bridge_two_blocks():
    blocks = merge([hit(10, 1), hit(14, 1), hit(12, 1)])
    assert [ids(b) for b in blocks] == [[9, 10, 11, 12, 13, 14, 15]]
    assert [line.hit_number for line in blocks[0].hits] == [1, 3, 2]


def test_windows_in_other_conversations_do_not_merge():
    blocks = merge([hit(10), hit(10, conversation="c2"), hit(0, 0), hit(99, 3)])
    assert len(blocks) == 4
    assert ids(blocks[2]) == [0] and ids(blocks[3]) == [96, 97, 98, 99]


def test_contained_window_and_zero_context():
    blocks = merge([hit(5, 3), hit(6, 0)])
    assert [ids(b) for b in blocks] == [[2, 3, 4, 5, 6, 7, 8]]
    assert [line.hit_number for line in blocks[0].hits] == [1, 2]
    assert merge([FakeHit(msg(1), [])])[0].lines[0].hit_number == 1


# ------------------------------------------------------------------------------------------- facets


def test_offset_changes_find_dst_to_the_microsecond():
    ny = tz.gettz("America/New_York")
    start = q.to_us(datetime(2024, 1, 1, tzinfo=UTC))
    end = q.to_us(datetime(2024, 12, 31, tzinfo=UTC))
    changes = facets.offset_changes(ny, start, end)
    hours = -3_600_000_000
    assert changes == [(start, 5 * hours), (q.to_us(datetime(2024, 3, 10, 7, tzinfo=UTC)), 4 * hours),
                       (q.to_us(datetime(2024, 11, 3, 6, tzinfo=UTC)), 5 * hours)]
    assert facets.offset_changes(UTC, start, end) == [(start, 0)]
    kolkata = facets.offset_changes(tz.gettz("Asia/Kolkata"), start, end)
    assert kolkata == [(start, 19_800_000_000)]


@pytest.mark.parametrize("day, interval, expected", [
    (date(2024, 2, 29), "day", (date(2024, 2, 29), date(2024, 2, 29))),
    (date(2024, 2, 29), "week", (date(2024, 2, 26), date(2024, 3, 3))),
    (date(2024, 2, 29), "month", (date(2024, 2, 1), date(2024, 2, 29))),
    (date(2024, 12, 31), "month", (date(2024, 12, 1), date(2024, 12, 31))),
    (date(2024, 7, 4), "year", (date(2024, 1, 1), date(2024, 12, 31))),
])
def test_buckets(day, interval, expected):
    assert facets.bucket_of(day, interval) == expected


def test_timeline_fills_empty_buckets_and_choose_interval():
    days = Counter({date(2024, 1, 1): 2, date(2024, 1, 4): 1})
    buckets = facets.timeline(days, "day")
    assert [b.count for b in buckets] == [2, 0, 0, 1]
    assert facets.choose_interval(date(2024, 1, 1), date(2024, 2, 1)) == "day"
    assert facets.choose_interval(date(2024, 1, 1), date(2024, 9, 1)) == "week"
    assert facets.choose_interval(date(2020, 1, 1), date(2024, 9, 1)) == "month"
    assert facets.choose_interval(date(1970, 1, 1), date(2024, 9, 1)) == "year"


def brute_force(case: Case, node: q.Node, zone) -> dict[str, Counter]:
    ids = case.engine().all_ids(node)
    records = case.messages_by_id(ids).values()
    return {
        "senders": Counter(m["sender_id"] or "" for m in records),
        "conversations": Counter(m["conversation_id"] for m in records),
        "formats": Counter(m["source_format"] for m in records),
        "days": Counter(zones.local(m["sent_at"], zone).date() for m in records),
    }


@pytest.mark.parametrize("query, zone_name", [("whitewash", "UTC"), ("refund OR logs OR 洗白", "Asia/Shanghai"),
                                              ("", "America/Los_Angeles"), ("has:attachment", "Pacific/Chatham")])
def test_aggregate_matches_brute_force(demo_case_dir, query, zone_name):
    case = Case(demo_case_dir)
    try:
        zone = zones.zone(zone_name)
        node = parse_query(case, query)
        result = facets.aggregate(case, node, zone=zone, interval="day", top=1000)
        expected = brute_force(case, node, zone)
        assert result.total == sum(expected["formats"].values())
        for name in ("senders", "conversations", "formats"):
            assert {v.value: v.count for v in result.facets[name]} == dict(expected[name]), name
        got_days = {b.first: b.count for b in result.timeline if b.count}
        assert got_days == dict(expected["days"])
        assert sum(v.count for v in result.facets["months"]) == result.total
    finally:
        case.close()


def test_aggregate_of_nothing(demo_case_dir):
    case = Case(demo_case_dir)
    try:
        result = facets.aggregate(case, parse_query(case, "zzzznotaword"))
        assert result.total == 0 and result.timeline == [] and result.to_dict()["facets"] == {}
        with pytest.raises(ValueError):
            facets.aggregate(case, q.MatchAll(), interval="fortnight")
    finally:
        case.close()


# ----------------------------------------------------------------------------------------- timeline


def test_chart_geometry():
    buckets = facets.timeline(Counter({date(2024, 1, 1): 4, date(2024, 1, 3): 1}), "day")
    drawn = chart(buckets, width=300, height=100)
    assert len(drawn.bars) == 3 and drawn.peak == 4
    assert drawn.bars[0].height > drawn.bars[2].height > 0 == drawn.bars[1].height
    assert all(bar.x >= 0 and bar.x + bar.width <= 300 for bar in drawn.bars)
    assert all(bar.y + bar.height == pytest.approx(drawn.baseline) for bar in drawn.bars)
    assert chart([]).empty


# ------------------------------------------------------------------------------------------- params


def test_params_build_filter_nodes_in_the_display_zone():
    params = SearchParams.from_args(MultiDict({"q": "x", "from": "2024-03-10", "to": "2024-03-10", "sender": "Ann",
                                               "has_attachment": "1", "deleted": "on", "edited": "0"}))
    nodes = params.filter_nodes(tz.gettz("America/New_York"))
    assert nodes[0] == q.DateRange(datetime(2024, 3, 10, 5, tzinfo=UTC),
                                   datetime(2024, 3, 11, 3, 59, 59, 999999, tzinfo=UTC))  # a 23-hour day
    assert q.Field("sender", "Ann") in nodes
    assert q.Field("has", "attachment") in nodes and q.Field("is", "deleted") in nodes
    assert q.Field("is", "edited") not in nodes
    assert SearchParams.from_args(MultiDict()).is_empty


def test_bad_param_names_the_parameter():
    with pytest.raises(BadParam) as error:
        SearchParams.from_args(MultiDict({"context": "9999"}))
    assert error.value.param == "context" and "between 0 and 50" in error.value.message


def test_dst_gap_midnight():
    # Santiago skips from 00:00 to 01:00 on 2024-09-08: the day starts at 01:00 local.
    start = zones.day_start(date(2024, 9, 8), tz.gettz("America/Santiago"))
    assert start == datetime(2024, 9, 8, 4, tzinfo=UTC)
