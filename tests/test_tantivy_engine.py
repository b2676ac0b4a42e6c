"""The Tantivy engine: same answers as the oracle and as the Whoosh engine, through every path.

Besides the shared query table, the paths Tantivy takes only sometimes are forced here: candidate
verification (too many position shapes, ``not w/N``), the fallback when a regex phrase matches too
many terms, over-long tokens Tantivy cannot index, tie-breaking by id, and engine switching.
"""

import contextlib
import json
import random
import tempfile
import threading
from dataclasses import replace
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("tantivy")  # an optional extra (`make test` installs it)

from discovery import engines  # noqa: E402
from discovery.analysis import cjk_unigrams, tokenize  # noqa: E402
from discovery.case import Case  # noqa: E402
from discovery.cli import cli  # noqa: E402
from discovery.engine import tantivy_engine as te  # noqa: E402
from discovery.engine.tantivy_engine import TantivyEngine, analyzed  # noqa: E402
from discovery.engine.whoosh_engine import WhooshEngine  # noqa: E402
from discovery.model import stable_id  # noqa: E402
from discovery.query import And, Field, Not, QueryError, matches, parse  # noqa: E402
from discovery.search import search  # noqa: E402
from tests.test_golden_queries import FIXTURES, GOLDEN  # noqa: E402
from tests.test_oracle import cases, texts  # noqa: E402
from tests.test_whoosh_engine import DOCS, doc, us  # noqa: E402

QUERIES = [
    # the Whoosh engine's table
    "logs", "LOGS", "清理", "清理掉", "清", "证", "删除证据", "debug日志", '"debug logs"', "把debug", "logs清",
    '"whitewash logs"~1', '"whitewash logs"', "xlsx", "report.final.xlsx", "whitewash*", "*wash*", "wh?tewash",
    "whitewash~", "invoice~1", "in%voice", "invoice", "logs w/2 whitewash", "logs w/1 whitewash",
    "whitewash pre/2 logs", "logs pre/2 whitewash", "(whitewash* OR scrub) w/2 (logs OR evidence)",
    "whitewash* not w/1 logs", "whitewash* not w/1 evidence", "whitewashed not w/1 logs",
    "logs not w/5 whitewash*", "清 w/1 logs", '"debug logs" w/1 清理', "logs OR evidence",
    "logs AND NOT whitewash", "NOT logs", "-logs -evidence", "logs OR NOT evidence", "", "sender:u_2",
    'sender:"han meimei"', "sender:han", "conversation:oc_2", "conversation:secret",
    'conversation:"OPS TEAM" logs', "format:SLACK", 'custodian:"bob smith"', "kind:file", "type:dm",
    "has:attachment", "is:edited", "is:deleted", "-is:deleted -is:edited -has:attachment", "date:2023-06-01",
    "date:2023-06", "date:2023-06-01..2023-06-02", "date:>2023-06-01", "date:<2023-06-01",
    "date:<=2023-06-01T09:00:00", "date:<2023-06-01T09:00:00", "date:>=2023-06-01T09:00:00.000001",
    "date:2023-06-01T09:00:00..2023-06-02T00:00:00", "date:2023-06-01T09:00:01..2023-06-01T23:59:59",
    "logs -date:2023-06", "date:2023-06-01 OR is:deleted",
    # more shapes: slop, nesting, groups, CJK inside proximity, fuzzy and stem inside proximity
    '"please logs"~3', '"please the logs"~2', '"whitewash the"~0', "(logs w/3 whitewash) w/2 audit",
    "(logs w/3 whitewash) pre/5 audit", "audit w/10 (logs not w/1 whitewash)", "please w/1 (whitewash OR the)",
    "whitewash~ w/2 logs", "invoice~1 w/1 wrong", "in%voice w/2 the", "white%%wash w/3 logs", "清 pre/1 单独",
    "证 w/2 immediately", "删除证据 w/1 immediately", '"the logs before" w/3 please',
    "logs not w/2 (before OR wash*)", "(logs not w/1 whitewash) OR scrub", "is:edited (logs not w/1 whitewashing)",
    "evidence AND NOT (scrub w/1 the)", "NOT (logs w/20 whitewashing)", "l?g*", "whitewas~2",
    "whitewashing~3", "logs~0", "a?", "?a*",
]  # fmt: skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tantivy_engine = TantivyEngine(tmp_path_factory.mktemp("tantivy"))
    whoosh_engine = WhooshEngine(tmp_path_factory.mktemp("whoosh"))
    for engine in (tantivy_engine, whoosh_engine):
        assert engine.add(DOCS) == len(DOCS)
        engine.commit()
    yield tantivy_engine, whoosh_engine
    tantivy_engine.close()
    whoosh_engine.close()


