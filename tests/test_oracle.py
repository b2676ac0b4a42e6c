"""Every engine (Whoosh, Tantivy) must return exactly the documents the brute-force matcher accepts.

Hypothesis builds small corpora (CJK, mixed scripts, punctuation, emoji, zero-width characters,
full-width Latin, case variants) and queries drawn from their vocabulary; any difference between
an engine's id set and the oracle's is a bug in the parser, engine or matcher. Both engines agree
with the oracle, so they agree with each other.
"""

import tempfile
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discovery.analysis import tokenize
from discovery.engine import IndexDoc
from discovery.query import QueryError, matches, parse, spans

LATIN = [
    "whitewash", "whitewashed", "white", "wash", "logs", "log", "logging", "debug", "evidence", "scrub",
    "a", "b", "x", "delete", "deleted", "deletes", "file", "files", "report", "final", "xlsx",
    "invoice", "invioce", "audit", "the", "wash_it", "v2", "42",
]  # fmt: skip
CJK = ["清理", "清理掉", "删除", "证据", "洗白", "日志", "上线前", "清", "掉", "把", "ログ", "로그", "白"]
SEPARATORS = [" ", " ", " ", ", ", ".", "😀", "", "\u200b", "\n", "-", "／", "!"]
SENDERS = [("u1", "Li Lei"), ("u2", "Han Meimei"), ("u3", "ALICE")]
DAY = 86_400_000_000
T0 = 19_509 * DAY  # 2023-06-01T00:00:00Z
TIMES = [T0, T0 + 1, T0 + DAY - 1, T0 + DAY, T0 + DAY // 2, T0 - 1, T0 + 3 * DAY + 7]


def fullwidth(word):
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)


@st.composite
def units(draw):
    word = draw(st.sampled_from(LATIN + CJK))
    how = draw(st.sampled_from(["plain", "plain", "upper", "title", "full", "zw"]))
    if how == "upper":
        return word.upper()
    if how == "title":
        return word.title()
    if how == "full":
        return fullwidth(word)
    if how == "zw" and len(word) > 1:
        return word[0] + "\u200b" + word[1:]
    return word


@st.composite
def texts(draw):
    parts = draw(st.lists(st.tuples(units(), st.sampled_from(SEPARATORS)), max_size=9))
    return "".join(u + s for u, s in parts)


@st.composite
def docs(draw, i):
    sender_id, sender_name = draw(st.sampled_from(SENDERS))
    return IndexDoc(
        id=f"d{i}",
        text=draw(texts()),
        conversation_id=draw(st.sampled_from(["c1", "c2"])),
        conversation_name=draw(st.sampled_from(["Ops Team", "secret"])),
        conversation_type=draw(st.sampled_from(["group", "dm"])),
        sender_id=sender_id,
        sender_name=sender_name,
        source_format="lark_api",
        custodian=draw(st.sampled_from(["alice", "Bob Smith"])),
        kind="text",
        sent_at_us=(ts := draw(st.sampled_from(TIMES))),
        day=ts // DAY,
        has_attachment=draw(st.booleans()),
        edited=draw(st.booleans()),
        deleted=draw(st.booleans()),
    )


@st.composite
def corpora(draw):
    n = draw(st.integers(min_value=1, max_value=7))
    return [draw(docs(i)) for i in range(n)]


def _vocab(corpus):
    tokens = sorted({t.text for d in corpus for t in tokenize(d.text)} - {"not"})
    return tokens or ["logs"]


@st.composite
def words(draw, corpus):
    """One query word: a corpus token, a raw variant, or a pool word (maybe absent)."""
    vocab = _vocab(corpus)
    kind = draw(st.sampled_from(["token", "token", "token", "raw", "pool"]))
    if kind == "token":
        return draw(st.sampled_from(vocab))
    if kind == "raw":
        return draw(units())
    return draw(st.sampled_from(LATIN + CJK))


@st.composite
def wildcards(draw, corpus):
    token = draw(st.sampled_from(_vocab(corpus)))
    k = draw(st.integers(min_value=0, max_value=len(token)))
    shape = draw(st.sampled_from(["prefix", "suffix", "infix", "one"]))
    if shape == "prefix":
        pattern = token[: max(k, 1)] + "*"
    elif shape == "suffix":
        pattern = "*" + token[min(k, len(token) - 1) :]
    elif shape == "infix" and len(token) >= 2:
        pattern = token[0] + "*" + token[-1]
    else:
        i = min(k, len(token) - 1)
        pattern = token[:i] + "?" + token[i + 1 :]
        if pattern == "?":
            pattern = token + "?"
    return pattern


@st.composite
def fuzzies(draw, corpus):
    token = draw(st.sampled_from(_vocab(corpus)))
    mutate = draw(st.booleans())
    if mutate and len(token) > 1:
        i = draw(st.integers(min_value=0, max_value=len(token) - 2))
        token = token[:i] + token[i + 1] + token[i] + token[i + 2 :]  # swap two neighbours
    style = draw(st.sampled_from(["lucene", "percent", "stem"]))
    if style == "lucene":
        return f"{token}~{draw(st.integers(min_value=0, max_value=2))}"
    if style == "stem":
        return token + "~"
    k = draw(st.integers(min_value=0, max_value=len(token)))
    return token[:k] + "%" * draw(st.integers(min_value=1, max_value=2)) + token[k:]


