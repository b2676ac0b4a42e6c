from datetime import datetime, timezone

import pytest

from discovery.query import (
    And,
    CjkChar,
    DateRange,
    Field,
    Fuzzy,
    MatchAll,
    Near,
    Not,
    Or,
    Phrase,
    QueryError,
    Stem,
    Term,
    Wildcard,
    and_all,
    explain,
    parse,
    transform,
)

UTC = timezone.utc


def T(w):
    return Term(w)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("whitewash", T("whitewash")),
        ("WhiteWash", T("whitewash")),
        ("ＷＨＩＴＥ", T("white")),  # full-width folds
        ("white\u200bwash", T("whitewash")),  # zero-width removed
        ("a b", And((T("a"), T("b")))),
        ("a AND b", And((T("a"), T("b")))),
        ("a OR b", Or((T("a"), T("b")))),
        ("a b OR c", Or((And((T("a"), T("b"))), T("c")))),
        ("a (b OR c)", And((T("a"), Or((T("b"), T("c")))))),
        ("a AND NOT b", And((T("a"), Not(T("b"))))),
        ("a NOT b", And((T("a"), Not(T("b"))))),
        ("a -b", And((T("a"), Not(T("b"))))),
        ("NOT a", Not(T("a"))),
        ("-a", Not(T("a"))),
        ('x -"a b"', And((T("x"), Not(Phrase(("a", "b")))))),
        ("x -(a OR b)", And((T("x"), Not(Or((T("a"), T("b"))))))),
        ("a and b", And((T("a"), T("and"), T("b")))),  # lower-case operators are words
        ("a or b", And((T("a"), T("or"), T("b")))),
        ('"debug logs"', Phrase(("debug", "logs"))),
        ('"debug logs"~2', Phrase(("debug", "logs"), 2)),
        ("\u201cdebug logs\u201d", Phrase(("debug", "logs"))),  # curly quotes
        ('"hello"', T("hello")),
        ("debug日志", Phrase(("debug", "日志"))),
        ("report.final.xlsx", Phrase(("report", "final", "xlsx"))),
        ("删除证据", Phrase(("删除", "除证", "证据"))),
        ("清", CjkChar("清")),
        ("清理", T("清理")),
        ("whitewash*", Wildcard("whitewash*")),
        ("wh?te", Wildcard("wh?te")),
        ("white*sh", Wildcard("white*sh")),
        ("*wash", Wildcard("*wash")),
        ("WHITE**", Wildcard("white*")),
        ("word%", Fuzzy("word", 1, 4)),
        ("wo%%rd", Fuzzy("word", 2, 2)),
        ("%word", Fuzzy("word", 1, 0)),
        ("word~1", Fuzzy("word", 1, 0)),
        ("Word~2", Fuzzy("word", 2, 0)),
        ("apply~", Stem("apply")),
        ("a w/5 b", Near(T("a"), T("b"), 5)),
        ("a W/5 b", Near(T("a"), T("b"), 5)),
        ("a pre/3 b", Near(T("a"), T("b"), 3, ordered=True)),
        ("a not w/4 b", Near(T("a"), T("b"), 4, negated=True)),
        ("a NOT w/4 b", Near(T("a"), T("b"), 4, negated=True)),
        (
            "(whitewash OR scrub) w/5 (logs OR evidence)",
            Near(Or((T("whitewash"), T("scrub"))), Or((T("logs"), T("evidence"))), 5),
        ),
        ('"debug logs" w/3 清理', Near(Phrase(("debug", "logs")), T("清理"), 3)),
        ("a w/2 b w/3 c", Near(Near(T("a"), T("b"), 2), T("c"), 3)),
        ("x a w/2 b", And((T("x"), Near(T("a"), T("b"), 2)))),
        ("NOT a w/2 b", Not(Near(T("a"), T("b"), 2))),
        ("whit* w/2 log~1", Near(Wildcard("whit*"), Fuzzy("log", 1, 0), 2)),
        ("w/o", Phrase(("w", "o"))),  # chat shorthand, not an operator
        ("10:30", Phrase(("10", "30"))),
        ("", MatchAll()),
        ("   ", MatchAll()),
        ("sender:alice", Field("sender", "alice")),
        ('sender:"Li Lei"', Field("sender", "Li Lei")),
        ('-sender:"Li Lei"', Not(Field("sender", "Li Lei"))),
        ("SENDER:u_123", Field("sender", "u_123")),
        ("participant:bob", Field("participant", "bob")),
        ("conversation:oc_1", Field("conversation", "oc_1")),
        ("format:lark_api", Field("format", "lark_api")),
        ("custodian:alice", Field("custodian", "alice")),
        ("kind:image", Field("kind", "image")),
        ("type:dm", Field("type", "dm")),
        ("has:attachment", Field("has", "attachment")),
        ("has:attachments", Field("has", "attachment")),
        ("is:edited", Field("is", "edited")),
        ("is:Deleted", Field("is", "deleted")),
        ("a -is:deleted", And((T("a"), Not(Field("is", "deleted"))))),
    ],
)
def test_parse(query, expected):
    assert parse(query) == expected


