"""The one query language of discovery (dtSearch-shaped, with Lucene phrase slop and fuzzy).

Grammar, loosest binding first (hand-written recursive descent; never Whoosh's parser)::

    query   := or_expr
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= unary (["AND"] unary)*          bare words are ANDed; "AND NOT x" / "NOT x" = without x
    unary   := ("NOT" | "-") unary | near
    near    := primary (("w/N" | "pre/N" | "not w/N") primary)*     left-associative
    primary := "(" or_expr ")" | "\"phrase\"" ["~N"] | field:value | word

- Operators AND, OR, NOT are recognised in UPPER CASE only (a lower-case "and" is a word, as it is
  in chat text); w/N, pre/N and "not w/N" in any case. An empty query matches every message.
- Proximity: ``a w/N b`` = a and b at most N positions apart, either order (adjacent words are 1
  apart; "a x x b" is a w/3 b). For phrases and groups the distance is from the end of the earlier
  match to the start of the later; the two matches may not overlap. ``a pre/N b`` = a before b.
  ``a not w/N b`` = an a with no b within N. Operands: words, phrases, wildcards, fuzzy and stem
  words, and parenthesised OR-groups or proximity expressions of these. N >= 1.
- Phrases: ``"a b"`` exact; ``"a b"~S`` = the words in order with up to S other words between
  each pair. Inside quotes everything is literal text (no wildcards). A word that the analyzer
  splits into several tokens (``debug日志``, ``report.final.xlsx``, ``删除证据``) is a phrase.
- Wildcards ``*`` (any run of characters) and ``?`` (one character) anywhere in one word.
  Fuzzy: ``word~N`` (Lucene: N edits, N <= 3), ``wo%%rd`` (dtSearch: the letters before the first
  % are exact, one edit per %). Stemming: ``word~`` (see ``discovery.query.match.stem``).
- A single CJK character is searched per character (CjkChar); longer CJK runs as bigram phrases.
- Fields: sender, participant, conversation, format, custodian, kind, type (conversation type),
  date, has:attachment, is:edited, is:deleted; values may be quoted (``sender:"Li Lei"``).
- Review fields (``discovery.review``; the search layer resolves them from case.db): ``tag:hot``,
  ``tag:"needs second look"`` (messages carrying the tag now; ``-tag:x`` those without it),
  ``is:tagged`` / ``is:untagged`` (any tag / none), ``note:word`` or ``note:"a phrase"`` (messages
  with a note matching the word or phrase: wildcards, fuzzy and stemming work as in the text).
  Dates (UTC, inclusive): ``date:2023-06-01``, ``date:2023-06``, ``date:2023``,
  ``date:2023-06-01..2023-06-30``, ``date:2023-06-01..``, ``date:..2023-06-30``,
  ``date:>=2023-06-01``, ``date:>2023-06-01`` (from the next day), ``date:<2023-07-01``,
  ``date:<=2023-06-30``; an ISO timestamp (``2023-06-01T12:00:00+08:00``) is an exact instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dateutil import parser as dateparser

from discovery.analysis import is_cjk, normalize, query_words
from discovery.query.ast import (
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
    and_all,
    name_key,
    or_any,
    walk,
)

FIELDS = (
    "sender", "participant", "conversation", "format", "custodian", "kind", "type", "date", "has", "is",
    "tag", "note",
)  # fmt: skip
HAS_VALUES = ("attachment",)
IS_VALUES = ("edited", "deleted", "tagged", "untagged")
MAX_EDITS = 3

_QUOTES = '"\u201c\u201d'  # straight and curly double quotes
_STOP = set("()") | set(_QUOTES)
_NEAR = re.compile(r"(?i)(w|pre)/(\d+)")
_NEAR_BAD = re.compile(r"(?i)(w|pre)/(\d.*)?")
_FIELD = re.compile(r"([A-Za-z_]+):(.*)", re.DOTALL)
_ONE_MICRO = timedelta(microseconds=1)


class QueryError(ValueError):
    """A query that cannot be parsed; POSITION is the 0-based character offset in the query."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return self.message


