"""Our own text analyzer: the one definition of a "word" for indexing, querying and highlighting.

Every engine indexes the tokens produced here, the query parser tokenizes terms here, and the
highlighter and the test oracle match against these tokens, so the three can never disagree.

Rules, chosen for evidence:
- Unicode NFKC (full-width Latin becomes ASCII), then case folding;
- zero-width and bidi control marks are removed first ("white\u200bwash" is "whitewash");
- no stop words, no minimum length, positions kept exactly;
- Latin words split on punctuation, dots included ("report.final.xlsx" is three tokens in a row,
  so the exact file name is found as a phrase and "xlsx" alone is found too);
- runs of CJK characters become overlapping bigrams ("清理掉" -> "清理", "理掉") and a lone CJK
  character stays a unigram; the unigrams are also produced separately so one-character queries work;
- a switch between Latin and CJK always splits ("debug日志" -> "debug", "日志").
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

# Zero-width, joiners, bidi embeddings/overrides/isolates, word joiner, BOM, soft hyphen.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")

_CJK_RANGES = (
    "\u2e80-\u2fdf"  # radicals
    "\u3005\u3007\u3021-\u3029\u3038-\u303b"  # ideographic iteration marks and numerals
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3100-\u312f\u31a0-\u31bf"  # bopomofo
    "\u31f0-\u31ff"  # katakana extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified
    "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"  # hangul
    "\uf900-\ufaff"  # compatibility ideographs
    "\U00020000-\U0002ffff"  # extensions B-F
)
_CJK_CHAR = f"[{_CJK_RANGES}]"
# A token is a run of CJK characters, or a run of word characters that are not CJK. (The second
# class is ``(?!CJK)\\w`` written as one character class: [^\\W...] is "a word character and none of
# these"; the same characters, without a lookahead at every one.)
_TOKEN = re.compile(f"({_CJK_CHAR}+)|([^\\W{_CJK_RANGES}]+)")
_IS_CJK = re.compile(f"^{_CJK_CHAR}+$")


class Token(NamedTuple):
    """One indexed token. A named tuple, not a frozen dataclass: highlighting builds one per word
    of every hit, and a tuple is built several times faster (equal fields give equal hashes)."""

    text: str  # the normalized form that is indexed and matched
    pos: int  # position in the token stream (bigrams of one run take consecutive positions)
    start: int  # character offsets into the ORIGINAL text, for highlighting
    end: int


# Token(...) without the generated __new__'s Python frame: ``_new(Token, (text, pos, start, end))``.
_new = tuple.__new__


def normalize(text: str) -> str:
    """NFKC + case folding, invisible marks removed: the form in which words are compared."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)).casefold()


def is_cjk(word: str) -> bool:
    return bool(_IS_CJK.match(word))


def tokenize(text: str) -> list[Token]:
    """The indexed tokens of TEXT with positions and offsets into TEXT itself."""
    if text.isascii():
        return _ascii_tokens(text)
    normalized, offsets = _fold_with_offsets(text)
    if offsets is None:  # one character for one: offsets into NORMALIZED are offsets into TEXT
        offsets = range(len(text) + 1)
    tokens: list[Token] = []
    pos = 0
    for match in _TOKEN.finditer(normalized):
        cjk_run, word = match.groups()
        start, end = match.span()
        if word:
            tokens.append(_new(Token, (word, pos, offsets[start], offsets[end])))
            pos += 1
        elif len(cjk_run) == 1:
            tokens.append(_new(Token, (cjk_run, pos, offsets[start], offsets[end])))
            pos += 1
        else:
            for s in range(start, end - 1):
                tokens.append(_new(Token, (normalized[s : s + 2], pos, offsets[s], offsets[s + 2])))
                pos += 1
    return tokens


def _ascii_tokens(text: str) -> list[Token]:
    """``tokenize`` for ASCII TEXT: its words are ``\\w+`` of the lower-cased text, at the same
    offsets. Splitting and finding each word again is faster than a regex match object per word."""
    spaced = _ascii_words_only(text)
    find = spaced.find
    tokens: list[Token] = []
    end = 0
    for pos, word in enumerate(spaced.split()):
        start = find(word, end)  # only spaces lie between the previous word's end and this one
        end = start + len(word)
        tokens.append(_new(Token, (word, pos, start, end)))
    return tokens


