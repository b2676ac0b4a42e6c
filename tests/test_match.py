import pytest

from discovery.engine import IndexDoc
from discovery.query import Field, Near, Term, matches, parse, spans, stem
from discovery.query.match import edit_distance

MIXED = "上线前把debug logs清理掉"


def hl(query, text):
    """The highlighted substrings (None if no match)."""
    found = spans(parse(query), text)
    return None if found is None else [text[s:e] for s, e in found]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("logs", ["logs"]),
        ("LOGS", ["logs"]),
        ("清理", ["清理"]),
        ("清理掉", ["清理掉"]),
        ("上线前", ["上线前"]),
        ("debug日志", None),  # 日志 is not in the text
        ('"debug logs"', ["debug", "logs"]),  # every matched token; the gap is not highlighted
        ("debug logs", ["debug", "logs"]),
        ("debug清理", None),  # not adjacent: logs is between
        ("logs清理", ["logs清理"]),  # adjacent across the script switch
        ("把debug", ["前把debug"]),  # a lone CJK char at a phrase edge matches its bigram; touching merge
        ("debug清", None),  # not adjacent (logs between)
        ("logs清", ["logs清理"]),
        ("前把debug", ["前把debug"]),
        ("把 debug", ["把debug"]),  # two words ANDed: the character 把 (unigram) and debug
        ("清", ["清"]),
        ("掉", ["掉"]),
        ("洗", None),
        ("debug w/1 logs", ["debug", "logs"]),
        ("debug w/1 清理", None),
        ("debug w/2 清理", ["debug", "清理"]),
        ("清理 pre/2 debug", None),
        ("debug pre/2 清理", ["debug", "清理"]),
        ("de*", ["debug"]),
        ("lo?s", ["logs"]),
        ("logs -debug", None),
        ("logs OR nothing", ["logs"]),
        ("nothing OR other", None),
        ("NOT nothing", []),
    ],
)
def test_mixed_script_spans(query, expected):
    assert hl(query, MIXED) == expected


def test_spans_offsets_in_original_text_full_width_and_zero_width():
    text = "请把ＤＥＢＵＧ white\u200bwash 掉"
    assert hl("debug", text) == ["ＤＥＢＵＧ"]
    assert hl("whitewash", text) == ["white\u200bwash"]
    assert hl('"debug whitewash"', text) == ["ＤＥＢＵＧ", "white\u200bwash"]
    assert hl("WHITE*", text) == ["white\u200bwash"]


def test_case_and_ligatures():
    assert hl("strasse", "Die STRASSE und die Straße") == ["STRASSE", "Straße"]
    assert hl("file", "ﬁle") == ["ﬁle"]


def test_spans_merge_overlapping_bigrams_and_sort():
    assert spans(parse("理掉 OR 清理"), MIXED) == [(14, 17)]
    text = "b a b"
    assert spans(parse("b OR a"), text) == [(0, 1), (2, 3), (4, 5)]


def test_filters_do_not_block_highlighting():
    assert hl("logs sender:bob", MIXED) == ["logs"]
    assert hl("logs -sender:bob date:2020", MIXED) == ["logs"]
    assert hl("sender:bob", MIXED) == []


@pytest.mark.parametrize(
    "query, text, ok",
    [
        # w/N: |pos_b - pos_a| <= N; adjacent words are 1 apart
        ("a w/1 b", "a b", True),
        ("a w/1 b", "b a", True),
        ("a w/1 b", "a x b", False),
        ("a w/2 b", "a x b", True),
        ("a w/3 b", "a x x b", True),
        ("a w/2 b", "a x x b", False),
        ("a pre/2 b", "a x b", True),
        ("a pre/2 b", "b x a", False),
        ("a pre/5 b", "b a", False),
        ("a w/5 a", "a", False),  # one occurrence is never near itself
        ("a w/5 a", "a x a", True),
        # phrases: distance from the end of the earlier to the start of the later
        ('"a b" w/1 c', "a b c", True),
        ('"a b" w/1 c', "c a b", True),
        ('"a b" w/1 c', "a b x c", False),
        ('"a b" w/2 c', "a b x c", True),
        ('"a b" pre/1 c', "c a b", False),
        ('"a b" w/3 b', "a b", False),  # overlapping is not near
        # not w/N
        ("a not w/2 b", "a x b", False),
        ("a not w/2 b", "a x x b", True),
        ("a not w/2 b", "a", True),
        ("a not w/2 b", "b a x x x a", True),  # the second a is far from b
        ("a not w/2 b", "b", False),
        ("a not w/1 a", "a", True),
        ("a not w/1 a", "a a", False),
        # groups and nesting
        ("(a OR c) w/1 (b OR d)", "c d", True),
        ("(a w/1 b) w/1 c", "a b c", True),
        ("(a w/1 b) w/1 c", "a b x c", False),
        ("(a w/1 b) w/2 c", "c x b a", True),
        ("(a not w/1 b) w/1 c", "b a c", False),
        ("(a not w/1 b) w/1 c", "c a x b", True),
        # phrase slop: up to S words between each pair, in order
        ('"a b"~1', "a x b", True),
        ('"a b"~1', "a x x b", False),
        ('"a b"~1', "b a", False),
        ('"a b c"~1', "a x b x c", True),
        ('"a a"', "a a", True),
        ('"a a"', "a", False),
        # CJK characters inside proximity stand for the bigrams containing them
        ("清 w/1 logs", MIXED, True),
        ("上 w/1 debug", MIXED, False),
        ("前 w/1 debug", MIXED, True),
    ],
)
def test_proximity_semantics(query, text, ok):
    assert (spans(parse(query), text) is not None) is ok