@dataclass
class _Tok:
    kind: str  # LP RP AND OR NOT NEG NEAR PHRASE WORD FIELD EOF
    text: str
    pos: int
    value: object = None


# ---------------------------------------------------------------------------- lexer


def _lex(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            toks.append(_Tok("LP" if c == "(" else "RP", c, i))
            i += 1
        elif c in _QUOTES:
            content, end = _quoted(query, i)
            slop = None
            if end < n and query[end] == "~":
                m = re.match(r"~(\d+)", query[end:])
                if not m:
                    message = f"'~' at position {end} after a phrase needs a number, e.g. \"a b\"~3"
                    raise QueryError(message, end)
                slop = int(m.group(1))
                end += m.end()
            toks.append(_Tok("PHRASE", content, i, slop))
            i = end
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in _STOP:
                j += 1
            chunk = query[i:j]
            if chunk and set(chunk) == {"-"} and j < n and (query[j] in _QUOTES or query[j] == "("):
                toks.extend(_Tok("NEG", "-", i + k) for k in range(len(chunk)))  # -"a b", -(a OR b)
                i = j
                continue
            quoted_field = re.fullmatch(r"(-*)([A-Za-z_]+):", chunk)
            if quoted_field and j < n and query[j] in _QUOTES:
                value_pos = j + 1
                value, j = _quoted(query, j)
                dashes = len(quoted_field.group(1))
                toks.extend(_Tok("NEG", "-", i + k) for k in range(dashes))
                toks.append(_field_tok(quoted_field.group(2), value, i + dashes, value_pos, quoted=True))
            else:
                toks.extend(_chunk_toks(chunk, i))
            i = j
    # "not w/N" (any case) is one operator
    merged: list[_Tok] = []
    for tok in toks:
        prev = merged[-1] if merged else None
        if (
            tok.kind == "NEAR"
            and prev is not None
            and (prev.kind == "NOT" or (prev.kind == "WORD" and prev.text.lower() == "not"))
            and not tok.value[2]  # type: ignore[index]
        ):
            distance, ordered, _ = tok.value  # type: ignore[misc]
            if ordered:
                message = f"'not pre/N' at position {prev.pos} is not supported; use 'not w/N'"
                raise QueryError(message, prev.pos)
            merged[-1] = _Tok("NEAR", f"{prev.text} {tok.text}", prev.pos, (distance, False, True))
        else:
            merged.append(tok)
    merged.append(_Tok("EOF", "", n))
    return merged


def _quoted(query: str, start: int) -> tuple[str, int]:
    """The text inside the quote at START, and the index just after the closing quote."""
    for k in range(start + 1, len(query)):
        if query[k] in _QUOTES:
            return query[start + 1 : k], k + 1
    raise QueryError(f"missing closing quote for '{query[start]}' at position {start}", start)


def _chunk_toks(chunk: str, pos: int) -> list[_Tok]:
    if chunk in ("AND", "OR", "NOT"):
        return [_Tok(chunk, chunk, pos)]
    if _NEAR.fullmatch(chunk):
        m = _NEAR.fullmatch(chunk)
        assert m is not None
        distance = int(m.group(2))
        if distance < 1:
            raise QueryError(f"'{chunk}' at position {pos}: the distance must be at least 1", pos)
        return [_Tok("NEAR", chunk, pos, (distance, m.group(1).lower() == "pre", False))]
    if _NEAR_BAD.fullmatch(chunk):
        op = chunk.split("/")[0]
        raise QueryError(f"'{op}/' at position {pos} needs a number of words, e.g. {op.lower()}/5", pos)
    if chunk.startswith("-"):
        if len(chunk) == 1:
            raise QueryError(f"'-' at position {pos} needs a term right after it", pos)
        return [_Tok("NEG", "-", pos)] + _chunk_toks(chunk[1:], pos + 1)
    m = _FIELD.fullmatch(chunk)
    if m:
        return [_field_tok(m.group(1), m.group(2), pos, pos + len(m.group(1)) + 1, quoted=False)]
    return [_Tok("WORD", chunk, pos)]


def _field_tok(name: str, value: str, pos: int, value_pos: int, quoted: bool) -> _Tok:
    lname = name.lower()
    if lname not in FIELDS:
        raise QueryError(
            f"unknown field '{name}:' at position {pos}; known fields: {', '.join(FIELDS)} "
            "(put text containing ':' in quotes to search for it)",
            pos,
        )
    if not value.strip() and not quoted:
        raise QueryError(f"field '{name}:' at position {pos} needs a value, e.g. {lname}:something", pos)
    if lname == "note" and quoted:  # note: holds text to search: a quoted value is a phrase
        value, value_pos = f'"{value}"', value_pos - 1
    return _Tok("FIELD", f"{name}:{value}", pos, (lname, value, value_pos))


# ---------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, query: str):
        self.query = query
        self.toks = _lex(query)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            return and_all([])
        node = self.or_expr()
        tok = self.peek()
        if tok.kind == "RP":
            raise QueryError(f"unexpected ')' at position {tok.pos} (no matching '(')", tok.pos)
        if tok.kind != "EOF":  # pragma: no cover - every other token starts a term
            raise QueryError(f"unexpected '{tok.text}' at position {tok.pos}", tok.pos)
        return node

    def or_expr(self) -> Node:
        nodes = [self.and_expr()]
        while self.peek().kind == "OR":
            op = self.take()
            nodes.append(self.and_expr(after=op))
        return or_any(nodes)

    def and_expr(self, after: _Tok | None = None) -> Node:
        nodes = [self.unary(after)]
        while self.peek().kind not in ("RP", "OR", "EOF"):
            op = self.take() if self.peek().kind == "AND" else None
            nodes.append(self.unary(op))
        return and_all(nodes)

    def unary(self, after: _Tok | None = None) -> Node:
        tok = self.peek()
        if tok.kind in ("NOT", "NEG"):
            self.take()
            return Not(self.unary(tok))
        return self.near(after)

    def near(self, after: _Tok | None) -> Node:
        left = self.primary(after)
        while self.peek().kind == "NEAR":
            op = self.take()
            distance, ordered, negated = op.value  # type: ignore[misc]
            right = self.primary(op)
            for operand in (left, right):
                _check_near_operand(operand, op)
            left = Near(left, right, distance, ordered, negated)
        return left

    def primary(self, after: _Tok | None) -> Node:
        tok = self.peek()
        if tok.kind == "LP":
            self.take()
            if self.peek().kind == "RP":
                raise QueryError(f"empty parentheses at position {tok.pos}", tok.pos)
            node = self.or_expr()
            if self.peek().kind != "RP":
                raise QueryError(f"missing closing parenthesis for '(' at position {tok.pos}", tok.pos)
            self.take()
            return node
        if tok.kind == "PHRASE":
            self.take()
            return _phrase_node(tok)
        if tok.kind == "WORD":
            self.take()
            return _word_node(tok.text, tok.pos)
        if tok.kind == "FIELD":
            self.take()
            name, value, value_pos = tok.value  # type: ignore[misc]
            return _field_node(name, value, value_pos, tok.pos)
        if tok.kind == "NEAR" and after is None:
            raise QueryError(f"'{tok.text}' at position {tok.pos} needs a term before it", tok.pos)
        if after is not None and tok.kind in ("EOF", "RP", "AND", "OR", "NEAR"):
            what = "the end of the query" if tok.kind == "EOF" else f"'{tok.text}' at position {tok.pos}"
            raise QueryError(
                f"'{after.text}' at position {after.pos} needs a term after it (found {what})", after.pos
            )
        if tok.kind in ("AND", "OR"):
            raise QueryError(f"'{tok.text}' at position {tok.pos} needs a term before it", tok.pos)
        if tok.kind == "RP":
            raise QueryError(f"unexpected ')' at position {tok.pos} (no matching '(')", tok.pos)
        raise QueryError(f"unexpected end of query at position {tok.pos}", tok.pos)  # pragma: no cover


_NEAR_OPERANDS = (Term, Phrase, Wildcard, Fuzzy, Stem, CjkChar, Near)


def _check_near_operand(node: Node, op: _Tok) -> None:
    if isinstance(node, Or):
        for child in node.children:
            _check_near_operand(child, op)
    elif not isinstance(node, _NEAR_OPERANDS):
        raise QueryError(
            f"the operands of '{op.text}' at position {op.pos} must be words, phrases, wildcards, "
            "or parenthesised OR-groups of them (not AND, NOT or field filters)",
            op.pos,
        )


def _phrase_node(tok: _Tok) -> Node:
    words = query_words(tok.text)
    if not words:
        raise QueryError(f"nothing searchable in the phrase at position {tok.pos}", tok.pos)
    slop = tok.value or 0
    if len(words) == 1:
        return _single(words[0])
    return Phrase(tuple(words), int(slop))  # type: ignore[arg-type]


def _single(word: str) -> Node:
    return CjkChar(word) if len(word) == 1 and is_cjk(word) else Term(word)


def _one_token(base: str, raw: str, pos: int, what: str) -> str:
    words = query_words(base)
    if len(words) != 1:
        raise QueryError(f"{what} applies to a single word: '{raw}' at position {pos}", pos)
    return words[0]


def _word_node(raw: str, pos: int) -> Node:
    m = re.fullmatch(r"(.+?)~(\d*)", raw)
    if m and not re.search(r"[*?%]", m.group(1)):
        word = _one_token(m.group(1), raw, pos, "'~'")
        if not m.group(2):
            return Stem(word)
        edits = int(m.group(2))
        if edits > MAX_EDITS:
            raise QueryError(f"fuzzy search allows at most {MAX_EDITS} edits: '{raw}' at position {pos}", pos)
        return Fuzzy(word, edits, 0)
    if "%" in raw and not re.search(r"[*?]", raw):
        first = raw.index("%")
        word = _one_token(raw.replace("%", ""), raw, pos, "'%'")
        prefix_len = min(len(normalize(raw[:first])), len(word))
        edits = raw.count("%")
        if edits > MAX_EDITS:
            raise QueryError(f"fuzzy search allows at most {MAX_EDITS} edits: '{raw}' at position {pos}", pos)
        return Fuzzy(word, edits, prefix_len)
    if "*" in raw or "?" in raw or "\uff0a" in raw or "\uff1f" in raw:
        return _wildcard_node(raw, pos)
    words = query_words(raw)
    if not words:
        raise QueryError(f"nothing searchable in '{raw}' at position {pos} (no letters or digits)", pos)
    if len(words) == 1:
        return _single(words[0])
    return Phrase(tuple(words))


def _wildcard_node(raw: str, pos: int) -> Node:
    pattern = normalize(raw)
    pattern = re.sub(r"^[^\w*?]+|[^\w*?]+$", "", pattern)
    pattern = re.sub(r"\*+", "*", pattern)
    if not re.fullmatch(r"[\w*?]+", pattern):
        raise QueryError(f"a wildcard applies to a single word: '{raw}' at position {pos}", pos)
    literal = re.sub(r"[*?]", "", pattern)
    if not literal:
        raise QueryError(f"a wildcard needs at least one letter or digit: '{raw}' at position {pos}", pos)
    kinds = {is_cjk(c) for c in literal}
    if len(kinds) > 1:
        raise QueryError(f"a wildcard cannot mix CJK and other characters: '{raw}' at position {pos}", pos)
    return Wildcard(pattern)


# ---------------------------------------------------------------------------- fields and dates


def _field_node(name: str, value: str, pos: int, field_pos: int) -> Node:
    value = value.strip()
    if name == "date":
        start, end = _date_range(value, pos)
        return DateRange(start, end)
    if name == "has":
        v = "attachment" if value.lower() == "attachments" else value.lower()
        if v not in HAS_VALUES:
            raise QueryError(f"has: accepts {', '.join(HAS_VALUES)}; got '{value}' at position {pos}", pos)
        return Field("has", v)
    if name == "is":
        v = value.lower()
        if v not in IS_VALUES:
            raise QueryError(f"is: accepts {', '.join(IS_VALUES)}; got '{value}' at position {pos}", pos)
        return Field("is", v)
    if name == "note":
        _check_note(value, pos)
        return Field("note", value)
    if not name_key(value):
        raise QueryError(f"field '{name}:' at position {field_pos} needs a value", field_pos)
    return Field(name, value)


def _check_note(value: str, pos: int) -> None:
    """A note: value is text to search for in notes: a word or a quoted phrase, no filters."""
    try:
        node = parse(value)
    except QueryError as error:
        raise QueryError(f"in note:{value} at position {pos}: {error.message}", pos + error.position) from None
    if isinstance(node, MatchAll) or any(isinstance(part, (Field, DateRange)) for part in walk(node)):
        raise QueryError(f"note: at position {pos} searches note text: give it a word or a quoted phrase", pos)


_YMD = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def _bounds(text: str, pos: int) -> tuple[datetime, datetime]:
    """Inclusive UTC bounds of a year, month, day or exact timestamp."""
    text = text.strip()
    m = _YMD.fullmatch(text)
    try:
        if m:
            year = int(m.group(1))
            if m.group(3):
                start = datetime(year, int(m.group(2)), int(m.group(3)), tzinfo=timezone.utc)
                nxt = start + timedelta(days=1)
            elif m.group(2):
                month = int(m.group(2))
                start = datetime(year, month, 1, tzinfo=timezone.utc)
                nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
            else:
                start = datetime(year, 1, 1, tzinfo=timezone.utc)
                nxt = datetime(year + 1, 1, 1, tzinfo=timezone.utc)
            return start, nxt - _ONE_MICRO
        moment = dateparser.isoparse(text)
    except (ValueError, OverflowError):
        raise QueryError(
            f"not a date: '{text}' at position {pos}; use YYYY-MM-DD, YYYY-MM, YYYY or an ISO timestamp", pos
        ) from None
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment, moment


def _date_range(value: str, pos: int) -> tuple[datetime | None, datetime | None]:
    start: datetime | None
    end: datetime | None
    if ".." in value:
        a, b = value.split("..", 1)
        if not a.strip() and not b.strip():
            raise QueryError(f"a date range needs at least one end: 'date:{value}' at position {pos}", pos)
        start = _bounds(a, pos)[0] if a.strip() else None
        end = _bounds(b, pos + len(a) + 2)[1] if b.strip() else None
    else:
        m = re.fullmatch(r"(>=|<=|>|<)?(.*)", value, re.DOTALL)
        assert m is not None
        op, text = m.group(1), m.group(2)
        first, last = _bounds(text, pos + len(op or ""))
        start, end = {
            None: (first, last),
            ">=": (first, None),
            ">": (last + _ONE_MICRO, None),
            "<=": (None, last),
            "<": (None, first - _ONE_MICRO),
        }[op]
    if start is not None and end is not None and start > end:
        raise QueryError(f"the date range 'date:{value}' at position {pos} ends before it starts", pos)
    return start, end


def parse(text: str) -> Node:
    """Parse a user query into our AST; raises QueryError(message, position) on any mistake."""
    return _Parser(text).parse()
