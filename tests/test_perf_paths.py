"""The fast paths give the same answers as the plain ones (behaviour only: no timings here).

Each speed-up for ingest and search has a slower, obviously right counterpart; these tests hold
them equal: the analyzer's text-only tokenizers, the Whoosh formats fed straight from them, the
Lark sniffer's key scan, the per-batch directory upserts, the multi-process bulk index against the
one-writer incremental one, the exact top-N collector against a full sort, the ts-column date
filter, the search layer's context windows, and ingest's savepoints against per-batch commits.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from whoosh import formats, sorting
from whoosh.multiproc import MpWriter

import discovery.ingest as ingest_module
from discovery.analysis import cjk_unigram_texts, cjk_unigrams, token_texts, tokenize
from discovery.case import Case
from discovery.engine import IndexDoc
from discovery.engine.whoosh_engine import (
    AnalysisTokenizer,
    WhooshEngine,
    _RollingSubWriter,
    _TextPositions,
    _Translator,
    _UnigramFrequency,
)
from discovery.ingest import ingest
from discovery.model import Mention, Message
from discovery.query import matches, parse
from discovery.search import search
from discovery.sources import lark
from tests.lark_factory import message, write_directory, write_jsonl

DAY = 86_400_000_000
T0 = 19_509 * DAY  # 2023-06-01T00:00:00Z

# ------------------------------------------------------------------------------------------ analysis

# Pieces of chat text where the analyzer's paths differ (NFKC, case folding, combining marks, invisible
# marks, emoji joiners, CJK runs, dots); tests/test_analysis_fast_paths.py draws from the same texts.
PIECES = [
    "whitewash", "Logs", "Delete", "ＷＨＩＴＥ", "ﬁle", "Straße", "café", "cafe\u0301", "e\u0301\u0302", "\u0301",
    "\u200b", "\u200d", "\u202e", "\ufe0f", "上线前把", "清", "ログ", "로그", "\u1100\u1161\u11a8", "😀",
    "report.final.xlsx", "_", "42", "İ", "ǅ", "Σσς", "\u0345", "\u3099", "ｶﾞ", "①", "\u00ad", "\ufeff",
    "a\u0301\u200bb", " ", "\n", ",", "-",
]  # fmt: skip
any_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
    st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=8).map(" ".join),
)


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_text_only_tokenizers_equal_tokenize(text):
    assert token_texts(text) == [t.text for t in tokenize(text)]
    assert cjk_unigram_texts(text) == [t.text for t in cjk_unigrams(text)]
    # twice in a row (the one-entry normalization cache) and after another text
    assert token_texts(text) == [t.text for t in tokenize(text)]
    token_texts(text + "x")
    assert cjk_unigram_texts(text) == [t.text for t in cjk_unigrams(text)]


def test_every_code_point_tokenizes_the_same_alone_and_with_combining_marks():
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000 or code % 7:  # every 7th code point: the whole range, quickly
            continue
        text = chr(code) + "a" + chr(code) + "\u0301"
        assert token_texts(text) == [t.text for t in tokenize(text)], hex(code)
        assert cjk_unigram_texts(text) == [t.text for t in cjk_unigrams(text)], hex(code)


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_index_formats_write_what_the_analyzer_would(text):
    analyzer, unigrams = AnalysisTokenizer(), AnalysisTokenizer(unigrams=True)
    assert list(_TextPositions().word_values(text, analyzer)) == list(
        formats.Positions().word_values(text, analyzer, mode="index")
    )
    assert list(_UnigramFrequency().word_values(text, unigrams)) == list(
        formats.Frequency().word_values(text, unigrams, mode="index")
    )


# ------------------------------------------------------------------------------------------ lark sniffing

_ALL_KEYS = re.compile(rb'"([A-Za-z_]{2,40})"\s*:')
KEYISH = [b'"message_id"', b'"msg_type": ', b'"member_id_type"', b'"member_id"', b'"name"', b'"chat_id"',
          b'"open_id"', b'"en_name"', b'"chat_mode"', b'"items"', b'"body"', b'"create_time"', b'"x"',
          b'"reaction_type"', b'"emoji_type"', b'"chat_type"', b'"message_type"', b'"union_id"',
          b'"owner_id_type"', b'"chat_status"', b'im.message.receive_v1', b'"a"b"', b"\\\"", b'"']  # fmt: skip


def _reference_keys(text: bytes) -> set[str]:
    return {m.group(1).decode("ascii") for m in _ALL_KEYS.finditer(text)} & set(lark._SCORED_KEYS)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(KEYISH) | st.sampled_from([b":", b" ", b"\n", b"{", b"[", b",", b"1"]), max_size=40))
def test_lark_sniffer_sees_exactly_the_keys_a_full_key_scan_sees(parts):
    head = b"".join(parts)
    assert {k.decode() for k in lark._JSON_KEY.findall(head)} == _reference_keys(head)


# ------------------------------------------------------------------------------------------ directory upserts


def _sequential_upserts(db, messages):
    """One statement per message and person: how ingest wrote the directory before batching."""
    for m in messages:
        db.execute(
            "INSERT INTO conversations(id, source_format, name, type) VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE "
            "SET name = COALESCE(excluded.name, name), type = COALESCE(excluded.type, type)",
            (m.conversation_id, m.source_format, m.conversation_name, m.conversation_type),
        )
        people = [(m.sender_id, m.sender_name, m.sender_kind)] + [(x.id, x.name, None) for x in m.mentions if x.id]
        for person_id, name, kind in people:
            if not person_id:
                continue
            db.execute(
                "INSERT INTO participants(id, name, kind) VALUES (?,?,?) ON CONFLICT(id) DO UPDATE SET "
                "name = COALESCE(name, excluded.name), "
                "kind = CASE WHEN kind IS NULL OR kind = 'unknown' THEN COALESCE(excluded.kind, kind) ELSE kind END",
                (person_id, name, kind),
            )
            db.execute("INSERT OR IGNORE INTO conversation_members(conversation_id, participant_id) VALUES (?,?)",
                       (m.conversation_id, person_id))


maybe = st.sampled_from([None, None, "", "Ops", "ops", "Secret"])
kinds = st.sampled_from([None, "unknown", "user", "bot", "unknown"])


@st.composite
def directory_messages(draw):
    out = []
    for i in range(draw(st.integers(0, 12))):
        mentions = [Mention(id=draw(st.sampled_from([None, "u1", "u2", "u3"])), name=draw(maybe))
                    for _ in range(draw(st.integers(0, 2)))]
        out.append(Message(
            native_id=f"n{i}", source_format="lark_api", conversation_id=draw(st.sampled_from(["c1", "c2"])),
            sent_at=None, sent_at_raw="", conversation_name=draw(maybe),  # type: ignore[arg-type]
            conversation_type=draw(st.sampled_from([None, "group", "dm"])),
            sender_id=draw(st.sampled_from([None, "", "u1", "u2"])), sender_name=draw(maybe),
            sender_kind=draw(kinds) or "unknown", mentions=mentions,
        ))
    return out


def _directory(db):
    return [sorted(tuple(row) for row in db.execute(f"SELECT * FROM {table}"))  # noqa: S608 - fixed tables
            for table in ("conversations", "participants", "conversation_members")]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(directory_messages(), min_size=1, max_size=3), st.data())
def test_batched_directory_upserts_end_like_one_statement_per_message(batches, data):
    with tempfile.TemporaryDirectory() as tmp:
        one, two = Case(Path(tmp) / "a", create=True), Case(Path(tmp) / "b", create=True)
        try:
            known_kind = data.draw(kinds)
            for db in (one.db, two.db):  # a directory that already knows some of them
                db.execute("INSERT INTO participants(id, name, kind) VALUES ('u2', NULL, ?)", (known_kind,))
                db.execute("INSERT INTO conversations(id, source_format, name, type) VALUES ('c2', 'x', NULL, NULL)")
            for batch in batches:
                _sequential_upserts(one.db, batch)
                ingest_module._upsert_directory(two.db, batch)
            assert _directory(one.db) == _directory(two.db)
        finally:
            one.close()
            two.close()


# ------------------------------------------------------------------------------------------ the engine

WORDS = ["audit", "team", "logs", "whitewash", "evidence", "the", "a", "清理", "删除证据", "check", "x"]


def _corpus(n: int, seed: int = 5) -> list[IndexDoc]:
    import random

    rng = random.Random(seed)
    docs = []
    for i in range(n):
        at = T0 + rng.randrange(-3, 40) * DAY // 2 + rng.choice([0, 1, DAY // 3])
        docs.append(IndexDoc(
            id=f"m{rng.randrange(10**6):06d}{i:05d}", text=" ".join(rng.choices(WORDS, k=rng.randint(1, 9))),
            conversation_id=rng.choice(["c1", "c2", "c3"]), conversation_name=rng.choice(["Ops", "Secret", ""]),
            conversation_type=rng.choice(["group", "dm"]), sender_id=rng.choice(["u1", "u2"]),
            sender_name=rng.choice(["Li Lei", "Han"]), source_format="lark_api", custodian=rng.choice(["", "alice"]),
            kind=rng.choice(["message", "file"]), sent_at_us=at, day=at // DAY,
            has_attachment=rng.random() < 0.2, edited=rng.random() < 0.1, deleted=rng.random() < 0.1,
        ))
    return docs


QUERIES = [
    "audit", "team", "logs OR evidence", "audit team", "audit -team", '"audit team"', '"check logs"~1', "whit*",
    "*s", "te?m", "evidense~1", "清理", "清", "audit w/2 team", "logs not w/1 check", "date:2023-06-05",
    "audit date:2023-06-02..2023-06-09", "date:>=2023-06-10T08:00:00", "date:<2023-06-01T12:00:00",
    "logs -date:2023-06", "sender:u1", 'sender:"han"', "conversation:secret", "kind:file", "has:attachment",
    "is:edited", "is:deleted -audit", "type:dm team", 'custodian:alice', "NOT x", "",
]  # fmt: skip


def _answers(engine: WhooshEngine) -> dict[str, object]:
    out: dict[str, object] = {}
    for text in QUERIES:
        node = parse(text)
        out[text] = (
            sorted(engine.all_ids(node)),
            [(r.total, r.ids, r.scores) for r in (
                engine.search(node, limit=7),
                engine.search(node, offset=3, limit=5),
                engine.search(node, sort="time_asc", limit=6),
                engine.search(node, sort="time_desc", limit=6),
            )],
        )
    return out


@pytest.mark.parametrize("roll_at", [0.8, 0.0])  # 0.0: every worker starts a new segment after each job
def test_bulk_multiprocess_index_answers_like_the_incremental_one(tmp_path, monkeypatch, roll_at):
    monkeypatch.setattr(_RollingSubWriter, "ROLL_AT", roll_at)
    docs = _corpus(1100)
    incremental = WhooshEngine(tmp_path / "one", procs=1, bulk_threshold=10**9)
    for start in range(0, len(docs), 150):  # several commits: several segments, merged by Whoosh's policy
        incremental.add(docs[start : start + 150])
        incremental.commit()
    bulk = WhooshEngine(tmp_path / "bulk", procs=2, bulk_threshold=100, batch_size=50)
    assert bulk.add_new(docs) == len(docs)
    assert isinstance(bulk._writer, MpWriter)  # really written by worker processes
    bulk.commit()
    try:
        if roll_at == 0.0:
            assert len(bulk._searcher().reader().leaf_readers()) >= 4
        assert bulk.doc_count() == incremental.doc_count() == len(docs)
        assert _answers(bulk) == _answers(incremental)
    finally:
        incremental.close()
        bulk.close()


def test_replace_and_delete_after_a_bulk_load(tmp_path):
    docs = _corpus(300)
    engine = WhooshEngine(tmp_path / "ix", procs=2, bulk_threshold=50)
    engine.add(docs)
    engine.commit()
    changed = [IndexDoc(**{**docs[i].__dict__, "text": "replaced whitewash zzz"}) for i in (0, 150, 299)]
    engine.add(changed)
    engine.delete([docs[1].id, docs[151].id, "never-there"])
    engine.delete([docs[1].id])  # again: nothing more to delete
    engine.commit()
    assert engine.doc_count() == 298
    assert sorted(engine.all_ids(parse("zzz"))) == sorted(d.id for d in changed)
    assert docs[1].id not in engine.all_ids(parse(""))
    engine.close()
    reopened = WhooshEngine(tmp_path / "ix")
    assert reopened.doc_count() == 298
    assert sorted(reopened.all_ids(parse("zzz"))) == sorted(d.id for d in changed)
    reopened.close()


def test_add_new_is_add_for_new_ids(tmp_path):
    docs = _corpus(120)
    one, two = WhooshEngine(tmp_path / "a"), WhooshEngine(tmp_path / "b")
    one.add(docs[:60])
    one.commit()
    one.add(docs[60:])
    two.add_new(docs[:60])
    two.commit()
    two.add_new(docs[60:])
    two.add_new([docs[70]])  # repeated within the open writer: still replaced, never duplicated
    one.commit()
    two.commit()
    try:
        assert one.doc_count() == two.doc_count() == 120
        assert _answers(one) == _answers(two)
    finally:
        one.close()
        two.close()


def _full_sort(engine, text, offset, limit, sort="relevance"):
    """The order by Whoosh's own sort of every match: (score desc, id asc), or (time, id asc)."""
    searcher = engine._searcher()
    q = _Translator(searcher.reader()).query(parse(text))
    if sort == "relevance":
        keys, at_score = [sorting.ScoreFacet(), sorting.FieldFacet("id")], 0
    else:
        ts = sorting.FieldFacet("ts", reverse=sort == "time_desc")
        keys, at_score = [ts, sorting.FieldFacet("id"), sorting.ScoreFacet()], 2
    results = searcher.search(q, limit=offset + limit, sortedby=sorting.MultiFacet(keys))
    top = results.top_n[offset : offset + limit]
    return len(results), [key[1].decode() for key, _ in top], [0.0 - key[at_score] for key, _ in top]