def _ascii_words_only(text: str) -> str:
    """ASCII TEXT lower-cased with every non-word character replaced by a space (same length)."""
    return text.lower().encode("ascii").translate(_ASCII_WORDS_ONLY).decode("ascii")


def cjk_unigrams(text: str) -> list[Token]:
    """Every CJK character as its own token, for single-character queries."""
    if text.isascii():
        return []
    normalized, offsets = _fold_with_offsets(text)
    if offsets is None:  # one character for one, as in tokenize
        offsets = range(len(text) + 1)
    out: list[Token] = []
    pos = 0
    for match in _CJK_RUN.finditer(normalized):
        start, end = match.span()
        for s in range(start, end):
            out.append(_new(Token, (normalized[s], pos, offsets[s], offsets[s + 1])))
            pos += 1
        pos += 1  # a gap between runs, so unigrams of separate runs never look adjacent
    return out


def token_texts(text: str) -> list[str]:
    """Exactly ``[token.text for token in tokenize(text)]``, without positions or offsets (for
    indexing, where a token's position is its place in this list). Much faster."""
    if text.isascii():
        # _ASCII_WORD.findall(text.lower()), faster: every non-word byte becomes a space, then split
        return _ascii_words_only(text).split()
    out: list[str] = []
    for cjk_run, word in _TOKEN.findall(_normalized(text)):
        if word:
            out.append(word)
        elif len(cjk_run) == 1:
            out.append(cjk_run)
        else:
            out.extend([cjk_run[i : i + 2] for i in range(len(cjk_run) - 1)])
    return out


_REMEMBERED = "_discovery_joined_tokens"  # the attribute remember_tokens sets
_REMEMBERING = False  # whether remember_tokens does anything (see remembering_tokens)


@contextmanager
def remembering_tokens(enabled: bool) -> Iterator[None]:
    """While inside, ``remember_tokens`` computes and keeps tokens (if ENABLED: the engine being
    written uses them); else it does nothing. Ingest sets this around a run; forked workers inherit it."""
    global _REMEMBERING  # noqa: PLW0603 - a per-process switch, like the run it is set for
    previous, _REMEMBERING = _REMEMBERING, enabled
    try:
        yield
    finally:
        _REMEMBERING = previous


def remember_tokens(holder: object, text: str) -> None:
    """Compute ``token_texts(TEXT)`` now (joined by single spaces: no token holds one, and none is
    empty) and keep it on HOLDER (a message, then its index document), with TEXT.

    Ingest's parsing worker processes do this (when ``remembering_tokens``), so the process
    writing the index does not have to; ``remembered_joined_tokens`` hands them out only for that
    very text, else tokenizes afresh.
    """
    if _REMEMBERING:
        holder.__dict__[_REMEMBERED] = (text, " ".join(token_texts(text)))


def carry_tokens(source: object, target: object) -> None:
    """Pass on what ``remember_tokens`` kept on SOURCE (if anything) to TARGET."""
    remembered = source.__dict__.get(_REMEMBERED)
    if remembered is not None:
        target.__dict__[_REMEMBERED] = remembered


def remembered_joined_tokens(holder: object, text: str) -> str:
    """``" ".join(token_texts(TEXT))``: as remembered on HOLDER for an equal text, else computed now."""
    remembered = holder.__dict__.get(_REMEMBERED)
    if remembered is not None and remembered[0] == text:
        return remembered[1]
    return " ".join(token_texts(text))


def cjk_unigram_texts(text: str) -> list[str]:
    """Exactly ``[token.text for token in cjk_unigrams(text)]`` (the positions are not kept)."""
    if text.isascii():
        return []
    return [char for run in _CJK_RUN.findall(_normalized(text)) for char in run]


def query_words(text: str) -> list[str]:
    """The token texts a query word or phrase turns into, in order."""
    return [token.text for token in tokenize(text)]