@pytest.mark.parametrize("query", QUERIES)
def test_same_as_oracle_and_whoosh(pair, query):
    tantivy_engine, whoosh_engine = pair
    node = parse(query)
    expected = sorted(d.id for d in DOCS if matches(node, d))
    assert sorted(tantivy_engine.all_ids(node)) == expected
    assert sorted(whoosh_engine.all_ids(node)) == expected
    for sort in ("relevance", "time_asc", "time_desc"):
        page = tantivy_engine.search(node, sort=sort, limit=100)
        assert page.total == len(expected) and sorted(page.ids) == expected
    # time order (ties by id) is the same on both engines, page by page
    for offset in range(0, len(expected) + 1, 2):
        assert (
            tantivy_engine.search(node, sort="time_desc", offset=offset, limit=2).ids
            == whoosh_engine.search(node, sort="time_desc", offset=offset, limit=2).ids
        )


def test_some_expected_answers(pair):
    tantivy_engine, _ = pair
    assert sorted(tantivy_engine.all_ids(parse("whitewash* not w/1 logs"))) == ["m2"]
    assert sorted(tantivy_engine.all_ids(parse('"debug logs" w/1 清理'))) == ["m1"]
    assert sorted(tantivy_engine.all_ids(parse("in%voice"))) == ["m9"]


def test_resolved_id_sets(pair):
    engine, _ = pair
    assert sorted(engine.all_ids(Field("sender_ids", frozenset({"u_2", "nobody"})))) == ["m3"]
    assert sorted(engine.all_ids(Field("conversation_ids", frozenset({"oc_2"})))) == ["m5"]
    assert engine.all_ids(Field("conversation_ids", frozenset())) == []
    assert sorted(engine.all_ids(Field("ids", frozenset({"m1", "m3", "nope"})))) == ["m1", "m3"]
    assert engine.all_ids(Field("ids", frozenset())) == []
    assert len(engine.all_ids(Not(Field("ids", frozenset({"m1"}))))) == len(DOCS) - 1
    assert sorted(engine.all_ids(And((parse("logs"), Field("ids", frozenset({"m1", "m3"})))))) == ["m1"]
    with pytest.raises(ValueError):
        engine.all_ids(parse("participant:bob"))
    with pytest.raises(ValueError):
        engine.all_ids(Field("tag", "hot"))  # review fields are resolved to ids by the search layer


# ---------------------------------------------------------------------------- analysis


@settings(max_examples=200, deadline=None)
@given(st.one_of(texts(), st.text(), st.text(alphabet=st.characters(max_codepoint=127))))
def test_tokens_handed_to_tantivy_are_ours(text):
    joined, unigrams = analyzed(text)
    tokens = [t.text for t in tokenize(text)]
    assert (joined.split(" ") if joined else []) == tokens
    assert all(not any(c.isspace() for c in token) for token in tokens)
    assert set(unigrams.split(" ") if unigrams else []) == {t.text for t in cjk_unigrams(text)}