FULL_SORT_QUERIES = [
    "audit", "team", "audit OR team", "audit team", "logs -x", "whitewash OR evidence", "清理", '"audit team"',
    "audit w/2 logs", "logs not w/1 team", "", "date:2023-06-02", "is:edited", "whitewash", "-logs", "NOT audit",
    "sender:u1 date:2023-06-02", "kind:file -is:deleted", "conversation:c2 OR is:edited",
]  # fmt: skip


@pytest.mark.parametrize("sort", ["relevance", "time_asc", "time_desc"])
def test_top_n_equals_a_full_sort_with_ties(tmp_path, sort):
    docs = _corpus(900, seed=11)
    for i in range(0, 900, 3):  # many documents with exactly the same text: score ties everywhere
        docs[i].text = "audit team logs"
    for i in range(0, 900, 4):  # and many at exactly the same time
        docs[i].sent_at_us = T0 + DAY
    engine = WhooshEngine(tmp_path / "ix", procs=1, bulk_threshold=10**9)
    for start in range(0, 900, 300):
        engine.add(docs[start : start + 300])
        engine.commit()
    try:
        for deleted in (False, True):  # segments without deletions (the block fast path), then with
            if deleted:
                engine.delete([docs[3].id, docs[4].id, docs[600].id])
                engine.commit()
            for text in FULL_SORT_QUERIES:
                for offset, limit in [(0, 1), (0, 10), (5, 20), (0, 400), (890, 50)]:
                    got = engine.search(parse(text), offset=offset, limit=limit, sort=sort)
                    expected = _full_sort(engine, text, offset, limit, sort)
                    assert (got.total, got.ids, got.scores) == expected, (text, offset, deleted)
    finally:
        engine.close()


