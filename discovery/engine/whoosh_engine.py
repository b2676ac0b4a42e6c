"""The Whoosh (Whoosh-Reloaded 2.7.5) engine behind discovery's engine seam.

The only module that imports ``whoosh``. Text is tokenized by ``discovery.analysis`` (wrapped as a
Whoosh tokenizer), queries arrive as our AST (``discovery.query``) and are translated here; Whoosh's
own query parser is never used (whoosh.md trap 8). Only the message id is stored.

Query semantics are those of ``discovery.query.match`` (the brute-force oracle); where Whoosh's
own positional queries differ or are fragile, small span queries here reuse the matcher's
interval code (``phrase_intervals``, ``near_intervals``), so engine and oracle cannot drift.
Wildcard, fuzzy and stem terms are expanded against the index lexicon here, completely: no
expansion is ever capped (trap 6); a leading wildcard scans the whole lexicon (slow, but exact).
Dates use a day-number field plus exact microsecond ranges on the partial first/last day (trap 5).
Never open an index directory you did not write: Whoosh unpickles its schema (it is trusted input).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from whoosh import index as windex
from whoosh import query as wq
from whoosh import sorting
from whoosh.analysis import Token as WToken
from whoosh.analysis import Tokenizer
from whoosh.fields import ID, NUMERIC, TEXT, Schema
from whoosh.matching import binary as wbinary
from whoosh.matching import mcore
from whoosh.query import spans as wspans
from whoosh.util import make_binary_tree

from discovery.analysis import cjk_unigrams, is_cjk, tokenize
from discovery.engine import SORTS, EngineResult, IndexDoc
from discovery.query.ast import (
    DAY_US,
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
    name_key,
    range_us,
)
from discovery.query.match import (
    KEYWORD_ATTRS,
    fuzzy_matches,
    near_intervals,
    phrase_intervals,
    phrase_word_predicate,
    stem,
    wildcard_prefix,
    wildcard_regex,
)

TEXT_FIELD = "text"
CJK_FIRST = "\u1100"  # the lowest code point analysis treats as CJK (Hangul Jamo)
UNIGRAM_FIELD = "cjk1"
_EMPTY: frozenset = frozenset()


class AnalysisTokenizer(Tokenizer):
    """``discovery.analysis.tokenize`` (or ``cjk_unigrams``) as a Whoosh tokenizer.

    Pickled into the index schema, so its import path must stay stable.
    """

    def __init__(self, unigrams: bool = False):
        self.unigrams = unigrams

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnalysisTokenizer) and other.unigrams == self.unigrams

    def __hash__(self) -> int:
        return hash((AnalysisTokenizer, self.unigrams))

    def __call__(  # noqa: PLR0913 - Whoosh's tokenizer signature
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        tokenize=True,
        mode="",
        **kwargs,
    ):
        tok = WToken(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            tok.original = tok.text = value
            tok.boost = 1.0
            if positions:
                tok.pos = start_pos
            if chars:
                tok.startchar, tok.endchar = start_char, start_char + len(value)
            yield tok
            return
        for ours in cjk_unigrams(value) if self.unigrams else _tokenize(value):
            tok.text = ours.text
            tok.boost = 1.0
            tok.stopped = False
            if keeporiginal:
                tok.original = ours.text
            if positions:
                tok.pos = start_pos + ours.pos
            if chars:
                tok.startchar, tok.endchar = start_char + ours.start, start_char + ours.end
            yield tok


_tokenize = tokenize  # the tokenizer's keyword argument shadows the name inside __call__


def _cache_missing_length_columns() -> None:
    """2.7.5 stats the disk once per posting of every field without a length column (all ID
    fields) while committing, because ``W3PerDocReader._cached_reader`` never caches "no column".
    A finished segment's files never change, so caching the miss is safe: commits run ~1.4x faster.
    """
    from whoosh.codec import whoosh3

    cls = whoosh3.W3PerDocReader
    if getattr(cls, "_discovery_patched", False):
        return
    original = cls._cached_reader

    def _cached_reader(self, fieldname, column):
        if fieldname in self._readers:
            return self._readers[fieldname]
        reader = original(self, fieldname, column)
        if reader is None:
            self._readers[fieldname] = None
        return reader

    cls._cached_reader = _cached_reader
    cls._discovery_patched = True


_cache_missing_length_columns()

_KEYWORDS = ("conversation_id", "sender_id", "source_format", "custodian", "kind", "conversation_type")
_NAMES = ("sender_name", "conversation_name")
_FLAGS = ("has_attachment", "edited", "deleted")


def make_schema() -> Schema:
    fields: dict[str, object] = {
        "id": ID(stored=True, unique=True, sortable=True),
        TEXT_FIELD: TEXT(analyzer=AnalysisTokenizer(), phrase=True, stored=False),
        UNIGRAM_FIELD: TEXT(analyzer=AnalysisTokenizer(unigrams=True), phrase=False, stored=False),
        "day": NUMERIC(int, bits=32, signed=True),
        "ts": NUMERIC(int, bits=64, signed=True, sortable=True),
    }
    for name in _KEYWORDS + _NAMES + _FLAGS:
        fields[name] = ID()
    return Schema(**fields)


def _fields(doc: IndexDoc) -> dict[str, object]:
    out: dict[str, object] = {
        "id": doc.id,
        TEXT_FIELD: doc.text or "",
        UNIGRAM_FIELD: doc.text or "",
        "day": doc.sent_at_us // DAY_US,  # derived from the timestamp, so the two can never disagree
        "ts": doc.sent_at_us,
        "has_attachment": "1" if doc.has_attachment else "0",
        "edited": "1" if doc.edited else "0",
        "deleted": "1" if doc.deleted else "0",
    }
    for name in ("conversation_id", "sender_id"):
        value = getattr(doc, name) or ""
        if value:
            out[name] = value
    for name in ("source_format", "custodian", "kind", "conversation_type") + _NAMES:
        value = name_key(getattr(doc, name) or "")
        if value:
            out[name] = value
    return out


# ---------------------------------------------------------------------------- span queries


def _intervals(matcher) -> dict[tuple[int, int], frozenset]:
    return {(span.start, span.end): _EMPTY for span in matcher.spans()}


def _to_spans(intervals: Iterable[tuple[int, int]]) -> list[wspans.Span]:
    return [wspans.Span(start, end) for start, end in sorted(intervals)]


class _SpanMatcher(wspans.SpanWrappingMatcher):
    """Base: never skip by block quality (the wrapped child would move without re-checking spans)."""

    def supports_block_quality(self):
        return False

    def replace(self, minquality=0):
        return self if self.is_active() else mcore.NullMatcher()


class _PhraseMatcher(_SpanMatcher):
    def __init__(self, ms, slop):
        self.ms = ms
        self.slop = slop
        super().__init__(make_binary_tree(wbinary.IntersectionMatcher, ms))

    def copy(self):
        return _PhraseMatcher([m.copy() for m in self.ms], self.slop)

    def _get_spans(self):
        return _to_spans(phrase_intervals([_intervals(m) for m in self.ms], self.slop))


class _SpanOrMatcher(_SpanMatcher):
    """Spans of every alternative on the current document (duplicates and all)."""

    def __init__(self, ms):
        self.ms = ms
        super().__init__(make_binary_tree(wbinary.UnionMatcher, ms))

    def copy(self):
        return _SpanOrMatcher([m.copy() for m in self.ms])

    def _get_spans(self):
        docid = self.child.id()
        found: set[tuple[int, int]] = set()
        for m in self.ms:
            if m.is_active() and m.id() == docid:
                found.update((span.start, span.end) for span in m.spans())
        return _to_spans(found)


class _NearMatcher(_SpanMatcher):
    def __init__(self, a, b, distance, ordered):
        self.a, self.b, self.distance, self.ordered = a, b, distance, ordered
        super().__init__(wbinary.IntersectionMatcher(a, b))

    def copy(self):
        return _NearMatcher(self.a.copy(), self.b.copy(), self.distance, self.ordered)

    def _get_spans(self):
        found = near_intervals(_intervals(self.a), _intervals(self.b), self.distance, self.ordered, False)
        return _to_spans(found)


class _NotNearMatcher(_SpanMatcher):
    """Occurrences of A with no occurrence of B within the distance (B may be absent)."""

    def __init__(self, a, b, distance):
        self.b, self.distance = b, distance
        super().__init__(a)

    def copy(self):
        return _NotNearMatcher(self.child.copy(), self.b.copy(), self.distance)

    def _get_spans(self):
        docid = self.child.id()
        b = self.b
        if b.is_active() and b.id() < docid:
            b.skip_to(docid)
        right = _intervals(b) if b.is_active() and b.id() == docid else {}
        return _to_spans(near_intervals(_intervals(self.child), right, self.distance, False, True))


class _SpanQ(wspans.SpanQuery):
    def is_leaf(self):
        return False

    def estimate_size(self, ixreader):
        return self.q.estimate_size(ixreader)

    def estimate_min_size(self, ixreader):
        return self.q.estimate_min_size(ixreader)

    def _key(self):
        raise NotImplementedError

    def __eq__(self, other):
        return type(other) is type(self) and other._key() == self._key()

    def __hash__(self):
        return hash((type(self).__name__, self._key()))

    def __repr__(self):
        return f"{type(self).__name__}{self._key()!r}"


class PhraseQuery(_SpanQ):
    """Our Phrase: at each place one of the listed words; in order, each 1..slop+1 positions on."""

    def __init__(self, places: list[list[str]], slop: int):
        self.places, self.slop = [list(p) for p in places], slop
        self.q = wq.And([_or_terms(p) for p in self.places])

    def _key(self):
        return (tuple(tuple(p) for p in self.places), self.slop)

    def children(self):
        return []

    def is_leaf(self):
        return True

    def terms(self, phrases=False):
        for place in self.places:
            for word in place:
                yield (TEXT_FIELD, word)

    def matcher(self, searcher, context=None):
        ms = []
        for place in self.places:
            present = [w for w in place if (TEXT_FIELD, w) in searcher.reader()]
            if not present:
                return mcore.NullMatcher()
            q = (
                wq.Term(TEXT_FIELD, present[0])
                if len(present) == 1
                else SpanOrQuery([wq.Term(TEXT_FIELD, w) for w in present])
            )
            ms.append(q.matcher(searcher, context))
        return _PhraseMatcher(ms, self.slop)


def _or_terms(words: list[str]):
    if len(words) == 1:
        return wq.Term(TEXT_FIELD, words[0])
    return wq.Or([wq.Term(TEXT_FIELD, w) for w in words])


class SpanOrQuery(_SpanQ):
    def __init__(self, subqs: list):
        self.subqs = list(subqs)
        self.q = wq.Or(self.subqs)

    def _key(self):
        return tuple(self.subqs)

    def children(self):
        return list(self.subqs)

    def apply(self, fn):
        return SpanOrQuery([fn(q) for q in self.subqs])

    def matcher(self, searcher, context=None):
        ms = [q.matcher(searcher, context) for q in self.subqs]
        ms = [m for m in ms if m.is_active()]
        if not ms:
            return mcore.NullMatcher()
        return ms[0] if len(ms) == 1 else _SpanOrMatcher(ms)


class NearQuery(_SpanQ):
    def __init__(self, a, b, distance: int, ordered: bool, negated: bool):
        self.a, self.b = a, b
        self.distance, self.ordered, self.negated = distance, ordered, negated
        self.q = a if negated else wq.And([a, b])

    def _key(self):
        return (self.a, self.b, self.distance, self.ordered, self.negated)

    def children(self):
        return [self.a, self.b]

    def apply(self, fn):
        return NearQuery(fn(self.a), fn(self.b), self.distance, self.ordered, self.negated)

    def matcher(self, searcher, context=None):
        ma = self.a.matcher(searcher, context)
        mb = self.b.matcher(searcher, context)
        if self.negated:
            return _NotNearMatcher(ma, mb, self.distance) if ma.is_active() else mcore.NullMatcher()
        if not (ma.is_active() and mb.is_active()):
            return mcore.NullMatcher()
        return _NearMatcher(ma, mb, self.distance, self.ordered)


class _AndNotMatcher(wbinary.AndNotMatcher):
    """2.7.5's AndNotMatcher only skips the first positive document when the negative matcher
    starts on exactly that document; if the negative starts EARLIER, the first positive document is
    returned even when it is excluded ("a AND NOT b" leaked a document containing b)."""

    def _find_first(self):
        if self.a.is_active() and self.b.is_active():
            self._find_next()


class AndNotQuery(wq.AndNot):
    def matcher(self, searcher, context=None):
        positive = self.a.matcher(searcher, context)
        negative = self.b.matcher(searcher, searcher.boolean_context())
        return _AndNotMatcher(positive, negative)


# ---------------------------------------------------------------------------- the engine


class WhooshEngine:
    """A Whoosh index in INDEX_DIR (created if missing). Single writer; searchers per thread."""

    name = "whoosh"

    def __init__(self, index_dir: str | Path, *, batch_size: int = 2000, limitmb: int = 256):
        self.path = Path(index_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        if windex.exists_in(str(self.path)):
            self._ix = windex.open_dir(str(self.path))
        else:
            self._ix = windex.create_in(str(self.path), make_schema())
        self.batch_size = batch_size
        self.limitmb = limitmb
        self._writer = None
        self._pending: dict[str, IndexDoc] = {}
        self._written: set[str] = set()  # ids sent to the open, uncommitted writer
        self._lock = threading.RLock()
        self._local = threading.local()
        self._searchers: list = []

    # ------------------------------------------------------------------ writing

    def add(self, docs: Iterable[IndexDoc]) -> int:
        count = 0
        with self._lock:
            for doc in docs:
                if doc.id in self._written:
                    # Whoosh's update_document only deletes committed copies: commit the older one first.
                    self.commit()
                self._pending[doc.id] = doc
                count += 1
                if len(self._pending) >= self.batch_size:
                    self._flush()
        return count

    def _get_writer(self):
        if self._writer is None:
            self._writer = self._ix.writer(limitmb=self.limitmb)
        return self._writer

    def _flush(self) -> None:
        if not self._pending:
            return
        writer = self._get_writer()
        for doc in self._pending.values():
            writer.update_document(**_fields(doc))
            self._written.add(doc.id)
        self._pending.clear()

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            ids = list(ids)
            for doc_id in ids:
                self._pending.pop(doc_id, None)
            if self._written.intersection(ids):
                self.commit()
            writer = self._get_writer()
            for doc_id in ids:
                writer.delete_by_term("id", doc_id)

    def commit(self) -> None:
        with self._lock:
            self._flush()
            if self._writer is not None:
                self._writer.commit()
                self._writer = None
            self._written.clear()

    # ------------------------------------------------------------------ searching

    def _searcher(self):
        """This thread's searcher, reopened when the index has a newer generation.

        Not ``Searcher.refresh()``: in 2.7.5 its reader reuse keeps segments from the old reader
        (``Index._reader(reuse=...)`` extends the new segment list with the old ones), so after a
        re-add or delete the refreshed searcher still counts the replaced copy. A reopen costs
        ~0.1-0.2 s and happens only after a commit.
        """
        searcher = getattr(self._local, "searcher", None)
        if searcher is not None:
            if searcher.reader().generation() == self._ix.latest_generation():
                return searcher
            with self._lock:
                if searcher in self._searchers:
                    self._searchers.remove(searcher)
            searcher.close()
        searcher = self._ix.searcher()
        with self._lock:
            self._searchers.append(searcher)
        self._local.searcher = searcher
        return searcher

    def to_whoosh(self, node: Node, searcher=None):
        """Translate our AST into a Whoosh query (against SEARCHER's lexicon)."""
        searcher = searcher or self._searcher()
        return _Translator(searcher.reader()).query(node)

    def search(
        self, query: object, *, sort: str = "relevance", offset: int = 0, limit: int = 50
    ) -> EngineResult:
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
        searcher = self._searcher()
        q = _Translator(searcher.reader()).query(query)  # type: ignore[arg-type]
        if searcher.doc_count_all() == 0:  # an empty index has no columns to sort on
            return EngineResult(total=0, ids=[], scores=[])
        # Deterministic order: ties broken by id. The score rides along as a sort key (negated by
        # ScoreFacet), because with sortedby Whoosh reports the key instead of the score.
        if sort == "relevance":
            keys = [sorting.ScoreFacet(), sorting.FieldFacet("id")]
            score_at = 0
        else:
            ts_key = sorting.FieldFacet("ts", reverse=sort == "time_desc")
            keys = [ts_key, sorting.FieldFacet("id"), sorting.ScoreFacet()]
            score_at = 2
        offset = max(0, offset)
        wanted = offset + max(0, limit)
        results = searcher.search(q, limit=max(1, wanted), sortedby=sorting.MultiFacet(keys))
        total = len(results)
        top = results.top_n[offset:wanted] if limit > 0 else []
        ids = [_as_str(key[1]) for key, _ in top]
        scores = [0.0 - float(key[score_at]) for key, _ in top]
        return EngineResult(total=total, ids=ids, scores=scores)

    def all_ids(self, query: object) -> list[str]:
        searcher = self._searcher()
        q = _Translator(searcher.reader()).query(query)  # type: ignore[arg-type]
        if searcher.doc_count_all() == 0:
            return []
        column = searcher.reader().column_reader("id")
        return [_as_str(column[docnum]) for docnum in searcher.docs_for_query(q)]

    def doc_count(self) -> int:
        return self._searcher().doc_count()

    def close(self) -> None:
        with self._lock:
            if self._pending or self._writer is not None:
                self.commit()
            for searcher in self._searchers:
                searcher.close()
            self._searchers.clear()
        self._local = threading.local()


def _as_str(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------- translation


class _Translator:
    def __init__(self, reader):
        self.reader = reader

    # lexicon expansion: complete, never capped
    def _lexicon(self, prefix: str) -> Iterable[str]:
        for btext in self.reader.expand_prefix(TEXT_FIELD, prefix):
            yield btext.decode("utf-8")

    def _cjk_lexicon(self) -> Iterable[str]:
        """Every term whose first character is at or above CJK_FIRST (all CJK tokens are there)."""
        for fieldname, btext in self.reader.terms_from(TEXT_FIELD, CJK_FIRST):
            if fieldname != TEXT_FIELD:
                return
            yield btext.decode("utf-8")

    def phrase(self, node: Phrase):
        if len(node.words) == 1:
            return wq.Term(TEXT_FIELD, node.words[0])
        places = []
        for i, word in enumerate(node.words):
            if len(word) == 1 and is_cjk(word):
                pred = phrase_word_predicate(word, i, len(node.words))
                places.append([t for t in self._cjk_lexicon() if pred(t)] or [word])
            else:
                places.append([word])
        return PhraseQuery(places, node.slop)

    def expand(self, node: Node) -> list[str]:
        if isinstance(node, Wildcard):
            regex = wildcard_regex(node.pattern)
            return [t for t in self._lexicon(wildcard_prefix(node.pattern)) if regex.fullmatch(t)]
        if isinstance(node, Fuzzy):
            return [t for t in self._lexicon(node.word[: node.prefix_len]) if fuzzy_matches(node, t)]
        if isinstance(node, Stem):
            target = stem(node.word)
            return [t for t in self._lexicon(target) if stem(t) == target]
        if isinstance(node, CjkChar):  # positional use: tokens containing the character
            char = node.char
            return [t for t in self._cjk_lexicon() if t == char or (len(t) == 2 and char in t)]
        raise TypeError(node)

    def _terms(self, words: list[str], span: bool):
        if not words:
            return wq.NullQuery
        if len(words) == 1:
            return wq.Term(TEXT_FIELD, words[0])
        terms = [wq.Term(TEXT_FIELD, w) for w in words]
        return SpanOrQuery(terms) if span else wq.Or(terms)

    def span(self, node: Node):
        """A query whose matcher reports positions (for proximity operands)."""
        if isinstance(node, Term):
            return wq.Term(TEXT_FIELD, node.word)
        if isinstance(node, Phrase):
            return self.phrase(node)
        if isinstance(node, (Wildcard, Fuzzy, Stem, CjkChar)):
            return self._terms(self.expand(node), span=True)
        if isinstance(node, Or):
            parts = [self.span(child) for child in node.children]
            parts = [p for p in parts if p is not wq.NullQuery]
            if not parts:
                return wq.NullQuery
            return parts[0] if len(parts) == 1 else SpanOrQuery(parts)
        if isinstance(node, Near):
            left, right = self.span(node.left), self.span(node.right)
            if left is wq.NullQuery:
                return wq.NullQuery
            if right is wq.NullQuery:
                if not node.negated:
                    return wq.NullQuery
                return left
            return NearQuery(left, right, node.distance, node.ordered, node.negated)
        raise ValueError(f"{type(node).__name__} cannot be used inside a proximity search")

    def query(self, node: Node):
        if isinstance(node, MatchAll):
            return wq.Every()
        if isinstance(node, Term):
            return wq.Term(TEXT_FIELD, node.word)
        if isinstance(node, CjkChar):
            return wq.Term(UNIGRAM_FIELD, node.char)
        if isinstance(node, (Phrase, Near)):
            return self.span(node)
        if isinstance(node, (Wildcard, Fuzzy, Stem)):
            return self._terms(self.expand(node), span=False)
        if isinstance(node, And):
            positive = [self.query(c) for c in node.children if not isinstance(c, Not)]
            negative = [self.query(c.child) for c in node.children if isinstance(c, Not)]
            base = wq.And(positive) if positive else wq.Every()
            return AndNotQuery(base, wq.Or(negative)) if negative else base
        if isinstance(node, Or):
            return wq.Or([self.query(c) for c in node.children])
        if isinstance(node, Not):
            return AndNotQuery(wq.Every(), self.query(node.child))
        if isinstance(node, Field):
            return self.field(node)
        if isinstance(node, DateRange):
            return self.dates(node)
        raise TypeError(f"unknown query node {node!r}")

    def field(self, node: Field):
        name, value = node.name, node.value
        if name in ("sender_ids", "conversation_ids"):
            attr = "sender_id" if name == "sender_ids" else "conversation_id"
            ids = sorted(value)  # type: ignore[call-overload]
            return wq.Or([wq.Term(attr, i) for i in ids]) if ids else wq.NullQuery
        if name == "participant":
            raise ValueError("participant: must be resolved to conversation_ids by the search layer")
        if not isinstance(value, str):
            raise TypeError(f"field {name} needs a string value")
        if name == "has":
            return wq.Term("has_attachment", "1") if value.lower() == "attachment" else wq.NullQuery
        if name == "is":
            flag = {"edited": "edited", "deleted": "deleted"}.get(value.lower())
            return wq.Term(flag, "1") if flag else wq.NullQuery
        key = name_key(value)
        if not key:
            return wq.NullQuery
        if name == "sender":
            return wq.Or([wq.Term("sender_id", value), wq.Term("sender_name", key)])
        if name == "conversation":
            return wq.Or([wq.Term("conversation_id", value), wq.Term("conversation_name", key)])
        attr = KEYWORD_ATTRS.get(name)
        if attr is None:
            raise ValueError(f"unknown field {name!r}")
        return wq.Term(attr, key)

    def dates(self, node: DateRange):
        start, end = range_us(node)
        if start is not None and end is not None and start > end:
            return wq.NullQuery
        parts = []
        first_full = None if start is None else -(-start // DAY_US)  # ceil: first whole day
        last_full = None if end is None else (end + 1) // DAY_US - 1  # last whole day
        if first_full is None or last_full is None or first_full <= last_full:
            parts.append(wq.NumericRange("day", first_full, last_full))
        head_day = None
        if start is not None and start % DAY_US:
            head_day = start // DAY_US
            head_end = (head_day + 1) * DAY_US - 1
            if end is not None:
                head_end = min(head_end, end)
            parts.append(wq.NumericRange("ts", start, head_end))
        if end is not None and (end + 1) % DAY_US:
            tail_day = end // DAY_US
            if tail_day != head_day:
                parts.append(wq.NumericRange("ts", tail_day * DAY_US, end))
        if not parts:
            return wq.NullQuery
        return parts[0] if len(parts) == 1 else wq.Or(parts)