# ---------------------------------------------------------------------------- forced paths


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases(), max_shapes=st.sampled_from([0, 1, 3]))
def test_verification_path_agrees_with_oracle(case, max_shapes):
    """With (almost) no position shapes allowed, every phrase and proximity is verified."""
    corpus, qs, split, stale = case
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(te, "MAX_SHAPES", max_shapes):
        engine = TantivyEngine(tmp)
        try:
            engine.add([replace(stale, text="stale copy whitewash 清理 logs")])
            engine.add(corpus[:split])
            engine.commit()
            engine.add(corpus[split:])
            engine.commit()
            for text in qs:
                try:
                    node = parse(text)
                except QueryError:
                    continue
                expected = sorted(d.id for d in corpus if matches(node, d))
                assert sorted(engine.all_ids(node)) == expected, f"query {text!r} -> {node!r}"
                assert engine.search(node, sort="time_asc", limit=2).total == len(expected)
        finally:
            engine.close()


SMALL = ["a", "b", "ab", "ba", "c", "清", "清理", "理"]


@st.composite
def dense_cases(draw):
    """Few words, many repeats: every gap, order and overlap of proximity operands turns up."""
    corpus = [
        " ".join(draw(st.lists(st.sampled_from(SMALL), min_size=0, max_size=14)))
        for _ in range(draw(st.integers(1, 8)))
    ]
    operand = st.sampled_from(["a", "b", "ab", "a*", "*b", "b?", "(a OR c)", '"a b"', '"a b"~1', "清", "ab~1", "c"])
    op = st.sampled_from(["w", "pre", "not w"])
    n = st.integers(1, 6)
    query = st.one_of(
        st.builds(lambda x, o, k, y: f"{x} {o}/{k} {y}", operand, op, n, operand),
        st.builds(
            lambda x, o, k, y, o2, k2, z: f"({x} {o}/{k} {y}) {o2}/{k2} {z}", operand, op, n, operand, op, n, operand
        ),
        st.builds(
            lambda w, k: f'"{w}"~{k}', st.sampled_from(["a b", "a b c", "b a a", "a a", "清 理"]), st.integers(0, 4)
        ),
        st.builds(
            lambda x, y: f"({x}) AND NOT ({y})",
            operand,
            st.builds(lambda x, k, y: f"{x} not w/{k} {y}", operand, n, operand),
        ),
    )
    return corpus, draw(st.lists(query, min_size=1, max_size=5))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_cases())
def test_dense_proximity_agrees_with_oracle(case):
    texts_, queries = case
    corpus = [doc(f"d{i}", text, i) for i, text in enumerate(texts_)]
    with tempfile.TemporaryDirectory() as tmp:
        engine = TantivyEngine(tmp)
        try:
            engine.add(corpus)
            engine.commit()
            for text in queries:
                node = parse(text)
                expected = sorted(d.id for d in corpus if matches(node, d))
                assert sorted(engine.all_ids(node)) == expected, f"{text!r} -> {node!r}"
        finally:
            engine.close()


def test_regex_phrase_over_too_many_terms_falls_back_to_verification(tmp_path):
    """Tantivy refuses a regex phrase whose regex matches too many terms (some 16,000 per segment)."""
    engine = TantivyEngine(tmp_path, threads=1)  # one segment, so its regex surely expands too far
    engine.add([doc(f"d{i}", f"term{i:05d}" + (" x" if i % 1000 == 0 else ""), i) for i in range(40_000)])
    engine.add([doc("far", "term00001 a b x", 40_000), doc("rev", "x term00002", 40_001)])
    engine.commit()
    plans = []
    real_init = te._Plan.__init__

    def spy(self, engine, searcher, regex_phrases=True):
        plans.append(regex_phrases)
        real_init(self, engine, searcher, regex_phrases)

    with mock.patch.object(te._Plan, "__init__", spy):
        node = parse("term* pre/1 x")
        assert engine.search(node, limit=3).total == 40
        assert False in plans  # the refused regex phrase was replaced by verified candidates
        assert len(engine.all_ids(node)) == 40
        assert sorted(engine.all_ids(parse("x pre/1 term*"))) == ["rev"]
        assert sorted(engine.all_ids(parse("x w/1 term*"))) == sorted(
            ["rev"] + [f"d{i}" for i in range(0, 40_000, 1000)]
        )
    engine.close()