def test_date_ranges_follow_exact_timestamps_and_skip_deleted(tmp_path):
    docs = _corpus(400, seed=3)
    engine = WhooshEngine(tmp_path / "ix")
    engine.add(docs)
    engine.commit()
    gone = {docs[i].id for i in range(0, 400, 9)}
    engine.delete(gone)
    engine.commit()
    live = [d for d in docs if d.id not in gone]
    bounds = [None, T0, T0 + DAY // 3, T0 + 5 * DAY - 1, T0 + 5 * DAY, T0 + 11 * DAY + 1]
    try:
        for lo in bounds:
            for hi in bounds:
                if lo is not None and hi is not None and lo > hi:
                    continue
                text = "date:" + ("" if lo is None else _iso(lo)) + ".." + ("" if hi is None else _iso(hi))
                if text == "date:..":
                    continue
                node = parse(text)
                expected = sorted(d.id for d in live if matches(node, d))
                assert sorted(engine.all_ids(node)) == expected, text
                assert engine.search(node, limit=5).total == len(expected)
    finally:
        engine.close()


def _iso(us: int) -> str:
    from datetime import UTC, datetime, timedelta

    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


# ------------------------------------------------------------------------------------------ ingest and search


def _lark_export(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_directory(folder, {"oc_a": "Audit prep", "oc_b": "Ops"}, {"ou_alice": "Alice Chen", "ou_bob": "Bob Wang"})
    texts = ["we need to whitewash the numbers", "上线前把debug logs清理掉", "ok", "check the audit logs",
             "delete the evidence now", "team meeting at 10"]
    write_jsonl(folder / "messages.jsonl", [
        message(i, texts[i % len(texts)] + f" n{i}", sender="ou_bob" if i % 3 else "ou_alice",
                chat="oc_b" if i % 4 == 0 else "oc_a")
        for i in range(1, n + 1)
    ])
    return folder


def _case_answers(case: Case) -> tuple[object, ...]:
    tables = {}
    for table in ("messages", "conversations", "participants", "conversation_members", "duplicates"):
        rows = case.db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - fixed table names
        tables[table] = sorted(json.dumps(dict(row) | {"seq": None}) for row in rows)
    hits = {q: search(case, q, context=2, limit=15).to_dict()
            for q in ["whitewash", "logs", "清理", '"the audit"', "n1*", "sender:ou_bob", "date:2024-06-01"]}
    return tables, hits, sorted(case.engine().all_ids(parse("")))


def test_ingest_paths_agree_batch_by_batch_and_in_bulk(tmp_path, monkeypatch):
    export = _lark_export(tmp_path / "export", 120)
    results = []
    for batch, every, threshold, procs in [(2000, 2000, 10**9, 1), (7, 7, 10**9, 1), (7, 30, 25, 2)]:
        monkeypatch.setattr(ingest_module, "BATCH", batch)
        monkeypatch.setattr(ingest_module, "COMMIT_EVERY", every)
        case = Case(tmp_path / f"case-{batch}-{every}", create=True)
        case._engine = WhooshEngine(case.index_dir, procs=procs, bulk_threshold=threshold)
        ingest(case, [str(export)], copy_originals=False)
        ingest(case, [str(export)], copy_originals=False)  # the same files again: all duplicates
        results.append(_case_answers(case))
        case.close()
    assert results[0] == results[1] == results[2]


def test_a_failing_batch_is_rolled_back_alone_and_never_indexed(tmp_path, monkeypatch):
    export = _lark_export(tmp_path / "export", 40)
    monkeypatch.setattr(ingest_module, "BATCH", 5)
    monkeypatch.setattr(ingest_module, "COMMIT_EVERY", 20)
    real = ingest_module._upsert_directory
    calls = []

    def flaky(db, messages):
        calls.append(len(messages))
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return real(db, messages)

    monkeypatch.setattr(ingest_module, "_upsert_directory", flaky)
    case = Case(tmp_path / "case", create=True)
    # A storage error ends the run (it is not the adapter's): the two batches before it are kept, the
    # failing one is not, and the run is recorded as interrupted with what it stored.
    with pytest.raises(sqlite3.OperationalError) as raised:
        ingest(case, [str(export)], copy_originals=False)
    assert ingest_module.ended_run(raised.value).report.messages_added == 10
    assert case.stats()["messages"] == 10
    assert tuple(case.db.execute("SELECT status, messages_added FROM ingest_runs").fetchone()) == ("interrupted", 10)
    monkeypatch.setattr(ingest_module, "_upsert_directory", real)
    report = ingest(case, [str(export)], copy_originals=False)  # the next run indexes what was kept first
    assert report.index_caught_up == 10 and report.messages_added == 30
    in_db = {row[0] for row in case.db.execute("SELECT id FROM messages")}
    assert len(in_db) == 40 and set(case.engine().all_ids(parse(""))) == in_db
    case.close()


def test_context_windows_are_the_case_windows(tmp_path):
    export = _lark_export(tmp_path / "export", 60)
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(export)], copy_originals=False)
    for context in (0, 1, 3):
        result = search(case, "logs OR ok OR team", context=context, limit=30)
        assert result.hits
        for hit in result.hits:
            expected = case.window(hit.message["id"], context, context)
            for neighbour in expected:
                neighbour["hit"] = neighbour["id"] == hit.message["id"]
                if neighbour["hit"]:
                    neighbour["highlights"] = hit.message["highlights"]
            assert hit.context == expected
    case.close()


