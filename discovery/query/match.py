"""Brute-force query evaluation over one text: highlighting for every engine, and the test oracle.

Nothing here uses an index. The text is tokenized with ``discovery.analysis.tokenize`` (the very
tokens every engine indexes) and the query is evaluated token by token, so ``matches`` is the
reference an engine must agree with, and ``spans`` gives the character ranges to highlight.

Semantics (the engines implement exactly these):

- Term: a token equal to the word. Phrase ``"a b c"~S``: the words in this order, each at most
  S + 1 positions after the previous one (S = 0: adjacent); a lone CJK character at a phrase's
  start (end) also matches a bigram ending (starting) with it (:func:`phrase_word_predicate`).
  A single-character CJK query is searched among the per-character unigrams (``cjk_unigrams``).
- Wildcard: ``*`` any run of characters (also none), ``?`` exactly one character, matched against
  whole tokens. Fuzzy: optimal-string-alignment edit distance (insert, delete, substitute, swap of
  two adjacent characters each cost 1) at most ``max_edits``, and the first ``prefix_len``
  characters equal. Stem: tokens whose :func:`stem` equals the word's stem.
- Proximity: every operand has occurrences, each an inclusive interval of token positions (a
  phrase spans its words). The gap between two occurrences is ``later.start - earlier.end`` (so
  adjacent words are 1 apart); overlapping occurrences are never "near" each other.
  ``a w/N b``: an occurrence of a and one of b with 1 <= gap <= N, either order; the combined
  occurrence spans both. ``a pre/N b``: the same with a entirely before b. ``a not w/N b``: an
  occurrence of a with no occurrence of b at a gap 1..N; its occurrences are those of a.
  Inside a proximity operand a single CJK character stands for the indexed tokens that contain
  it (the character itself, or a two-character bigram containing it).
- Fields (case-insensitive, :func:`discovery.query.ast.name_key`): ``sender:`` = sender id exactly,
  or the whole sender name; ``conversation:`` = conversation id exactly, or the whole conversation
  name; ``format:``, ``custodian:``, ``kind:``, ``type:`` (conversation type) = the whole value.
  ``sender_ids`` / ``conversation_ids`` (frozensets, from the search layer) = id in the set.
  ``participant:`` needs case.db and must be resolved to ``conversation_ids`` first.
  ``ids`` (a frozenset of message ids, from the search layer) = the message's id in the set; the
  review fields ``tag:``, ``note:``, ``is:tagged`` and ``is:untagged`` need case.db and must be
  resolved to it first (``discovery.review.resolve_field``).
  ``has:attachment``, ``is:edited``, ``is:deleted``. Dates: inclusive microsecond bounds on
  ``sent_at_us``. ``NOT x`` = every message without x.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

from discovery.analysis import Token, cjk_unigrams, is_cjk, tokenize
from discovery.engine import IndexDoc
from discovery.query.ast import (
    And,
    CjkChar,
    DateRange,
    Field,
    Fuzzy,
    MatchAll,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Stem,
    Term,
    Wildcard,
    has_text,
    name_key,
    range_us,
)

Interval = tuple[int, int]  # inclusive token positions

# ---------------------------------------------------------------------------- word-level rules

# Longest first; a suffix is stripped only if at least 3 characters remain.
STEM_SUFFIXES = (
    "ations", "ation", "ments", "ment", "ness", "ings", "ing", "ers", "er", "ies", "ied", "es", "ed", "s",
)  # fmt: skip


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately small English suffix stripper; the result is always a prefix of WORD.

    Only ASCII-letter words are stemmed. Steps: strip the longest suffix of STEM_SUFFIXES leaving
    at least 3 letters ("s" is not stripped after s, u or i: "class", "bus", "this"); then undouble
    a final doubled consonant other than l and s ("stopp" -> "stop"); then drop a final "e" or "y"
    when at least 3 letters remain ("delete" -> "delet", "apply" -> "appl"), so delete / deleted /
    deletes / deleting and apply / applied / applies / applying each share a stem.
    """
    if not (word.isascii() and word.isalpha()):
        return word
    w = word
    for suffix in STEM_SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "s" and w[-2] in "sui":
                continue
            w = w[: -len(suffix)]
            break
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]
    if len(w) >= 4 and w[-1] in "ey":
        w = w[:-1]
    return w


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transposition).

    With LIMIT, any result above LIMIT may be reported as LIMIT + 1.
    """
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    prev2: list[int] | None = None
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if prev2 is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, prev2[j - 2] + 1)
            cur[j] = value
        if limit is not None and min(cur) > limit and min(prev) > limit:
            return limit + 1  # every later cell builds on one of these two rows
        prev2, prev = prev, cur
    return prev[len(b)]


def fuzzy_matches(node: Fuzzy, token: str) -> bool:
    if node.prefix_len and token[: node.prefix_len] != node.word[: node.prefix_len]:
        return False
    return edit_distance(node.word, token, node.max_edits) <= node.max_edits


@lru_cache(maxsize=4096)
def wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def wildcard_prefix(pattern: str) -> str:
    """The literal characters before the first wildcard (narrows a lexicon scan)."""
    return re.split(r"[*?]", pattern, maxsplit=1)[0]


def term_predicate(node: Node) -> Callable[[str], bool]:
    """For single-token nodes: does a token text match?"""
    if isinstance(node, Term):
        return node.word.__eq__
    if isinstance(node, Wildcard):
        regex = wildcard_regex(node.pattern)
        return lambda text: regex.fullmatch(text) is not None
    if isinstance(node, Fuzzy):
        return lambda text: fuzzy_matches(node, text)
    if isinstance(node, Stem):
        target = stem(node.word)
        return lambda text: text.startswith(target) and stem(text) == target
    if isinstance(node, CjkChar):  # in the positional (text) field: see the module docstring
        char = node.char
        return lambda text: text == char or (len(text) == 2 and char in text)
    raise TypeError(f"not a single-token node: {node!r}")


def phrase_word_predicate(word: str, index: int, count: int) -> Callable[[str], bool]:
    """Which tokens a phrase word matches.

    A single CJK character at the START of a multi-word phrase also matches a bigram ending in it,
    and at the END one starting with it: "把debug" finds "前把debug", "debug清" finds "debug清理"
    (the text's CJK run is indexed as bigrams, the query's lone character is not).
    """
    if count > 1 and len(word) == 1 and is_cjk(word):
        if index == 0:
            return lambda text: text == word or (len(text) == 2 and text[1] == word)
        if index == count - 1:
            return lambda text: text == word or (len(text) == 2 and text[0] == word)
    return word.__eq__


# ---------------------------------------------------------------------------- positional rules


def gap(a: Interval, b: Interval) -> int:
    """Positions from the end of the earlier interval to the start of the later; 0 if they overlap."""
    if a[1] < b[0]:
        return b[0] - a[1]
    if b[1] < a[0]:
        return a[0] - b[1]
    return 0


def near_intervals(
    left: Mapping[Interval, frozenset],
    right: Mapping[Interval, frozenset],
    distance: int,
    ordered: bool,
    negated: bool,
) -> dict[Interval, frozenset]:
    """The occurrences of a proximity operator (see the module docstring).

    Occurrences map an interval to a payload (token indices to highlight; engines pass empty sets).
    """
    out: dict[Interval, frozenset] = {}
    if negated:
        for a, payload in left.items():
            if not any(1 <= gap(a, b) <= distance for b in right):
                out[a] = payload
        return out
    for a, apay in left.items():
        for b, bpay in right.items():
            if ordered and not a[1] < b[0]:
                continue
            if 1 <= gap(a, b) <= distance:
                key = (min(a[0], b[0]), max(a[1], b[1]))
                out[key] = out.get(key, frozenset()) | apay | bpay
    return out


def phrase_intervals(per_word: list[Mapping[Interval, frozenset]], slop: int) -> dict[Interval, frozenset]:
    """Chains of the words in order, each next word 1..slop+1 positions after the previous one."""
    acc = dict(per_word[0])
    for nxt in per_word[1:]:
        step: dict[Interval, frozenset] = {}
        for a, apay in acc.items():
            for b, bpay in nxt.items():
                if a[1] < b[0] <= a[1] + slop + 1:
                    key = (a[0], b[1])
                    step[key] = step.get(key, frozenset()) | apay | bpay
        acc = step
        if not acc:
            break
    return acc


# ---------------------------------------------------------------------------- evaluation


class _Text:
    def __init__(self, text: str):
        self.tokens: list[Token] = tokenize(text)
        self._unigrams: list[Token] | None = None
        self.text = text

    @property
    def unigrams(self) -> list[Token]:
        if self._unigrams is None:
            self._unigrams = cjk_unigrams(self.text)
        return self._unigrams

    def occurrences(self, node: Node) -> dict[Interval, frozenset]:
        if isinstance(node, (Term, Wildcard, Fuzzy, Stem, CjkChar)):
            pred = term_predicate(node)
            return {(t.pos, t.pos): frozenset([i]) for i, t in enumerate(self.tokens) if pred(t.text)}
        if isinstance(node, Phrase):
            per_word = []
            for i, word in enumerate(node.words):
                pred = phrase_word_predicate(word, i, len(node.words))
                per_word.append(
                    {(t.pos, t.pos): frozenset([k]) for k, t in enumerate(self.tokens) if pred(t.text)}
                )
            return phrase_intervals(per_word, node.slop)
        if isinstance(node, Or):
            out: dict[Interval, frozenset] = {}
            for child in node.children:
                for key, payload in self.occurrences(child).items():
                    out[key] = out.get(key, frozenset()) | payload
            return out
        if isinstance(node, Near):
            return near_intervals(
                self.occurrences(node.left),
                self.occurrences(node.right),
                node.distance,
                node.ordered,
                node.negated,
            )
        raise ValueError(f"{type(node).__name__} cannot be used inside a proximity search")

    def char_ranges(self, indices: Iterable[int]) -> set[tuple[int, int]]:
        return {(self.tokens[i].start, self.tokens[i].end) for i in indices}


def _field_matches(node: Field, doc: IndexDoc) -> bool:
    name, value = node.name, node.value
    if name in ("sender_ids", "conversation_ids"):
        attr = "sender_id" if name == "sender_ids" else "conversation_id"
        return getattr(doc, attr) in value  # type: ignore[operator]
    if name == "ids":
        return doc.id in value  # type: ignore[operator]
    if name == "participant":
        raise ValueError("participant: must be resolved to conversation_ids by the search layer")
    if name in REVIEW_FIELDS or (name == "is" and str(value).lower() in REVIEW_FLAGS):
        raise ValueError(f"{name}:{value} must be resolved to message ids by the search layer")
    if not isinstance(value, str):
        raise TypeError(f"field {name} needs a string value")
    if name == "has":
        return value.lower() == "attachment" and doc.has_attachment
    if name == "is":
        return {"edited": doc.edited, "deleted": doc.deleted}.get(value.lower(), False)
    key = name_key(value)
    if not key:
        return False
    if name == "sender":
        return value == doc.sender_id or key == name_key(doc.sender_name)
    if name == "conversation":
        return value == doc.conversation_id or key == name_key(doc.conversation_name)
    attr = KEYWORD_ATTRS.get(name)
    if attr is None:
        raise ValueError(f"unknown field {name!r}")
    return key == name_key(getattr(doc, attr))


# fields that live in case.db's review tables, resolved to Field("ids", ...) by discovery.review
REVIEW_FIELDS = ("tag", "note")
REVIEW_FLAGS = ("tagged", "untagged")  # is:tagged, is:untagged

# query field name -> IndexDoc attribute, for plain keyword fields compared with name_key
KEYWORD_ATTRS = {
    "format": "source_format",
    "custodian": "custodian",
    "kind": "kind",
    "type": "conversation_type",
}


def _eval(node: Node, text: _Text, doc: IndexDoc | None) -> tuple[bool, set[tuple[int, int]]]:
    """(matched, character ranges to highlight). With DOC None, filters count as matched."""
    if doc is None and not has_text(node):
        return True, set()
    if isinstance(node, MatchAll):
        return True, set()
    if isinstance(node, CjkChar):
        hits = {(t.start, t.end) for t in text.unigrams if t.text == node.char}
        return bool(hits), hits
    if isinstance(node, (Term, Phrase, Wildcard, Fuzzy, Stem, Near)):
        occ = text.occurrences(node)
        indices: set[int] = set()
        for payload in occ.values():
            indices |= payload
        return bool(occ), text.char_ranges(indices)
    if isinstance(node, And):
        ranges: set[tuple[int, int]] = set()
        for child in node.children:
            ok, hits = _eval(child, text, doc)
            if not ok:
                return False, set()
            ranges |= hits
        return True, ranges
    if isinstance(node, Or):
        ranges = set()
        any_ok = False
        for child in node.children:
            ok, hits = _eval(child, text, doc)
            if ok:
                any_ok = True
                ranges |= hits
        return any_ok, ranges
    if isinstance(node, Not):
        ok, _ = _eval(node.child, text, doc)
        return not ok, set()
    assert doc is not None  # filters only reach here with a document
    if isinstance(node, Field):
        return _field_matches(node, doc), set()
    if isinstance(node, DateRange):
        start, end = range_us(node)
        ts = doc.sent_at_us
        return (start is None or ts >= start) and (end is None or ts <= end), set()
    raise TypeError(f"unknown query node {node!r}")


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def spans(node: Node, text: str) -> list[tuple[int, int]] | None:
    """Character ranges of TEXT to highlight, merged and sorted; None if the text part fails.

    Filters (fields, dates) are ignored: only the text conditions are checked, so call this on
    messages the engine already returned. Ranges are offsets into TEXT exactly as given.
    """
    ok, ranges = _eval(node, _Text(text), None)
    return _merge(ranges) if ok else None


def matches(node: Node, doc: IndexDoc) -> bool:
    """Does DOC satisfy the whole query (text, fields, dates, flags)? The engine oracle."""
    return _eval(node, _Text(doc.text), doc)[0]
