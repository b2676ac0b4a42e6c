"""The analyzer's fast paths for highlighting give exactly what the cluster-by-cluster reference gives.

``tokenize`` skips the per-character normalization when it can (ASCII text; text whose characters
each fold to one character; text without combining marks) and builds tokens as named tuples. The
reference below is the plain algorithm on ``_slow_normalize_with_offsets``; these tests hold the
two equal, token for token (text, position and both offsets).
"""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given, settings

from discovery import analysis
from discovery.analysis import Token, cjk_unigrams, tokenize
from tests.test_perf_paths import any_text

Row = tuple[str, int, int, int]


def reference_tokenize(text: str) -> list[Row]:
    """``tokenize`` as first written: every cluster normalized on its own, every match looked up."""
    normalized, offsets = analysis._slow_normalize_with_offsets(text)
    rows: list[Row] = []
    for match in analysis._TOKEN.finditer(normalized):
        cjk_run, word = match.group(1), match.group(2)
        start, end = match.start(), match.end()
        if word or len(cjk_run) == 1:
            rows.append((word or cjk_run, len(rows), offsets[start], offsets[end]))
        else:
            for i in range(len(cjk_run) - 1):
                s = start + i
                rows.append((cjk_run[i : i + 2], len(rows), offsets[s], offsets[s + 2]))
    return rows


def reference_cjk_unigrams(text: str) -> list[Row]:
    """``cjk_unigrams`` as first written, on the reference normalization."""
    normalized, offsets = analysis._slow_normalize_with_offsets(text)
    rows: list[Row] = []
    pos = 0
    for match in analysis._TOKEN.finditer(normalized):
        run = match.group(1)
        if not run:
            continue
        for i, char in enumerate(run):
            s = match.start() + i
            rows.append((char, pos, offsets[s], offsets[s + 1]))
            pos += 1
        pos += 1
    return rows


def rows(tokens: list[Token]) -> list[Row]:
    return [(t.text, t.pos, t.start, t.end) for t in tokens]


def assert_same_as_reference(text: str) -> None:
    assert rows(tokenize(text)) == reference_tokenize(text), repr(text)
    assert rows(cjk_unigrams(text)) == reference_cjk_unigrams(text), repr(text)
    assert analysis._normalize_with_offsets(text) == analysis._slow_normalize_with_offsets(text), repr(text)


CHAT = [
    "",
    " ",
    "ok",
    "Please delete the logs before the audit, thanks!",
    "see Q3_audit_report.final.xlsx now -- call me @ 5pm?",
    "上线前把debug logs清理掉",
    "请把证据全部删除，不要留下任何记录。",
    "删 the logs",
    "ログを消して 로그 삭제",
    "Straße und ﬁle café",  # expanding characters: ß -> ss, ﬁ -> fi
    "cafe\u0301 re\u0301sume\u0301",  # combining marks
    "white\u200bwash \u202elogs\u202c \ufeffok\u00ad",  # invisible marks
    "Stra\u200bße",  # as long as its folded form: one mark folds to none, ß to two
    "👨\u200d👩\u200d👧 family chat ❤\ufe0f",  # zero-width joiners in emoji
    "ＷＨＩＴＥＷＡＳＨ ｶﾞ ①②",  # full width, half width, circled digits
    "İstanbul ΣΑΣ σας ǅ \u0345",  # case folding that changes length, or combining alone
    "\u0301leading mark",
    "\u3099\u309a 日本",
    "x\ud800y",  # a lone surrogate, as surrogateescape leaves in text
]


@pytest.mark.parametrize("text", CHAT)
def test_chat_texts_tokenize_as_the_reference(text):
    assert_same_as_reference(text)
    assert_same_as_reference(text + " " + text.upper())


def test_only_invisible_marks_fold_to_no_character():
    """The one-for-one fast path counts on this: equal lengths then mean each character folded to one."""
    # (what _FOLD computes for a visible character, without filling its cache with every one)
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if not analysis._INVISIBLE.match(char):
            assert unicodedata.normalize("NFKC", char).casefold(), hex(code)


def test_sampled_code_points_tokenize_as_the_reference():
    for code in range(0, sys.maxunicode + 1, 29):  # every 29th: the whole range, quickly
        char = chr(code)
        assert_same_as_reference(f"a{char}b 日{char}本")
    for char in "ßﬁİ\u200b\u200d\u0301\u0345\u3099ｶ①Σς😀":
        assert_same_as_reference(f"a{char}b 日{char}本 {char}{char}")


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_any_text_tokenizes_as_the_reference(text):
    assert_same_as_reference(text)


def test_a_token_is_an_immutable_record_with_the_same_fields():
    token = Token("logs", 3, 10, 14)
    assert (token.text, token.pos, token.start, token.end) == ("logs", 3, 10, 14)
    assert token == Token("logs", 3, 10, 14)
    assert hash(token) == hash(Token("logs", 3, 10, 14))
    assert token != Token("logs", 3, 10, 15)
    assert repr(token) == "Token(text='logs', pos=3, start=10, end=14)"
    with pytest.raises(AttributeError):
        token.pos = 4  # type: ignore[misc]
    assert type(tokenize("logs")[0]) is Token
    assert type(tokenize("日志 ß")[0]) is Token
    assert type(cjk_unigrams("日志")[0]) is Token