@pytest.mark.parametrize("generation", ["old schema"])
def test_an_index_from_an_older_schema_is_refused_with_a_way_out(tmp_path, generation):
    from whoosh import index as windex
    from whoosh.fields import ID, Schema

    windex.create_in(str(tmp_path), Schema(id=ID(stored=True, unique=True), day=ID()))
    with pytest.raises(RuntimeError, match="discovery reindex"):
        WhooshEngine(tmp_path)


def test_sniffing_in_worker_processes_picks_the_same_adapters(tmp_path, monkeypatch):
    import shutil
    import zipfile

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    export = tmp_path / "mixed"
    shutil.copytree(fixtures, export, ignore=shutil.ignore_patterns("*.md"))
    pages = _lark_export(tmp_path / "pages", 10)
    for n in range(70):  # enough files for the pool, each a Lark page of its own
        write_jsonl(export / f"page_{n:03d}.jsonl", [message(1000 + n, f"page {n} whitewash", chat="oc_a")])
    with zipfile.ZipFile(export / "bundle.zip", "w") as archive:
        for item in sorted(pages.iterdir()):
            archive.write(item, f"inner/{item.name}")
    answers = []
    for threshold in (10**9, 1):
        monkeypatch.setattr(ingest_module, "SNIFF_POOL_MIN_FILES", threshold)
        case = Case(tmp_path / f"case-{threshold}", create=True)
        ingest(case, [str(export)], copy_originals=False)
        sources = case.db.execute("SELECT path, member, sha256, format FROM sources ORDER BY id").fetchall()
        answers.append(([tuple(row) for row in sources], _case_answers(case)))
        case.close()
    assert answers[0] == answers[1]
    assert len(answers[0][0]) > 64