def _d(*args):
    return datetime(*args, tzinfo=UTC)


END_JUNE = _d(2023, 6, 30, 23, 59, 59, 999999)


@pytest.mark.parametrize(
    "query, start, end",
    [
        ("date:2023-06-01", _d(2023, 6, 1), _d(2023, 6, 1, 23, 59, 59, 999999)),
        ("date:2023-06", _d(2023, 6, 1), END_JUNE),
        ("date:2023-12", _d(2023, 12, 1), _d(2023, 12, 31, 23, 59, 59, 999999)),
        ("date:2023-02", _d(2023, 2, 1), _d(2023, 2, 28, 23, 59, 59, 999999)),
        ("date:2024", _d(2024, 1, 1), _d(2024, 12, 31, 23, 59, 59, 999999)),
        ("date:2023-06-01..2023-06-30", _d(2023, 6, 1), END_JUNE),
        ("date:2023-06-01..", _d(2023, 6, 1), None),
        ("date:..2023-06-30", None, END_JUNE),
        ("date:>=2023-06-01", _d(2023, 6, 1), None),
        ("date:>2023-06-01", _d(2023, 6, 2), None),
        ("date:<2023-07-01", None, END_JUNE),
        ("date:<=2023-06-30", None, END_JUNE),
        ("date:2023-6-1", _d(2023, 6, 1), _d(2023, 6, 1, 23, 59, 59, 999999)),
        ("date:>=2023-06-01T12:00:00", _d(2023, 6, 1, 12), None),
        ("date:>=2023-06-01T12:00:00+08:00", _d(2023, 6, 1, 4), None),
        ('date:"2023-06-01..2023-06-30"', _d(2023, 6, 1), END_JUNE),
    ],
)
def test_dates(query, start, end):
    node = parse(query)
    assert node == DateRange(start, end)
    for moment in (node.start, node.end):
        assert moment is None or moment.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "query, position, fragment",
    [
        ("(foo", 0, "missing closing parenthesis for '(' at position 0"),
        ("a (b OR (c d)", 2, "missing closing parenthesis for '(' at position 2"),
        ("foo)", 3, "unexpected ')' at position 3"),
        ("()", 0, "empty parentheses"),
        ("foo AND", 4, "'AND' at position 4 needs a term after it"),
        ("(foo AND", 5, "'AND' at position 5 needs a term after it"),
        ("AND foo", 0, "'AND' at position 0 needs a term before it"),
        ("OR foo", 0, "needs a term before it"),
        ("foo OR", 4, "'OR' at position 4 needs a term after it"),
        ("foo OR OR bar", 4, "needs a term after it"),
        ("NOT", 0, "'NOT' at position 0 needs a term after it"),
        ("foo w/ bar", 4, "'w/' at position 4 needs a number of words"),
        ("foo W/ bar", 4, "needs a number of words"),
        ("foo pre/ bar", 4, "'pre/' at position 4 needs a number"),
        ("foo w/x bar", None, None),  # "w/x" is just text
        ("foo w/0 bar", 4, "at least 1"),
        ("w/5 foo", 0, "'w/5' at position 0 needs a term before it"),
        ("foo w/5", 4, "'w/5' at position 4 needs a term after it"),
        ("foo w/5 AND bar", 4, "needs a term after it"),
        ('"debug logs', 0, "missing closing quote"),
        ('foo "bar', 4, "missing closing quote for '\"' at position 4"),
        ('"a b"~x', 5, "needs a number"),
        ("from:alice", 0, "unknown field 'from:'"),
        ("a ts:>2024-12-01", 2, "unknown field 'ts:'"),
        ("http://example.com", 0, "known fields: sender, participant"),
        ("sender:", 0, "needs a value"),
        ('sender:""', 0, "needs a value"),
        ("has:pictures", 4, "has: accepts attachment"),
        ("is:boring", 3, "is: accepts edited, deleted"),
        ("date:2023-13-01", 5, "not a date"),
        ("date:yesterday", 5, "not a date"),
        ("date:2023-06-30..2023-06-01", 5, "ends before it starts"),
        ("date:..", 5, "at least one end"),
        ("a w/5 sender:bob", 2, "operands of 'w/5'"),
        ("(a b) w/5 c", 6, "operands of 'w/5'"),
        ("(a -b) w/5 c", 7, "operands"),
        ("!!!", 0, "nothing searchable"),
        ("foo 😀", 4, "nothing searchable"),
        ('""', 0, "nothing searchable in the phrase"),
        ("-", 0, "'-' at position 0 needs a term"),
        ("a.b*", 0, "single word"),
        ("ab日*", 0, "cannot mix CJK"),
        ("**", 0, "at least one letter"),
        ("debug日志~", 0, "single word"),
        ("word~9", 0, "at most 3 edits"),
        ("a not pre/3 b", 2, "not supported"),
    ],
)
def test_errors(query, position, fragment):
    if position is None:
        parse(query)
        return
    with pytest.raises(QueryError) as info:
        parse(query)
    assert fragment in info.value.message
    assert info.value.position == position
    assert str(info.value) == info.value.message