@pytest.mark.parametrize(
    "query, text, ok",
    [
        ("word~1", "ward", True),
        ("word~1", "wrod", True),  # adjacent swap is one edit
        ("word~1", "wodr", True),
        ("word~1", "wards", False),
        ("word~2", "wards", True),
        ("wo%%rd", "wxxd", False),  # prefix "wo" must match
        ("wo%%rd", "woxxd", True),
        ("word%", "words", True),
        ("word%", "ward", False),
        ("%word", "ward", True),
        ("apply~", "applied applies", True),
        ("applied~", "applying", True),
        ("deleted~", "delete", True),
        ("deleted~", "deli", False),
        ("white*sh", "whitewash", True),
        ("white*sh", "whitewashed", False),
        ("wh?te", "white", True),
        ("wh?te", "wheate", False),
        ("*wash", "whitewash", True),
        ("*", "x", None),
    ],
)
def test_word_operators(query, text, ok):
    if ok is None:
        with pytest.raises(ValueError):
            parse(query)
        return
    assert (spans(parse(query), text) is not None) is ok


def test_edit_distance():
    assert edit_distance("invoice", "invioce") == 1
    assert edit_distance("abc", "abc") == 0
    assert edit_distance("", "abc") == 3
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("kitten", "sitting", limit=1) == 2
    assert edit_distance("ca", "abc") == 3  # optimal string alignment, not unrestricted Damerau


def test_stem_is_prefix():
    for word in ["running", "applies", "deleted", "classes", "x", "logs", "清理", "ab"]:
        assert word.startswith(stem(word))


def doc(**kw):
    base = {
        "id": "m1",
        "text": "please whitewash the logs",
        "conversation_id": "oc_1",
        "conversation_name": "Ops  Team",
        "conversation_type": "group",
        "sender_id": "u_1",
        "sender_name": "Li Lei",
        "source_format": "lark_api",
        "custodian": "Alice",
        "kind": "text",
        "sent_at_us": 1_685_620_800_000_000,  # 2023-06-01T12:00:00Z
        "day": 19509,
    }
    base.update(kw)
    return IndexDoc(**base)


@pytest.mark.parametrize(
    "query, ok",
    [
        ("whitewash", True),
        ("whitewash sender:u_1", True),
        ("whitewash sender:U_1", False),  # ids are exact
        ('sender:"li lei"', True),
        ('sender:"LI   LEI"', True),
        ("sender:li", False),  # whole names only
        ("conversation:oc_1", True),
        ('conversation:"ops team"', True),
        ("conversation:ops", False),
        ("format:LARK_API", True),
        ("custodian:alice", True),
        ("kind:text", True),
        ("type:group", True),
        ("type:dm", False),
        ("has:attachment", False),
        ("-has:attachment", True),
        ("is:edited", False),
        ("is:deleted", False),
        ("date:2023-06-01", True),
        ("date:2023-06", True),
        ("date:2023-05", False),
        ("date:>2023-06-01", False),
        ("date:>=2023-06-01T12:00:00", True),
        ("date:>2023-06-01T11:59:59.999999", True),
        ("date:<2023-06-01T12:00:00", False),
        ("date:<=2023-06-01T12:00:00", True),
        ("NOT whitewash", False),
        ("NOT nothing", True),
        ("", True),
        ("whitewash -sender:u_1", False),
    ],
)
def test_matches_fields(query, ok):
    assert matches(parse(query), doc()) is ok


def test_matches_flags_and_resolved_ids():
    d = doc(has_attachment=True, edited=True, deleted=True)
    assert matches(parse("has:attachment is:edited is:deleted"), d)
    assert matches(Field("sender_ids", frozenset({"u_1", "u_2"})), d)
    assert not matches(Field("conversation_ids", frozenset({"oc_2"})), d)
    with pytest.raises(ValueError):
        matches(parse("participant:bob"), d)


def test_near_rejects_non_text_operands():
    with pytest.raises(ValueError):
        spans(Near(Term("a"), Field("sender", "x"), 3), "a b")