# ------------------------------------------------------------------------------------------ search term reports

REPORT_TERMS = ["whitewash", "洗白", "logs", "evidence", "audit", "whitewash", "zzzznothing", '"the audit"',
                "log* w/5 (delete OR evidence)", "date:>=2000-01-01", "ok OR team", "n1*"]


@pytest.fixture(scope="module")
def report_cases(tmp_path_factory, demo_case_dir):
    """The demo case (merged-forward bundles: streams that are not conversations) and a two-chat case
    of 150 short messages (windows that would run into the next stream)."""
    folder = tmp_path_factory.mktemp("report")
    small = Case(folder / "case", create=True)
    ingest(small, [str(_lark_export(folder / "export", 150))], copy_originals=False)
    cases = [Case(demo_case_dir), small]
    yield cases
    for case in cases:
        case.close()


@pytest.mark.parametrize("context", [0, 1, 3, 8])
def test_term_report_bitsets_count_like_the_sql_tables(report_cases, context):
    from discovery.terms import term_report, term_report_sql

    for case in report_cases:
        for terms in (REPORT_TERMS, REPORT_TERMS[::-1][:5], ["date:>=2000-01-01"], []):
            assert term_report(case, terms, context=context) == term_report_sql(case, terms, context=context)
        scope = parse("sender:ou_bob OR whitewash")
        assert term_report(case, REPORT_TERMS, context=context, scope=scope) == \
            term_report_sql(case, REPORT_TERMS, context=context, scope=scope)