def test_over_long_tokens_are_still_found(tmp_path):
    long_word = "a" * 70_000
    docs = [
        doc("long", f"before {long_word} after", 1),
        doc("short", "before aaa after", 2),
        doc("other", f"{long_word[:-1]}b", 3),
    ]
    engine = TantivyEngine(tmp_path)
    engine.add(docs)
    engine.commit()
    for query in (
        long_word,
        "a*",
        "*b",
        "before w/1 after",
        "before w/2 after",
        f'"before {long_word}"',
        "before",
        f"{long_word} w/1 after",
        "aaa",
        "aaa~1",
        "?a*",
        "before not w/1 a*",
        "-after",
    ):
        node = parse(query)
        expected = sorted(d.id for d in docs if matches(node, d))
        assert sorted(engine.all_ids(node)) == expected, query[:40]
        assert engine.search(node).total == len(expected)
    engine.close()


# ---------------------------------------------------------------------------- sorting and paging


def test_sorts_and_paging(pair):
    engine, _ = pair
    node = parse("logs OR evidence")
    by_time = engine.search(node, sort="time_asc")
    assert by_time.ids == ["m6", "m1", "m2", "m3"]
    assert by_time.total == 4
    assert all(score > 0 for score in by_time.scores)
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


def test_ties_break_by_id(tmp_path):
    engine = TantivyEngine(tmp_path)
    engine.add([doc(f"d{i}", "same text", us(2023, 1, 1) - i) for i in (3, 1, 2)])
    engine.add([doc(f"t{i}", "same time", us(2023, 1, 1)) for i in (5, 4, 6)])
    engine.commit()
    assert engine.search(parse("same text")).ids == ["d1", "d2", "d3"]
    assert [engine.search(parse("text"), limit=1, offset=i).ids[0] for i in range(3)] == ["d1", "d2", "d3"]
    assert engine.search(parse("same"), sort="time_asc").ids == ["d3", "d2", "d1", "t4", "t5", "t6"]
    assert engine.search(parse("same"), sort="time_desc").ids == ["t4", "t5", "t6", "d1", "d2", "d3"]
    assert [engine.search(parse("time"), sort="time_desc", limit=1, offset=i).ids[0] for i in range(3)] == [
        "t4", "t5", "t6"]  # fmt: skip
    engine.close()


@pytest.mark.parametrize("sort", ["relevance", "time_asc", "time_desc"])
def test_huge_tied_groups_page_consistently(tmp_path, sort):
    """A tied group larger than TIE_GROUP_MAX keeps index order; pages never overlap or skip."""
    engine = TantivyEngine(tmp_path)
    engine.add([doc(f"d{i:02d}", "tie", 7) for i in range(30)] + [doc("z", "tie tie", 8)])
    engine.commit()
    with mock.patch.object(te, "TIE_GROUP_MAX", 4):
        for query in ("", "tie"):
            node = parse(query)
            pages = [engine.search(node, sort=sort, offset=offset, limit=3).ids for offset in range(0, 33, 3)]
            seen = [i for page in pages for i in page]
            assert sorted(seen) == sorted([f"d{i:02d}" for i in range(30)] + ["z"])
            assert seen == engine.search(node, sort=sort, limit=31).ids
    engine.close()


# ---------------------------------------------------------------------------- writing