_ASCII_WORD = re.compile(r"\w+")  # on ASCII text, \w is [A-Za-z0-9_] and nothing is CJK
# bytes.translate table: ASCII word characters kept, every other byte a space (for str.split)
_ASCII_WORDS_ONLY = bytes(c if re.fullmatch(r"\w", chr(c)) else 0x20 for c in range(256))
_CJK_RUN = re.compile(f"{_CJK_CHAR}+")
_COMBINING: frozenset[str] | None = None  # every character with a non-zero combining class


def _combining() -> frozenset[str]:
    global _COMBINING  # noqa: PLW0603 - built once, on the first non-ASCII text (~70 ms)
    if _COMBINING is None:
        _COMBINING = frozenset(chr(c) for c in range(sys.maxunicode + 1) if unicodedata.combining(chr(c)))
    return _COMBINING


class _FoldTable(dict):
    """str.translate table: a character's normalized form, computed on first sight and cached."""

    def __missing__(self, code: int) -> str:
        folded = unicodedata.normalize("NFKC", _INVISIBLE.sub("", chr(code))).casefold()
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def _normalized(text: str) -> str:
    """``_normalize_with_offsets(text)[0]``: the same characters, without building the offsets.

    Without combining marks every character is a cluster of its own, so the clusters' normal
    forms are just each character's, looked up in a cache by str.translate.
    """
    if text.isascii():
        return text.lower()
    global _LAST  # noqa: PLW0603 - a one-entry cache: indexing reads each text for two fields
    last = _LAST
    if last[0] is text:
        return last[1]
    # Without combining marks every character is its own cluster: fold each through the cache.
    simple = _combining().isdisjoint(text)
    normalized = text.translate(_FOLD) if simple else _normalize_with_offsets(text)[0]
    _LAST = (text, normalized)
    return normalized


_LAST: tuple[str, str] = ("", "")


def _normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """Normalize TEXT and map every index of the result back to an index of TEXT.

    NFKC and case folding can change lengths ("ﬁ" -> "fi", "ß" -> "ss"), so each original
    character (with the combining marks that follow it) is normalized on its own and every
    output character points back to where that cluster starts. The list has one extra entry,
    the length of TEXT, so an exclusive end offset maps too.
    """
    normalized, offsets = _fold_with_offsets(text)
    return normalized, list(range(len(text) + 1)) if offsets is None else offsets


def _fold_with_offsets(text: str) -> tuple[str, list[int] | None]:
    """``_normalize_with_offsets``, with None for offsets when every character of TEXT became
    exactly one character (index i of the result comes from index i of TEXT): the usual case."""
    if text.isascii():
        return text.lower(), None
    if not _combining().isdisjoint(text):
        return _slow_normalize_with_offsets(text)
    # Without combining marks each character is a cluster of its own: fold each through the cache.
    folded = text.translate(_FOLD)
    # Only invisible marks fold to no character (a test checks every code point), so without
    # them equal lengths mean every character folded to exactly one.
    if len(folded) == len(text) and not _INVISIBLE.search(text):
        return folded, None
    return folded, _character_offsets(text)


def _character_offsets(text: str) -> list[int]:
    """The offsets for TEXT without combining marks: each index once per character it folds to."""
    fold = _FOLD
    offsets: list[int] = []
    for index, char in enumerate(text):
        width = len(fold[ord(char)])
        if width == 1:
            offsets.append(index)
        elif width:
            offsets.extend([index] * width)
    offsets.append(len(text))
    return offsets


def _slow_normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """``_normalize_with_offsets`` cluster by cluster: the reference the fast paths must equal."""
    pieces: list[str] = []
    offsets: list[int] = []
    index = 0
    length = len(text)
    while index < length:
        end = index + 1
        while end < length and unicodedata.combining(text[end]):
            end += 1
        cluster = _INVISIBLE.sub("", text[index:end])
        if cluster:
            folded = unicodedata.normalize("NFKC", cluster).casefold()
            pieces.append(folded)
            offsets.extend([index] * len(folded))
        index = end
    offsets.append(length)
    return "".join(pieces), offsets