def test_term_report_windows_are_the_case_windows_at_every_stream_edge(report_cases):
    from discovery.search import parse_query
    from discovery.terms import StreamOrder

    for case in report_cases:
        order = StreamOrder.load(case)
        ids = case.engine().all_ids(parse_query(case, "date:>=2000-01-01"))
        for message_id in ids[:40] + ids[-40:]:  # each message alone: its window is case.window's
            hits = order.hits([message_id])
            for context in (1, 2, 5):
                expected = {m["id"] for m in case.window(message_id, context, context)}
                got = order.window(hits.bits, context)
                assert got.bit_count() == len(expected)
                assert got == order.hits(expected).bits


# ------------------------------------------------------------------------------------------ facets

FACET_QUERIES = ["whitewash", "logs OR ok OR team", "date:>=2000-01-01", "zzzznothing", "sender:ou_bob",
                 "洗白 OR evidence OR audit", "n1*"]


@pytest.mark.parametrize("zone_name", ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_facets_counted_in_memory_equal_the_group_bys(report_cases, zone_name):
    from discovery import facets
    from discovery.search import parse_query
    from discovery.web import zones

    zone = zones.zone(zone_name)
    for case in report_cases:
        for query in FACET_QUERIES:
            node = parse_query(case, query)
            for interval, top in (("auto", 10), ("day", 1000), ("week", 2), ("year", 1)):
                fast = facets.aggregate(case, node, zone=zone, interval=interval, top=top)
                assert fast == facets.aggregate_plain(case, node, zone=zone, interval=interval, top=top), query
                assert fast.ids == case.engine().all_ids(node)
            assert not case.db.in_transaction


def test_local_days_follow_each_offset_change():
    from datetime import date

    from discovery import facets
    from discovery.web import zones

    ny = zones.zone("America/New_York")
    # 2024-03-10 07:00 UTC is 03:00 EDT (the change); a microsecond earlier is 01:59:59.999999 EST
    change = 1_710_054_000_000_000
    hour = 3_600_000_000
    times = [change - 1, change, change - 2 * hour, change + 20 * hour, change - 7 * hour]
    assert facets.local_days(times, ny) == {date(2024, 3, 10): 4, date(2024, 3, 9): 1}
    assert facets.local_days([-1, 0], zones.UTC) == {date(1969, 12, 31): 1, date(1970, 1, 1): 1}


def test_facet_columns_follow_new_ingests_hand_edits_and_a_new_case_at_the_same_path(tmp_path):
    import shutil

    from discovery import facets
    from discovery.search import parse_query

    def same(case):
        for query in ("logs OR ok OR team", "date:>=2000-01-01", "n1*"):
            node = parse_query(case, query)
            assert facets.aggregate(case, node) == facets.aggregate_plain(case, node), query

    first = _lark_export(tmp_path / "first", 40)
    more = tmp_path / "more"
    more.mkdir()
    write_jsonl(more / "messages.jsonl", [message(500 + i, f"ok logs more {i}", sender="ou_carol", chat="oc_c")
                                          for i in range(25)])
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(first)], copy_originals=False)
    same(case)
    ingest(case, [str(more)], copy_originals=False)  # rows past the cached seq: read and appended
    same(case)
    assert facets.facet_columns(case).count == 65
    with case.transaction() as db:  # by hand: the count no longer adds up, so everything is read again
        db.execute("DELETE FROM messages WHERE seq = (SELECT MIN(seq) FROM messages)")
    same(case)
    assert facets.facet_columns(case).count == 64
    case.close()
    shutil.rmtree(tmp_path / "case")
    case = Case(tmp_path / "case", create=True)  # another case at the same path
    ingest(case, [str(more)], copy_originals=False)
    same(case)
    assert facets.facet_columns(case).count == 25
    case.close()