def test_readd_replaces_and_delete(tmp_path):
    engine = TantivyEngine(tmp_path)
    engine.add([doc("a", "alpha", 1), doc("b", "beta", 2), doc("c", "gamma", 3)])
    engine.add([doc("a", "alpha two", 1)])  # same id within the same uncommitted writer
    engine.commit()
    assert engine.doc_count() == 3
    assert engine.all_ids(parse("two")) == ["a"]
    engine.add([doc("a", "alpha three", 1)])
    engine.commit()
    assert engine.doc_count() == 3
    assert engine.all_ids(parse("two")) == []
    assert engine.all_ids(parse("three")) == ["a"]
    engine.add([doc("d", "delta", 4)])
    engine.delete(["b", "d"])
    engine.commit()
    assert sorted(engine.all_ids(parse(""))) == ["a", "c"]
    engine.add_new([doc("e", "epsilon", 5)])
    engine.close()
    reopened = TantivyEngine(tmp_path)
    assert sorted(reopened.all_ids(parse(""))) == ["a", "c", "e"]
    assert reopened.all_ids(parse("alpha")) == ["a"]
    reopened.close()


def test_add_after_add_new_and_bounded_memory(tmp_path):
    engine = TantivyEngine(tmp_path)
    engine.add_new([doc("a", "alpha", 1), doc("b", "beta", 2)])
    engine.add([doc("a", "alpha again", 1)])  # add_new keeps no ids: the add commits and looks up
    engine.commit()
    assert sorted(engine.all_ids(parse(""))) == ["a", "b"]
    assert engine.all_ids(parse("again")) == ["a"]
    with mock.patch.object(te, "MAX_REMEMBERED", 3):  # commits every 3 ids, then looks them up
        engine.add([doc(f"d{i % 5}", f"round{i // 5}", i) for i in range(12)])
        engine.commit()
    assert sorted(engine.all_ids(parse(""))) == ["a", "b", "d0", "d1", "d2", "d3", "d4"]
    assert sorted(engine.all_ids(parse("round2"))) == ["d0", "d1"]  # the last copy of each id wins
    assert sorted(engine.all_ids(parse("round1"))) == ["d2", "d3", "d4"]
    assert sorted(engine.all_ids(parse("round0"))) == []
    engine.close()


def test_searches_see_commits_from_any_thread(tmp_path):
    engine = TantivyEngine(tmp_path)
    engine.add([doc("a", "alpha", 1)])
    engine.commit()
    assert engine.search(parse("alpha")).total == 1
    engine.add([doc("b", "alpha", 2)])
    engine.commit()
    seen = []

    def worker():
        seen.append(engine.search(parse("alpha")).total)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [2, 2, 2]
    engine.close()


def test_wildcard_expansion_is_not_capped(tmp_path):
    engine = TantivyEngine(tmp_path)
    engine.add([doc(f"d{i}", f"term{i:04d}", i) for i in range(1500)])
    engine.commit()
    assert len(engine.all_ids(parse("term*"))) == 1500
    assert engine.search(parse("term*"), limit=5).total == 1500
    assert len(engine.all_ids(parse("term1* w/1 nothing"))) == 0
    assert len(engine.all_ids(parse("term~1"))) == 0
    assert len(engine.all_ids(parse("term000%%"))) == 10  # term0000..term0009: prefix kept, one insertion
    engine.close()


def test_empty_index_and_layout_check(tmp_path):
    engine = TantivyEngine(tmp_path)
    assert engine.doc_count() == 0
    assert engine.search(parse("anything")).total == 0
    assert engine.search(parse("a w/2 b"), sort="time_asc").ids == []
    assert engine.all_ids(parse("")) == []
    engine.close()
    (tmp_path / te.LAYOUT_FILE).write_text(json.dumps({"layout": -1}))
    with pytest.raises(ValueError, match="reindex"):
        TantivyEngine(tmp_path)


# ---------------------------------------------------------------------------- cases, CLI, bench