@st.composite
def phrases(draw, corpus):
    doc = draw(st.sampled_from(corpus))
    tokens = [t.text for t in tokenize(doc.text) if t.text != "not"]
    if len(tokens) >= 2 and draw(st.booleans()):
        i = draw(st.integers(min_value=0, max_value=len(tokens) - 2))
        n = draw(st.integers(min_value=2, max_value=3))
        chosen = tokens[i : i + n]
        if draw(st.booleans()) and len(chosen) > 2:
            chosen = [chosen[0], chosen[2]]
    else:
        chosen = [draw(words(corpus)), draw(words(corpus))]
    slop = draw(st.sampled_from(["", "", "~1", "~2"]))
    return '"' + " ".join(chosen) + '"' + slop


@st.composite
def operands(draw, corpus):
    kind = draw(st.sampled_from(["word", "word", "phrase", "wild", "fuzzy", "group", "near"]))
    if kind == "word":
        return draw(words(corpus))
    if kind == "phrase":
        return draw(phrases(corpus))
    if kind == "wild":
        return draw(wildcards(corpus))
    if kind == "fuzzy":
        return draw(fuzzies(corpus))
    if kind == "group":
        return f"({draw(words(corpus))} OR {draw(wildcards(corpus))})"
    return f"({draw(words(corpus))} w/{draw(st.integers(1, 3))} {draw(words(corpus))})"


@st.composite
def nears(draw, corpus):
    op = draw(st.sampled_from(["w", "w", "pre", "not w"]))
    n = draw(st.integers(min_value=1, max_value=4))
    return f"{draw(operands(corpus))} {op}/{n} {draw(operands(corpus))}"


FILTERS = [
    "sender:u1", 'sender:"li lei"', "sender:alice", "conversation:c2", 'conversation:"OPS TEAM"',
    'custodian:"bob smith"', "type:dm", "has:attachment", "is:edited", "is:deleted",
    "date:2023-06-01", "date:2023-06-02", "date:<2023-06-01", "date:>=2023-06-01T00:00:00.000001",
    "date:2023-06-01T00:00:00.000001..2023-06-01T23:59:59.999998", "date:2023-06", "date:..2023-06-02",
]  # fmt: skip


@st.composite
def queries(draw, corpus, depth=0):
    choices = ["word", "word", "phrase", "wild", "fuzzy", "near", "near", "filter"]
    if depth < 2:
        choices += ["and", "or", "not", "implicit"]
    kind = draw(st.sampled_from(choices))
    if kind == "word":
        return draw(words(corpus))
    if kind == "phrase":
        return draw(phrases(corpus))
    if kind == "wild":
        return draw(wildcards(corpus))
    if kind == "fuzzy":
        return draw(fuzzies(corpus))
    if kind == "near":
        return draw(nears(corpus))
    if kind == "filter":
        return draw(st.sampled_from(FILTERS))
    left = draw(queries(corpus, depth + 1))
    if kind == "not":
        return draw(st.sampled_from(["NOT ", "-"])) + f"({left})"
    right = draw(queries(corpus, depth + 1))
    op = {"and": draw(st.sampled_from(["AND", "AND NOT"])), "or": "OR", "implicit": ""}[kind]
    return f"({left}) {op} ({right})"


@st.composite
def cases(draw):
    corpus = draw(corpora())
    qs = draw(st.lists(queries(corpus), min_size=1, max_size=6))
    split = draw(st.integers(min_value=0, max_value=len(corpus)))  # two commits: maybe two segments
    stale = draw(st.sampled_from(corpus))  # indexed first with other text, then replaced
    return corpus, qs, split, stale


@pytest.fixture(scope="module", params=["whoosh", "tantivy"])
def engine_class(request):
    if request.param == "tantivy":
        pytest.importorskip("tantivy")  # an optional extra (`make test` installs it)
        from discovery.engine.tantivy_engine import TantivyEngine

        return TantivyEngine
    from discovery.engine.whoosh_engine import WhooshEngine

    return WhooshEngine


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(case=cases())
def test_engine_agrees_with_oracle(engine_class, case):
    corpus, qs, split, stale = case
    with tempfile.TemporaryDirectory() as tmp:
        engine = engine_class(tmp)
        try:
            engine.add([replace(stale, text="stale copy whitewash 清理 logs")])
            engine.add(corpus[:split])
            engine.commit()
            engine.add(corpus[split:])
            engine.commit()
            assert engine.doc_count() == len(corpus)  # the stale copy was replaced, not duplicated
            for text in qs:
                try:
                    node = parse(text)
                except QueryError:
                    continue  # e.g. a wildcard on a word the analyzer splits; the parser said so
                expected = sorted(d.id for d in corpus if matches(node, d))
                found = sorted(engine.all_ids(node))
                assert found == expected, f"query {text!r} -> {node!r}"
                result = engine.search(node, sort="time_desc", limit=3)
                assert result.total == len(expected)
                assert set(result.ids) <= set(expected) and len(result.ids) == min(3, len(expected))
        finally:
            engine.close()


@settings(max_examples=60, deadline=None)
@given(texts(), st.data())
def test_spans_point_at_matching_tokens(text, data):
    """Every highlighted range covers whole tokens of TEXT, and a match always has a range."""
    tokens = tokenize(text)
    if not tokens:
        return
    token = data.draw(st.sampled_from(tokens))
    node = parse(token.text)
    ranges = spans(node, text)
    assert ranges, (text, token)
    assert any(s <= token.start and token.end <= e for s, e in ranges), (text, token, ranges)