def test_facets_in_memory_keep_sqls_nulls_empty_names_and_tie_order(tmp_path):
    from discovery import facets
    from discovery.search import parse_query

    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(_lark_export(tmp_path / "export", 48))], copy_originals=False)
    with case.transaction() as db:  # by hand, as no ingest would: no sender, an empty name, equal counts
        db.execute("UPDATE messages SET sender_id = NULL WHERE seq % 5 = 0")
        db.execute("UPDATE participants SET name = '' WHERE id = 'ou_alice'")
        db.execute("INSERT INTO participants(id, name, kind) VALUES ('ou_zed', 'Bob Wang', 'user')")
        db.execute("UPDATE messages SET sender_id = 'ou_zed' WHERE seq % 7 = 0")
    facets._COLUMNS.clear()  # an UPDATE is the one change the columns do not notice (ingest never does one)
    for query in ("date:>=2000-01-01", "logs OR ok", "whitewash"):
        node = parse_query(case, query)
        for top in (1, 2, 10):
            fast = facets.aggregate(case, node, top=top)
            assert fast == facets.aggregate_plain(case, node, top=top), (query, top)
    labels = [v.label for v in facets.aggregate(case, parse_query(case, "date:>=2000-01-01")).facets["senders"]]
    assert "(unknown sender)" in labels and "" in labels
    case.close()