@pytest.fixture(scope="module")
def lark_case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lark-tantivy")
    result = CliRunner().invoke(cli, ["ingest", str(FIXTURES), "--case", str(folder), "--engine", "tantivy"])
    assert result.exit_code in (0, 3), result.output
    case = Case(folder)
    yield case
    case.close()


@pytest.mark.parametrize(("query", "expected"), GOLDEN, ids=[q for q, _ in GOLDEN])
def test_golden_queries_on_tantivy(lark_case, query, expected):
    assert lark_case.get_meta("engine") == "tantivy"
    result = search(lark_case, query, context=0, limit=1000)
    assert {hit.message["native_id"][:11] for hit in result.hits} == expected
    assert result.total == len(expected)


def test_switching_engines(tmp_path):
    folder = tmp_path / "case"
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(FIXTURES), "--case", str(folder)]).exit_code in (0, 3)
    case = Case(folder)
    assert case.get_meta("engine") == "whoosh"
    before = {q: sorted(case.engine().all_ids(parse(q))) for q, _ in GOLDEN if "participant" not in q}
    with pytest.raises(engines.EngineError, match="reindex --engine tantivy"):
        engines.use_engine(case, "tantivy")  # a case with messages keeps its engine
    case.close()
    again = runner.invoke(cli, ["ingest", str(FIXTURES), "--case", str(folder), "--engine", "tantivy"])
    assert again.exit_code == 2 and "reindex --engine tantivy" in again.output
    result = runner.invoke(cli, ["reindex", "--case", str(folder), "--engine", "tantivy"])
    assert result.exit_code == 0 and "with tantivy" in result.output, result.output
    case = Case(folder)
    assert case.get_meta("engine") == "tantivy"
    assert type(case.engine()).__name__ == "TantivyEngine"
    assert {q: sorted(case.engine().all_ids(parse(q))) for q in before} == before
    case.close()
    assert runner.invoke(cli, ["reindex", "--case", str(folder), "--engine", "whoosh"]).exit_code == 0
    case = Case(folder)
    assert type(case.engine()).__name__ == "WhooshEngine"
    assert {q: sorted(case.engine().all_ids(parse(q))) for q in before} == before
    case.close()


