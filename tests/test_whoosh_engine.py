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


# ---------------------------------------------------------------------------- query fast paths


def _fast_path_corpus(n=1500, seed=19):
    """Words with varied frequencies (posting blocks of all-1.0, one-value and mixed weights),
    rare words far apart (id gaps over 255), and CJK text (the unigram field)."""
    import random

    rng = random.Random(seed)
    words = ["audit", "team", "logs", "evidence", "delete", "the", "x", "backup"]
    docs = []
    for i in range(n):
        text = [rng.choice(words) for _ in range(rng.randint(1, 30))]
        if i % 400 == 7:
            text.append("rareword")
        if i % 3 == 0:
            text.append("steady steady")  # always twice: blocks whose weights are all 2.0
        if i % 11 == 0:
            text.append("清理掉证据")
        for word, every in (("alpha", 5), ("omega", 7), ("delta", 13)):  # sparse: few common documents
            if i % every == 0 or rng.random() < 0.05:
                text.insert(rng.randrange(len(text) + 1), word)
        # ids out of document order: ties on the LIMIT-th score must be broken by id, not by position
        docs.append(doc(f"f{(i * 7919) % n:05d}", " ".join(text), us(2023, 1, 1) + i))
    return docs


@pytest.fixture(scope="module")
def fast_engine(tmp_path_factory):
    eng = WhooshEngine(tmp_path_factory.mktemp("fast"), procs=1, bulk_threshold=10**9)
    docs = _fast_path_corpus()
    for start in range(0, len(docs), 500):  # three segments
        eng.add(docs[start : start + 500])
        eng.commit()
    yield eng
    eng.close()


def test_block_postings_read_what_the_matcher_reads(fast_engine):
    from whoosh.codec import whoosh3

    from discovery.engine.whoosh_engine import _block_postings

    fast = kinds = 0
    seen = set()
    for sub, _ in fast_engine._searcher().leaf_searchers():
        reader = sub.reader()
        for field in ("text", "cjk1", "kw"):
            for term in reader.lexicon(field):
                ours, theirs = reader.postings(field, term), reader.postings(field, term)
                if type(ours) is not whoosh3.W3LeafMatcher:
                    continue
                while ours.is_active():
                    got_ids, got_weights = _block_postings(ours)
                    fast += ours._ids is None  # decoded without the matcher
                    theirs._read_ids()
                    theirs._read_weights()
                    each = [got_weights] * len(got_ids) if type(got_weights) is float else list(got_weights)
                    assert list(got_ids) == list(theirs._ids), (field, term)
                    assert each == list(theirs._weights), (field, term)
                    seen.add(type(got_weights).__name__)
                    kinds += 1
                    ours._next_block()
                    theirs._next_block()
    assert fast and kinds > fast  # both the head-only decoding and the matcher's own reading ran
    assert {"float", "tuple"} <= seen


def test_leaf_skip_to_lands_where_stepping_does(fast_engine):
    import random

    rng = random.Random(3)
    for sub, _ in fast_engine._searcher().leaf_searchers():
        reader = sub.reader()
        for term in ("audit", "steady", "rareword", "x"):
            skipping, stepping = reader.postings("text", term), reader.postings("text", term)
            targets = sorted(rng.sample(range(reader.doc_count_all() + 5), 60))
            for target in targets:
                if not skipping.is_active():
                    break
                skipping.skip_to(target)
                while stepping.is_active() and stepping.id() < target:
                    stepping.next()
                assert skipping.is_active() == stepping.is_active(), (term, target)
                if stepping.is_active():
                    assert skipping.id() == stepping.id(), (term, target)
                    assert skipping.weight() == stepping.weight(), (term, target)
                    assert skipping.value() == stepping.value(), (term, target)


@pytest.mark.parametrize("limit", [1, 3, 20, 137, 2000])
def test_term_top_k_equals_a_full_sort(fast_engine, limit):
    from whoosh import sorting

    from discovery.engine.whoosh_engine import _Translator

    searcher = fast_engine._searcher()
    for text in ("audit", "steady", "rareword", "x", "清理", "evidence", "backup"):
        q = _Translator(searcher.reader()).query(parse(text))
        results = searcher.search(q, limit=limit, sortedby=sorting.MultiFacet(
            [sorting.ScoreFacet(), sorting.FieldFacet("id")]))
        expected = [key[1].decode() for key, _ in results.top_n]
        scores = [0.0 - key[0] for key, _ in results.top_n]
        got = fast_engine.search(parse(text), limit=limit)
        assert (got.total, got.ids, got.scores) == (len(results), expected, scores), (text, limit)


NEAR_QUERIES = [
    "audit w/3 team", "audit pre/2 logs", "team w/1 team", '"audit team"', '"the x"~1', '"audit team logs"',
    "(audit OR logs) w/2 evidence", "(delete OR backup OR rareword) w/5 (team OR x)", '"audit team" w/4 steady',
    "audit not w/2 team", "(backup OR evidence) not w/3 delete", "(audit w/2 team) not w/1 x", "rareword w/30 x",
    "aud* w/2 te*", "(x OR the) not w/1 (x OR the)", "清理 w/3 证据", '"steady steady"',
    "alpha w/3 omega", "omega pre/5 alpha", '"alpha omega"', '"delta alpha"~2', "(alpha OR delta) w/4 omega",
    "alpha not w/2 omega", "(omega OR delta) not w/3 alpha", "(alpha w/6 omega) w/6 delta", "alpha w/4 x",
]  # fmt: skip


def _near_answers(engine):
    out = {}
    for text in NEAR_QUERIES:
        node = parse(text)
        out[text] = (sorted(engine.all_ids(node)), [(r.total, r.ids, r.scores) for r in (
            engine.search(node, limit=5), engine.search(node, offset=7, limit=30), engine.search(node, limit=3000))])
    return out


def test_listed_intersections_and_lazy_unions_answer_like_the_plain_matchers(fast_engine, monkeypatch, tmp_path):
    from whoosh.matching import binary
    from whoosh.query import spans

    from discovery.engine import whoosh_engine

    fast = _near_answers(fast_engine)
    with monkeypatch.context() as plain:  # Whoosh's leapfrogging intersection, spans of every union document
        plain.setattr(whoosh_engine, "_intersection", binary.IntersectionMatcher)
        plain.setattr(whoosh_engine, "_listed_ids", lambda matcher: None)  # "not w/N" skips B to each A
        plain.setattr(whoosh_engine._SpanOrMatcher, "_get_spans", whoosh_engine._SpanOrMatcher._work_spans)
        plain.setattr(whoosh_engine._SpanOrMatcher, "spans", spans.SpanWrappingMatcher.spans)
        plain.setattr(whoosh_engine._SpanOrMatcher, "all_ids", spans.SpanWrappingMatcher.all_ids)
        assert _near_answers(fast_engine) == fast
    assert any(total > 100 for _, results in fast.values() for total, _, _ in results)
    for text in NEAR_QUERIES:  # and the oracle agrees on the sets
        node = parse(text)
        assert fast[text][0] == sorted(d.id for d in _fast_path_corpus() if matches(node, d)), text