def test_error_is_value_error():
    with pytest.raises(ValueError):
        parse("(")


def test_and_all():
    assert and_all([]) == MatchAll()
    assert and_all([T("a")]) == T("a")
    assert and_all([And((T("a"), T("b"))), MatchAll(), T("c")]) == And((T("a"), T("b"), T("c")))


def test_transform_resolves_participant():
    node = parse("foo participant:bob")

    def resolve(n):
        if isinstance(n, Field) and n.name == "participant":
            return Field("conversation_ids", frozenset({"c1", "c2"}))
        return None

    assert transform(node, resolve) == And((T("foo"), Field("conversation_ids", frozenset({"c1", "c2"}))))


def test_nodes_are_hashable():
    assert len({parse("a w/5 (b OR c)"), parse("a w/5 (b OR c)")}) == 1


@pytest.mark.parametrize(
    "query, expected",
    [
        (
            'whitewash (logs OR evidence) "debug logs"',
            'ALL OF: the word "whitewash"; ANY OF (the word "logs"; the word "evidence"); '
            'the phrase "debug logs"',
        ),
        ("logs w/5 evidence", '"logs" within 5 words of "evidence" (either order)'),
        ("logs pre/1 evidence", '"logs" at most 1 word before "evidence"'),
        ("logs not w/3 evidence", '"logs" with no "evidence" within 3 words (either order)'),
        (
            "(whitewash OR scrub) w/5 (logs OR evidence)",
            '("whitewash" or "scrub") within 5 words of ("logs" or "evidence") (either order)',
        ),
        ("删除证据", 'the phrase "删除证据"'),
        ("清", 'the character "清"'),
        ('"a b"~2', 'the phrase "a b" (in order, up to 2 words between each)'),
        ("wo%%rd", 'words within 2 edits of "word" starting with "wo"'),
        ("white*", 'words matching "white*" (* = any characters, ? = one character)'),
        ("deleted~", 'words with the same stem as "deleted" (stem "delet")'),
        ("NOT a", 'NOT the word "a"'),
        ("sender:bob", 'sender is "bob" (id or name)'),
        ("has:attachment", "has an attachment"),
        ("is:edited", "is edited"),
        ("date:2023-06", "sent from 2023-06-01 00:00:00 UTC to 2023-06-30 23:59:59.999999 UTC (inclusive)"),
        ("date:>=2023-06-01", "sent at or after 2023-06-01 00:00:00 UTC"),
        ("", "every message"),
    ],
)
def test_explain(query, expected):
    assert explain(parse(query)) == expected


def test_explain_resolved_ids():
    text = explain(Field("sender_ids", frozenset({"u2", "u1"})))
    assert text == 'sender id is one of 2: "u1", "u2"'