def test_missing_library_is_explained(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_tantivy(name, *args, **kwargs):
        if name == "tantivy":
            raise ImportError("no tantivy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tantivy)
    with pytest.raises(engines.EngineError, match=r"discovery\[tantivy\]"):
        engines.check_engine("tantivy")
    result = CliRunner().invoke(cli, ["ingest", str(FIXTURES), "--case", str(tmp_path / "c"), "--engine", "tantivy"])
    assert result.exit_code == 2 and "discovery[tantivy]" in result.output
    with pytest.raises(engines.EngineError, match="unknown engine"):
        engines.check_engine("lucene")


def test_bench_side_by_side_json(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "--engine",
            "whoosh,tantivy",
            "--messages",
            "300",
            "--repeats",
            "1",
            "--workdir",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{") :])
    assert set(data["engines"]) == {"whoosh", "tantivy"}
    assert data["floor_msgs_per_s"] > 0
    for figures in data["engines"].values():
        assert figures["ingested"] == 300
        for key in ("ingest_msgs_per_s", "index_mb", "peak_rss_mb"):
            assert isinstance(figures[key], (int, float))
        assert set(figures["p95_ms"]) == {"term", "phrase", "prefix", "date", "proximity", "wildcard", "not_near",
                                              "search_page"}
    assert data["agree"]["same_hits"], data["agree"]
    assert "| ingest msgs/s (end to end) |" in result.stderr


# ---------------------------------------------------------------------------- fast paths vs plain paths


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(["a", "b", "c", "ab"]), max_size=16),
    left=st.sampled_from(["a", "b", "(a OR c)", "(a OR b)", "(a OR (b OR ab))"]),
    right=st.sampled_from(["a", "b", "c", "(b OR c)", "(a OR b)"]),
    ordered=st.booleans(),
    distance=st.integers(1, 5),
)
def test_not_near_check_on_positions_agrees_with_occurrences(tokens, left, right, ordered, distance):
    near = parse(f"{left} not w/{distance} {right}")
    node = te.Near(near.left, near.right, distance, ordered, True)  # (the parser has no "not pre/N")
    assert te._words(node.left) is not None and te._words(node.right) is not None  # the fast path is taken
    assert te._occurs_test(node)(tokens) == bool(te.occurrences(node, tokens))


@contextlib.contextmanager
def _random_plan(tmp_path, seed: int, words: list[str], longest: int, count: int):
    """(corpus, searcher, plan) over COUNT random documents of WORDS (0 to LONGEST each), indexed in tmp_path."""
    rng = random.Random(seed)
    texts_ = [" ".join(rng.choice(words) for _ in range(rng.randint(0, longest))) for _ in range(count)]
    corpus = [doc(f"d{i}", text, i) for i, text in enumerate(texts_)]
    engine = TantivyEngine(tmp_path)
    try:
        engine.add(corpus)
        engine.commit()
        searcher = engine._searcher()
        yield corpus, searcher, te._Plan(engine, searcher)
    finally:
        engine.close()


def test_repeated_finds_two_occurrences(tmp_path):
    """``repeated`` (phrase queries over every pair of the words, huge slop; what ``near_repeated``
    replaces word by word) finds the documents where the operand occurs twice or more."""
    with _random_plan(tmp_path, 5, ["a", "b", "c", "d"], 9, 300) as (corpus, searcher, plan):
        for text in ["(a OR b)", "(a OR c)", "(b OR d)", "a"]:
            node = parse(text)
            words = te._words(node)
            expected = sorted(d.id for d in corpus if sum(t in words for t in d.text.split()) >= 2)
            found = sorted(te._stored_id(searcher, a) for a in te._addresses(searcher, plan.repeated(node)))
            assert found == expected


def test_small_id_sets_score_like_term_set(pair):
    """Verified ids (and resolved id sets), and the words of a place, as constant-scored term
    queries: the same hits, totals and scores as with a ``term_set_query``."""
    engine, _ = pair
    nodes = [parse(q) for q in ("whitewash* not w/1 logs", "logs not w/2 (before OR wash*)", "logs OR NOT evidence",
                                "(logs OR evidence OR whitewash) not w/1 the", "(logs OR whitewash*) not w/3 please",
                                "(logs not w/1 whitewash) OR scrub", "is:edited (logs not w/1 whitewashing)")]
    nodes += [And((parse("logs"), Field("ids", frozenset({"m1", "m3", "m5"})))),
              Field("ids", frozenset(d.id for d in DOCS)), Field("ids", frozenset({"m2"}))]
    for node in nodes:
        for sort in ("relevance", "time_asc"):
            fast = engine.search(node, sort=sort, limit=100)
            with mock.patch.object(te, "ID_TERMS_MAX", 0), mock.patch.object(te, "WORD_TERMS_MAX", 1):
                plain = engine.search(node, sort=sort, limit=100)
            assert (fast.total, fast.ids, fast.scores) == (plain.total, plain.ids, plain.scores), node


def test_near_filter_finds_what_the_shapes_find(tmp_path):
    """``near_filter`` (same-offset phrase queries with slop N) holds exactly the documents of the
    exact shapes (``pos_superset``) and of the oracle, at every distance, repeats included."""
    with _random_plan(tmp_path, 11, ["a", "b", "c", "d", "e", "f"], 14, 400) as (corpus, searcher, plan):
        fast = [("a", "b"), ("(a OR c)", "b"), ("a", "(b OR d)"), ("(a OR c)", "(b OR d)")]
        plain = [("a", "a"), ("(a OR b)", "(b OR c)"), ("(a OR b OR c)", "(d OR e OR f)")]  # shared word; 9 pairs
        for left, right in fast + plain:
            for distance in range(1, 7):
                node = parse(f"{left} w/{distance} {right}")
                if (left, right) in fast:  # the same-offset form, not the shapes
                    with mock.patch.object(plan, "pos_superset", side_effect=AssertionError):
                        filtered = plan.near_filter(node)
                else:
                    filtered = plan.near_filter(node)
                expected = sorted(d.id for d in corpus if matches(node, d))
                found = sorted(te._stored_id(searcher, a) for a in te._addresses(searcher, filtered))
                assert found == expected, (left, right, distance)


def test_near_repeated_word_by_word_agrees(tmp_path):
    """``near_repeated`` (word by word for an OR of words) holds exactly the documents where the
    proximity occurs and its left operand occurs twice or more."""
    with _random_plan(tmp_path, 17, ["a", "b", "c", "d", "e"], 14, 400) as (corpus, searcher, plan):
        pairs = [("(a OR b)", "c"), ("(a OR c)", "(b OR d)"), ("a", "b"), ("(a OR b)", "b"), ("b", "(a OR b)")]
        for left, right in pairs:
            for distance in range(1, 6):
                node = parse(f"{left} w/{distance} {right}")
                words = te._words(node.left)
                expected = sorted(d.id for d in corpus
                                  if matches(node, d) and sum(t in words for t in d.text.split()) >= 2)
                found = sorted(te._stored_id(searcher, a) for a in te._addresses(searcher, plan.near_repeated(node)))
                assert found == expected, (left, right, distance)


# ---------------------------------------------------------------------------- ids read from columns


def test_message_ids_round_trip_through_the_id_columns():
    ids = [stable_id("lark", f"oc_{n}", f"om_{n}") for n in range(200)] + ["m" + "f" * 19, "m" + "0" * 19]
    for message_id in ids:
        high, low = te._id_numbers(message_id)
        assert high < te.NOT_AN_ID_NUMBER
        assert f"m{high:03x}{low:016x}" == message_id
    for other in ("m1", "M" + "a" * 19, "m" + "a" * 18, "m" + "a" * 20, "m" + "g" * 19, "x" + "a" * 19, ""):
        assert te._id_numbers(other) == (te.NOT_AN_ID_NUMBER, 0)


def test_all_ids_reads_message_ids_from_columns_and_others_from_stored_documents(tmp_path):
    canonical = [replace(d, id=stable_id("lark", d.conversation_id, d.id)) for d in DOCS]
    hand_made = [replace(d, id=f"hand-{d.id}") for d in DOCS]
    engine = TantivyEngine(tmp_path / "canonical")
    engine.add(canonical)
    engine.commit()
    # Every id of this index is a message id: none is read from a stored document.
    with mock.patch.object(te, "_stored_id", side_effect=AssertionError("read a stored document")):
        assert sorted(engine.all_ids(parse(""))) == sorted(d.id for d in canonical)
        assert sorted(engine.all_ids(parse("logs"))) == sorted(
            d.id for d in canonical if "logs" in [t.text for t in tokenize(d.text)])
    engine.close()
    mixed = TantivyEngine(tmp_path / "mixed")
    mixed.add(canonical[::2] + hand_made[1::2])
    mixed.commit()
    assert sorted(mixed.all_ids(parse(""))) == sorted(d.id for d in canonical[::2] + hand_made[1::2])
    mixed.close()


def test_cancel_discards_what_was_added_and_frees_the_writer(tmp_path):
    engine = TantivyEngine(tmp_path)
    engine.add(DOCS[:3])
    engine.commit()
    engine.add(DOCS[3:])
    engine.cancel()
    assert engine.doc_count() == 3
    other = TantivyEngine(tmp_path)  # the index lock is free: another writer can commit
    other.add(DOCS[3:])
    other.commit()
    engine._index.reload()
    assert engine.doc_count() == len(DOCS)
    engine.cancel()  # nothing pending: nothing to do
    other.close()
    engine.close()
