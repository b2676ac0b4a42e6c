import threading
from datetime import datetime, timezone

import pytest

from discovery.engine import IndexDoc
from discovery.engine.whoosh_engine import WhooshEngine
from discovery.query import Field, matches, parse

DAY = 86_400_000_000


def us(*args):
    moment = datetime(*args, tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def doc(id, text, ts, **kw):
    base = {
        "conversation_id": "oc_1",
        "conversation_name": "Ops Team",
        "conversation_type": "group",
        "sender_id": "u_1",
        "sender_name": "Li Lei",
        "source_format": "lark_api",
        "custodian": "alice",
        "kind": "text",
    }
    base.update(kw)
    return IndexDoc(id=id, text=text, sent_at_us=ts, day=ts // DAY, **base)


DOCS = [
    doc("m1", "上线前把debug logs清理掉", us(2023, 6, 1, 9)),
    doc("m2", "please whitewash the logs before the audit", us(2023, 6, 1, 23, 59, 59, 999999)),
    doc("m3", "scrub the evidence now", us(2023, 6, 2), sender_id="u_2", sender_name="Han Meimei"),
    doc("m4", "report.final.xlsx attached", us(2023, 6, 30, 12), has_attachment=True, kind="file"),
    doc("m5", "删除证据 immediately", us(2023, 7, 1), conversation_id="oc_2", conversation_name="Secret"),
    doc("m6", "Whitewashed LOGS, whitewashing evidence", us(2023, 5, 31, 23, 59, 59, 999999), edited=True),
    doc("m7", "nothing to see here", us(2023, 6, 15), deleted=True, custodian="Bob Smith"),
    doc("m8", "清 单独", us(2022, 1, 1), conversation_type="dm", source_format="slack"),
    doc("m9", "the invioce is wrong", us(2023, 6, 10)),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = WhooshEngine(tmp_path_factory.mktemp("ix"))
    assert eng.add(DOCS) == len(DOCS)
    eng.commit()
    yield eng
    eng.close()


def ids(engine, query):
    node = parse(query)
    found = sorted(engine.all_ids(node))
    expected = sorted(d.id for d in DOCS if matches(node, d))
    assert found == expected, f"engine {found} != oracle {expected} for {query!r}"
    assert engine.search(node, limit=100).total == len(found)
    return found


@pytest.mark.parametrize(
    "query, expected",
    [
        ("logs", ["m1", "m2", "m6"]),
        ("LOGS", ["m1", "m2", "m6"]),
        ("清理", ["m1"]),
        ("清理掉", ["m1"]),
        ("清", ["m1", "m8"]),
        ("证", ["m5"]),
        ("删除证据", ["m5"]),
        ("debug日志", []),
        ('"debug logs"', ["m1"]),
        ("把debug", ["m1"]),
        ("logs清", ["m1"]),
        ('"whitewash logs"~1', ["m2"]),
        ('"whitewash logs"', []),
        ("xlsx", ["m4"]),
        ("report.final.xlsx", ["m4"]),
        ("whitewash*", ["m2", "m6"]),
        ("*wash*", ["m2", "m6"]),
        ("wh?tewash", ["m2"]),
        ("whitewash~", ["m2", "m6"]),
        ("invoice~1", ["m9"]),
        ("in%voice", ["m9"]),
        ("invoice", []),
        ("logs w/2 whitewash", ["m2"]),
        ("logs w/1 whitewash", []),
        ("whitewash pre/2 logs", ["m2"]),
        ("logs pre/2 whitewash", []),
        ("(whitewash* OR scrub) w/2 (logs OR evidence)", ["m2", "m3", "m6"]),
        ("whitewash* not w/1 logs", ["m2"]),  # m6: whitewashing sits right after LOGS
        ("whitewash* not w/1 evidence", ["m2", "m6"]),
        ("whitewashed not w/1 logs", []),
        ("logs not w/5 whitewash*", ["m1"]),
        ("清 w/1 logs", ["m1"]),
        ('"debug logs" w/1 清理', ["m1"]),
        ("logs OR evidence", ["m1", "m2", "m3", "m6"]),
        ("logs AND NOT whitewash", ["m1", "m6"]),
        ("NOT logs", ["m3", "m4", "m5", "m7", "m8", "m9"]),
        ("-logs -evidence", ["m4", "m5", "m7", "m8", "m9"]),
        ("logs OR NOT evidence", ["m1", "m2", "m4", "m5", "m6", "m7", "m8", "m9"]),
        ("", [d.id for d in DOCS]),
        ("sender:u_2", ["m3"]),
        ('sender:"han meimei"', ["m3"]),
        ("sender:han", []),
        ("conversation:oc_2", ["m5"]),
        ("conversation:secret", ["m5"]),
        ('conversation:"OPS TEAM" logs', ["m1", "m2", "m6"]),
        ("format:SLACK", ["m8"]),
        ('custodian:"bob smith"', ["m7"]),
        ("kind:file", ["m4"]),
        ("type:dm", ["m8"]),
        ("has:attachment", ["m4"]),
        ("is:edited", ["m6"]),
        ("is:deleted", ["m7"]),
        ("-is:deleted -is:edited -has:attachment", ["m1", "m2", "m3", "m5", "m8", "m9"]),
        ("date:2023-06-01", ["m1", "m2"]),
        ("date:2023-06", ["m1", "m2", "m3", "m4", "m7", "m9"]),
        ("date:2023-06-01..2023-06-02", ["m1", "m2", "m3"]),
        ("date:>2023-06-01", ["m3", "m4", "m5", "m7", "m9"]),
        ("date:<2023-06-01", ["m6", "m8"]),
        ("date:<=2023-06-01T09:00:00", ["m1", "m6", "m8"]),
        ("date:<2023-06-01T09:00:00", ["m6", "m8"]),
        ("date:>=2023-06-01T09:00:00.000001", ["m2", "m3", "m4", "m5", "m7", "m9"]),
        ("date:2023-06-01T09:00:00..2023-06-02T00:00:00", ["m1", "m2", "m3"]),
        ("date:2023-06-01T09:00:01..2023-06-01T23:59:59", []),
        ("logs -date:2023-06", ["m6"]),
        ("date:2023-06-01 OR is:deleted", ["m1", "m2", "m7"]),
    ],
)
def test_queries(engine, query, expected):
    assert ids(engine, query) == expected


def test_resolved_id_sets(engine):
    assert sorted(engine.all_ids(Field("sender_ids", frozenset({"u_2", "nobody"})))) == ["m3"]
    assert sorted(engine.all_ids(Field("conversation_ids", frozenset({"oc_2"})))) == ["m5"]
    assert engine.all_ids(Field("conversation_ids", frozenset())) == []
    with pytest.raises(ValueError):
        engine.all_ids(parse("participant:bob"))


def test_sorts_and_paging(engine):
    node = parse("logs OR evidence")
    by_time = engine.search(node, sort="time_asc")
    assert by_time.ids == ["m6", "m1", "m2", "m3"]
    assert by_time.total == 4
    assert engine.search(node, sort="time_desc").ids == ["m3", "m2", "m1", "m6"]
    rel = engine.search(node, sort="relevance")
    assert sorted(rel.ids) == ["m1", "m2", "m3", "m6"]
    assert rel.scores == sorted(rel.scores, reverse=True)
    assert all(score > 0 for score in rel.scores)
    page = engine.search(node, sort="time_asc", offset=1, limit=2)
    assert page.ids == ["m1", "m2"] and page.total == 4 and len(page.scores) == 2
    assert engine.search(node, sort="time_asc", offset=10, limit=2) == type(page)(4, [], [])
    assert engine.search(node, limit=0).total == 4
    with pytest.raises(ValueError):
        engine.search(node, sort="sideways")


def test_relevance_ties_break_by_id(tmp_path):
    eng = WhooshEngine(tmp_path)
    eng.add([doc(f"d{i}", "same text", us(2023, 1, 1) - i) for i in (3, 1, 2)])
    eng.commit()
    assert eng.search(parse("same")).ids == ["d1", "d2", "d3"]
    assert eng.search(parse("same"), sort="time_asc").ids == ["d3", "d2", "d1"]
    eng.close()


def test_readd_replaces_and_delete(tmp_path):
    eng = WhooshEngine(tmp_path, batch_size=2)
    eng.add([doc("a", "alpha", 1), doc("b", "beta", 2), doc("c", "gamma", 3)])
    eng.add([doc("a", "alpha two", 1)])  # same id within the same uncommitted writer
    eng.commit()
    assert eng.doc_count() == 3
    assert eng.all_ids(parse("two")) == ["a"]
    eng.add([doc("a", "alpha three", 1)])
    eng.commit()
    assert eng.doc_count() == 3
    assert eng.all_ids(parse("two")) == []
    assert eng.all_ids(parse("three")) == ["a"]
    eng.add([doc("d", "delta", 4)])
    eng.delete(["b", "d"])
    eng.commit()
    assert sorted(eng.all_ids(parse(""))) == ["a", "c"]
    eng.close()
    reopened = WhooshEngine(tmp_path)
    assert sorted(reopened.all_ids(parse(""))) == ["a", "c"]
    assert reopened.all_ids(parse("alpha")) == ["a"]
    reopened.close()


def test_searchers_refresh_after_commit_and_per_thread(tmp_path):
    eng = WhooshEngine(tmp_path)
    eng.add([doc("a", "alpha", 1)])
    eng.commit()
    assert eng.search(parse("alpha")).total == 1
    eng.add([doc("b", "alpha", 2)])
    eng.commit()
    assert eng.search(parse("alpha")).total == 2
    seen = []

    def worker():
        seen.append(eng.search(parse("alpha")).total)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [2, 2, 2]
    eng.close()


def test_wildcard_expansion_is_not_capped(tmp_path):
    eng = WhooshEngine(tmp_path)
    eng.add([doc(f"d{i}", f"term{i:04d}", i) for i in range(1500)])
    eng.commit()
    assert len(eng.all_ids(parse("term*"))) == 1500
    assert eng.search(parse("term*"), limit=5).total == 1500
    assert len(eng.all_ids(parse("term1* w/1 nothing"))) == 0
    eng.close()


def test_and_not_when_the_excluded_word_starts_earlier(tmp_path):
    """Whoosh 2.7.5's AndNotMatcher leaks the first positive doc if the negative starts earlier."""
    eng = WhooshEngine(tmp_path)
    eng.add([doc("d0", "b", 1), doc("d1", "a b", 2), doc("d2", "a", 3)])
    eng.commit()
    assert eng.all_ids(parse("a AND NOT b")) == ["d2"]
    assert eng.all_ids(parse("a -(NOT x)")) == []
    assert eng.search(parse("a -b")).ids == ["d2"]
    eng.close()


def test_duplicate_alternatives_in_proximity(tmp_path):
    eng = WhooshEngine(tmp_path)
    eng.add([doc("d0", "whitewash whitewash", 1)])
    eng.commit()
    assert eng.all_ids(parse("whitewash w/1 (whitewash OR w*)")) == ["d0"]
    eng.close()


def test_empty_index(tmp_path):
    eng = WhooshEngine(tmp_path)
    assert eng.doc_count() == 0
    assert eng.search(parse("anything")).total == 0
    assert eng.all_ids(parse("")) == []
    eng.close()
