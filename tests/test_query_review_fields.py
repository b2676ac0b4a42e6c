"""tag:, note:, is:tagged and is:untagged: parsed, resolved from case.db, and searched.

The tests at the end go through ``discovery.search.search`` and so through the engine: they need
``Field("ids", ...)`` wired into it (``discovery.engine._ids.ids_query``).
"""

from __future__ import annotations

import pytest

from discovery import review
from discovery.ingest import all_index_docs
from discovery.query import And, Field, Not, Or, Phrase, QueryError, Term, matches, parse
from discovery.query.match import matches as oracle
from discovery.search import parse_query, search
from tests.test_review import WHITEWASH, case, case_dir, lark_template  # noqa: F401 - fixtures


@pytest.mark.parametrize(
    "query, expected",
    [
        ("tag:hot", Field("tag", "hot")),
        ("TAG:Hot", Field("tag", "Hot")),
        ('tag:"needs second look"', Field("tag", "needs second look")),
        ("-tag:reviewed", Not(Field("tag", "reviewed"))),
        ('-tag:"not responsive"', Not(Field("tag", "not responsive"))),
        ("whitewash -tag:hot", And((Term("whitewash"), Not(Field("tag", "hot"))))),
        ("tag:hot OR tag:privileged", Or((Field("tag", "hot"), Field("tag", "privileged")))),
        ("is:untagged", Field("is", "untagged")),
        ("is:Tagged", Field("is", "tagged")),
        ("NOT is:untagged", Not(Field("is", "untagged"))),
        ("note:counsel", Field("note", "counsel")),
        ('note:"call counsel"', Field("note", '"call counsel"')),
        ("note:\u201ccall counsel\u201d", Field("note", '"call counsel"')),
        ("note:couns*", Field("note", "couns*")),
        ('-note:"call counsel"', Not(Field("note", '"call counsel"'))),
    ],
)
def test_parse_review_fields(query, expected):
    assert parse(query) == expected


def test_a_quoted_note_value_is_a_phrase_and_a_bare_one_a_word():
    assert parse(parse('note:"call counsel"').value) == Phrase(("call", "counsel"))  # type: ignore[attr-defined]
    assert parse(parse("note:counsel").value) == Term("counsel")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "query, position, fragment",
    [
        ("tag:", 0, "needs a value"),
        ('tag:""', 0, "needs a value"),
        ("note:", 0, "needs a value"),
        ('note:""', 5, "nothing searchable in the phrase"),
        ('x note:"a', 7, "missing closing quote"),
        ("note:sender:bob", 5, "searches note text"),
        ("note:date:2024", 5, "searches note text"),
        ("note:!!!", 5, "nothing searchable"),
        ("is:reviewed", 3, "is: accepts edited, deleted, tagged, untagged"),
        ("a w/5 tag:hot", 2, "operands of 'w/5'"),
        ("labels:hot", 0, "known fields: sender, participant, conversation, format, custodian, kind, type, date, "
                          "has, is, tag, note"),
    ],
)
def test_review_field_errors(query, position, fragment):
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert fragment in str(caught.value)
    assert caught.value.position == position


def test_unresolved_review_fields_are_refused_by_the_oracle():
    from discovery.engine import IndexDoc

    doc = IndexDoc(id="m1", text="x", conversation_id="c", conversation_name="", conversation_type="",
                   sender_id="s", sender_name="", source_format="lark", custodian="", kind="text", sent_at_us=0, day=0)
    for node in (Field("tag", "hot"), Field("note", "x"), Field("is", "untagged")):
        with pytest.raises(ValueError, match="must be resolved"):
            oracle(node, doc)
    assert oracle(Field("ids", frozenset({"m1"})), doc)
    assert not oracle(Field("ids", frozenset({"m2"})), doc)
    assert oracle(Not(Field("ids", frozenset())), doc)


def test_parse_query_resolves_through_case_db(case):  # noqa: F811 - fixture
    review.add_tag(case, WHITEWASH[:2], "hot")
    node = parse_query(case, "whitewash -tag:hot", [parse("is:tagged OR note:x")])
    assert node == And((Term("whitewash"), Not(Field("ids", frozenset(WHITEWASH[:2]))),
                        Or((Field("ids", frozenset(WHITEWASH[:2])), Field("ids", frozenset())))))


def _oracle_ids(case, query):  # noqa: F811 - fixture name
    node = parse_query(case, query)
    return {doc.id for doc in all_index_docs(case) if matches(node, doc)}


def _engine_ids(case, query):  # noqa: F811 - fixture name
    result = search(case, query, context=0, limit=1000)
    assert result.total == len(result.hits)
    return {hit.message["id"] for hit in result.hits}


def _tagged_case(case):  # noqa: F811 - fixture name
    everything = [row[0] for row in case.db.execute("SELECT id FROM messages ORDER BY seq")]
    review.add_tag(case, WHITEWASH[:2], "hot")
    review.add_tag(case, everything[::3], "responsive")  # many ids: the engine reads the whole id column
    review.add_tag(case, everything[1::7], "needs second look")
    review.remove_tag(case, everything[::6], "responsive")
    review.add_note(case, WHITEWASH[2], "Call counsel about the refund table")
    review.add_note(case, everything[5], "律师说要保留证据")
    return everything


QUERIES = [
    "tag:hot", "-tag:hot", "TAG:HOT whitewash", 'tag:"needs second look"', "tag:responsive",
    "whitewash -tag:responsive", "is:tagged", "is:untagged", "is:untagged whitewash", "-is:untagged",
    "tag:hot OR tag:responsive", "tag:reviewed", "-tag:reviewed", "note:counsel", 'note:"call counsel"',
    'note:"counsel call"', "note:couns*", "note:律师", "-note:counsel whitewash", "whitewash OR note:counsel",
    "tag:responsive date:2024-09", "(tag:hot OR note:counsel) -tag:responsive",
]


# Needs Field("ids") wired into the engine.
@pytest.mark.parametrize("query", QUERIES)
def test_the_engine_agrees_with_the_oracle(case, query):  # noqa: F811 - fixture
    _tagged_case(case)
    assert _engine_ids(case, query) == _oracle_ids(case, query)


# Needs Field("ids") wired into the engine.
def test_search_by_tag_follows_tag_changes(case):  # noqa: F811 - fixture
    everything = _tagged_case(case)
    assert _engine_ids(case, "tag:hot") == set(WHITEWASH[:2])
    assert search(case, "-tag:hot").total == len(everything) - 2
    review.remove_tag(case, WHITEWASH[:1], "hot")
    review.add_tag(case, WHITEWASH[3:], "hot")
    assert _engine_ids(case, "tag:hot") == {WHITEWASH[1], WHITEWASH[3]}
    assert _engine_ids(case, "tag:hot whitewash") == {WHITEWASH[1], WHITEWASH[3]}
    tagged = review.tagged_ids(case)
    assert search(case, "is:untagged").total == len(everything) - len(tagged)
    assert search(case, "is:tagged").total == len(tagged)


# Needs Field("ids") wired into the engine.
def test_highlights_come_from_the_text_part_only(case):  # noqa: F811 - fixture
    review.add_tag(case, WHITEWASH, "hot")
    result = search(case, "whitewash tag:hot", context=0)
    assert result.total == 4
    for hit in result.hits:
        text = hit.message["text"]
        assert all(text[a:b].lower().startswith("whitewash") for a, b in hit.message["highlights"])
