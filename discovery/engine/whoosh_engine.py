"""The Whoosh (Whoosh-Reloaded 2.7.5) engine behind discovery's engine seam.

The only module that imports ``whoosh`` (with ``discovery.engine._ids``). Text is tokenized by
``discovery.analysis`` (wrapped as a Whoosh tokenizer and format), queries arrive as our AST
(``discovery.query``) and are translated here; Whoosh's own query parser is never used (whoosh.md
trap 8). Nothing is stored: the message id and timestamp are columns.

Schema, for ingest speed: one text field (positions), one CJK unigram field, ONE keyword field
holding every filter value as a "prefix=value" term (``conv=oc_1``, ``fmt=lark_api``, ``flag=edited``),
and the id and timestamp as columns only. Big writes go to worker processes that roll over to a new
segment whenever their memory budget fills (``_RollingMpWriter``).

Query semantics are those of ``discovery.query.match`` (the brute-force oracle); where Whoosh's
own positional queries differ or are fragile, small span queries here reuse the matcher's
interval code (``phrase_intervals``, ``near_intervals``), so engine and oracle cannot drift.
Wildcard, fuzzy and stem terms are expanded against the index lexicon here, completely: no
expansion is ever capped (trap 6); a leading wildcard scans the whole lexicon (slow, but exact).
Dates scan the timestamp column (kept in memory per segment), exact to the microsecond (trap 5).
Results come in (score, id) or (time, id) order exactly as a full sort of every match would give
them, without sorting every match: see ``_top_by_score``, ``_top_by_time`` and ``_top_by_id``.
A term's postings are scored a block at a time, read without their positions (``_block_postings``);
phrase and proximity operands whose documents can be listed are intersected as lists (``_intersection``).
Never open an index directory you did not write: Whoosh unpickles its schema (it is trusted input).
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import math
import os
import pickle
import queue
import sys
import threading
import traceback
import zlib
from array import array
from collections.abc import Iterable
from itertools import accumulate, compress
from operator import getitem
from pathlib import Path

from whoosh import collectors, formats, scoring
from whoosh import index as windex
from whoosh import query as wq
from whoosh.analysis import Token as WToken
from whoosh.analysis import Tokenizer
from whoosh.codec import whoosh3
from whoosh.columns import NumericColumn, VarBytesColumn
from whoosh.fields import COLUMN, ID, TEXT, Schema
from whoosh.matching import binary as wbinary
from whoosh.matching import mcore
from whoosh.matching.mcore import ReadTooFar
from whoosh.multiproc import MpWriter, SubWriterTask
from whoosh.query import spans as wspans
from whoosh.system import pack_uint
from whoosh.util import make_binary_tree, random_name
from whoosh.util.numeric import byte_to_length
from whoosh.writing import SegmentWriter

import discovery.processes  # noqa: F401 - its sub-writers (forked) die with this process, leave Ctrl-C to it
from discovery.analysis import cjk_unigram_texts, cjk_unigrams, is_cjk, token_texts, tokenize
from discovery.engine import SORTS, EngineResult, IndexDoc, IndexUnusableError
from discovery.engine._ids import IdsQuery, ids_query
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
        if not (chars or keeporiginal or (positions and self.unigrams)):
            # Indexing: only texts (and for the text field positions, which are consecutive).
            tok.boost = 1.0
            tok.stopped = False
            texts = cjk_unigram_texts(value) if self.unigrams else token_texts(value)
            for pos, text in enumerate(texts, start_pos):
                tok.text = text
                tok.pos = pos
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
    """Two fixes to how 2.7.5 reads per-document field lengths (the segment writer reads one per
    posting while committing; BM25 reads one per scored hit):

    - it stats the disk once per posting of every field without a length column (ID and NUMERIC
      fields), because ``W3PerDocReader._cached_reader`` never caches "no column";
    - it reads each length through a seek and a one-byte read of the column file.

    A finished segment's files never change, so caching the miss, and the column's bytes (one byte
    per document and field), is safe; both are read exactly as Whoosh reads them.
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
        elif column is whoosh3.LENGTHS_COLUMN and type(reader) is type(column).Reader and reader._fixedlen == 1:
            reader = self._readers[fieldname] = _LoadedLengths(reader)
        return reader

    cls._cached_reader = _cached_reader
    cls._discovery_patched = True


class _LoadedLengths:
    """A length column (``NumericColumn("B")``) read into memory: same values, no per-read seek."""

    def __init__(self, reader):
        self._bytes = reader._dbfile.get(reader._basepos, reader._count) if reader._count else b""
        self._count = len(self._bytes)
        self._doccount = reader._doccount
        self._default = reader._default

    def __len__(self):
        return self._doccount

    def __getitem__(self, docnum):
        return self._bytes[docnum] if docnum < self._count else self._default

    def __iter__(self):
        yield from self._bytes
        for _ in range(self._count, self._doccount):
            yield self._default


_cache_missing_length_columns()


def _bisect_leaf_skip_to() -> None:
    """``W3LeafMatcher.skip_to`` finds the target within a block by bisecting the block's ids (in
    increasing order) instead of stepping posting by posting: the same posting, found in log time.
    Proximity, phrase and AND matchers skip a term's postings to each other's documents."""
    cls = whoosh3.W3LeafMatcher
    if getattr(cls, "_discovery_bisect", False):
        return

    def skip_to(self, targetid):
        if not self.is_active():
            raise ReadTooFar
        if targetid <= self.id():
            return
        if targetid > self._maxid:
            block_max_id = self.block_max_id
            self._skip_to_block(lambda: targetid > block_max_id())
        if self.is_active() and not self._byteids:
            if self._ids is None:
                self._read_ids()
            # a block's last id is its maxid, so the target is within it; else step as Whoosh does
            self._i = min(bisect.bisect_left(self._ids, targetid, self._i), self._blocklength - 1)
        while self.is_active() and self.id() < targetid:
            self.next()

    cls.skip_to = skip_to
    cls._discovery_bisect = True


_bisect_leaf_skip_to()

KEYWORD_FIELD = "kw"
# Every filterable value of a message is ONE term of the keyword field, "prefix=value" (one field's
# per-document bookkeeping instead of eleven; a flag is a term only when it is set).
_KW_RAW = {"conversation_id": "conv=", "sender_id": "sid="}  # compared exactly
_KW_KEYED = {  # compared by name_key (normalized, whitespace collapsed)
    "source_format": "fmt=",
    "custodian": "cust=",
    "kind": "kind=",
    "conversation_type": "type=",
    "sender_name": "sname=",
    "conversation_name": "cname=",
}
_KW_FLAGS = {"has_attachment": "flag=attachment", "edited": "flag=edited", "deleted": "flag=deleted"}
# Bumped whenever make_schema() changes in a way an older index cannot answer.
SCHEMA_TAG = "discovery-whoosh-2"


class IndexOutdatedError(IndexUnusableError):
    """The index was written with an older schema; `discovery reindex` rebuilds it from case.db."""


class IndexRebuildingError(IndexUnusableError):
    """The index is being rebuilt from nothing (``discovery reindex``) right now: ask again soon."""

    retry_after = 2  # seconds (the web layer answers 503 with a Retry-After header)


class _TextPositions(formats.Positions):
    """Whoosh's Positions format, fed straight from ``token_texts`` (a token's position is its
    index there) instead of through a token stream: the postings are byte for byte the same."""

    def word_values(self, value, analyzer, **kwargs):
        if not (isinstance(value, str) and type(analyzer) is AnalysisTokenizer and not analyzer.unigrams):
            return super().word_values(value, analyzer, **kwargs)
        poses: dict[str, list[int]] = {}
        for pos, text in enumerate(token_texts(value)):
            found = poses.get(text)
            if found is None:
                poses[text] = [pos]
            else:
                found.append(pos)
        boost, encode = self.field_boost, self.encode
        return [(text, len(found), float(len(found)) * boost, encode(found)) for text, found in poses.items()]


class _UnigramFrequency(formats.Frequency):
    """Whoosh's Frequency format, fed straight from ``cjk_unigram_texts`` (same postings)."""

    def word_values(self, value, analyzer, **kwargs):
        if not (isinstance(value, str) and type(analyzer) is AnalysisTokenizer and analyzer.unigrams):
            return super().word_values(value, analyzer, **kwargs)
        freqs: dict[str, int] = {}
        for text in cjk_unigram_texts(value):
            freqs[text] = freqs.get(text, 0) + 1
        boost = self.field_boost
        return [(text, freq, float(freq) * boost, pack_uint(freq)) for text, freq in freqs.items()]


def _text_field(analyzer: AnalysisTokenizer, phrase: bool, fmt: type) -> TEXT:
    field = TEXT(analyzer=analyzer, phrase=phrase, stored=False)
    field.format = fmt(field_boost=field.format.field_boost)
    return field


def make_schema() -> Schema:
    return Schema(
        # The id, UTF-8, as a column only (hits and tie-breaks read it; deletes and replacements
        # scan it once per writer): as an indexed term it cost a lexicon entry per message.
        id=COLUMN(VarBytesColumn()),
        **{
            TEXT_FIELD: _text_field(AnalysisTokenizer(), True, _TextPositions),
            UNIGRAM_FIELD: _text_field(AnalysisTokenizer(unigrams=True), False, _UnigramFrequency),
            KEYWORD_FIELD: ID(),  # given a list of "prefix=value" terms (Whoosh indexes each)
        },
        # The exact timestamp (microseconds), as a column only: time sorts read it, and date ranges
        # scan it (TimeRange). Indexed (a NUMERIC trie, or a day number) it cost a commit ~8 unique
        # terms or one posting per message, and a month of days answered 30x slower than the scan.
        ts=COLUMN(NumericColumn("q")),
    )


def _signature(schema: Schema) -> list[tuple[object, ...]]:
    """What an index must agree on with make_schema() to be read and written by this code."""
    return sorted(
        (name, type(field).__name__, type(getattr(field, "format", None)).__name__,
         type(getattr(field, "column_type", None)).__name__, getattr(field, "shift_step", None),
         getattr(field, "analyzer", None))
        for name, field in schema.items()
    )


def _fields(doc: IndexDoc) -> dict[str, object]:
    text = doc.text or ""
    keywords = []
    for name, prefix in _KW_RAW.items():
        value = getattr(doc, name)
        if value:
            keywords.append(prefix + value)
    for name, prefix in _KW_KEYED.items():
        value = getattr(doc, name)
        if value:
            key = name_key(value)
            if key:
                keywords.append(prefix + key)
    for name, term in _KW_FLAGS.items():
        if getattr(doc, name):
            keywords.append(term)
    out: dict[str, object] = {
        "id": doc.id.encode("utf-8"),
        TEXT_FIELD: text,
        "ts": doc.sent_at_us,
        KEYWORD_FIELD: keywords,
    }
    if not text.isascii():  # an ASCII text has no CJK characters: no unigram field to write
        out[UNIGRAM_FIELD] = text
    return out


# ---------------------------------------------------------------------------- span queries


def _intersection(a, b):
    """The matcher of the documents both A and B match: a _ListIntersection when both can list
    their documents without being stepped (``_listed_ids``) and fewer than half of the shorter
    list's are common, else Whoosh's IntersectionMatcher (which leapfrogs well over lists that
    mostly coincide)."""
    left = _listed_ids(a)
    right = _listed_ids(b) if left is not None else None
    if right is None:
        return wbinary.IntersectionMatcher(a, b)
    common = sorted(set(left).intersection(right))
    if 2 * len(common) > min(len(left), len(right)):
        return wbinary.IntersectionMatcher(a, b)
    return _ListIntersection(a, b, common)


def _listed_ids(matcher) -> list[int] | None:
    """Every document MATCHER visits from its start, if they can be read without stepping it (a
    term's postings, read block by block by a second matcher; unions and listed intersections of
    those), else None."""
    kind = type(matcher)
    if kind is whoosh3.W3LeafMatcher and not matcher._byteids:
        reader = whoosh3.W3LeafMatcher(matcher._postfile, matcher._startoffset, matcher._length, matcher.format,
                                       term=matcher._term)
        found: list[int] = []
        while reader.is_active():
            ids, _ = _block_postings(reader)
            found.extend(ids[reader._i:])
            reader._next_block()
        return found
    if kind is mcore.ListMatcher:
        return list(matcher._ids)
    if kind is _SpanOrMatcher:
        parts = [_listed_ids(m) for m in matcher.ms]
        return None if any(part is None for part in parts) else sorted(set().union(*parts))
    if kind is _ListIntersection:
        return list(matcher.docs)
    return None


class _ListIntersection(wbinary.IntersectionMatcher):
    """Whoosh's IntersectionMatcher for two matchers whose common documents DOCS were listed up
    front: it moves both straight to each next common document (``skip_to``) instead of
    leapfrogging them posting by posting. The same documents, positions and scores (A's plus B's)."""

    def __init__(self, a, b, docs: list[int]):
        self.docs = docs
        self._at = 0
        super().__init__(a, b)

    def copy(self):
        return _intersection(self.a.copy(), self.b.copy())

    def reset(self):
        self._at = 0
        super().reset()

    def is_active(self):
        return self._at < len(self.docs) and self.a.is_active() and self.b.is_active()

    def _find_first(self):
        self._find_next()

    def _find_next(self):
        a, b, docs = self.a, self.b, self.docs
        if not (a.is_active() and b.is_active()):
            return False
        at = self._at = bisect.bisect_left(docs, max(a.id(), b.id()), self._at)
        if at < len(docs):
            docnum = docs[at]
            a.skip_to(docnum)
            b.skip_to(docnum)
            if not (a.is_active() and b.is_active() and a.id() == docnum == b.id()):
                raise RuntimeError(f"document {docnum} was listed for both {a!r} and {b!r}, but they skipped it")
        return False


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
        super().__init__(make_binary_tree(_intersection, ms))

    def copy(self):
        return _PhraseMatcher([m.copy() for m in self.ms], self.slop)

    def _get_spans(self):
        return _to_spans(phrase_intervals([_intervals(m) for m in self.ms], self.slop))


class _SpanOrMatcher(_SpanMatcher):
    """Spans of every alternative on the current document (duplicates and all).

    The union stops only where an alternative is, and an alternative stops only where it has spans,
    so there are always some: they are worked out only if something asks for them (a phrase or
    proximity above, and a "not w/N" only where its excluded side occurs in the document).
    """

    def __init__(self, ms):
        self.ms = ms
        super().__init__(make_binary_tree(wbinary.UnionMatcher, ms))

    def copy(self):
        return _SpanOrMatcher([m.copy() for m in self.ms])

    def _get_spans(self):
        return _UNWORKED

    def spans(self):
        if self._spans is _UNWORKED:
            self._spans = self._work_spans()
        return self._spans

    def all_ids(self):
        while self.is_active():
            yield self.id()
            self.next()

    def _work_spans(self):
        docid = self.child.id()
        found: set[tuple[int, int]] = set()
        for m in self.ms:
            if m.is_active() and m.id() == docid:
                found.update((span.start, span.end) for span in m.spans())
        return _to_spans(found)


class _NearMatcher(_SpanMatcher):
    def __init__(self, a, b, distance, ordered):
        self.a, self.b, self.distance, self.ordered = a, b, distance, ordered
        super().__init__(_intersection(a, b))

    def copy(self):
        return _NearMatcher(self.a.copy(), self.b.copy(), self.distance, self.ordered)

    def _get_spans(self):
        found = near_intervals(_intervals(self.a), _intervals(self.b), self.distance, self.ordered, False)
        return _to_spans(found)


class _NotNearMatcher(_SpanMatcher):
    """Occurrences of A with no occurrence of B within the distance (B may be absent)."""

    def __init__(self, a, b, distance):
        self.b, self.distance = b, distance
        listed = _listed_ids(b)  # B's documents, when they can be listed: no skipping B to the others
        self._b_docs = frozenset(listed) if listed is not None else None
        super().__init__(a)

    def copy(self):
        return _NotNearMatcher(self.child.copy(), self.b.copy(), self.distance)

    def _get_spans(self):
        docid = self.child.id()
        if self._b_docs is not None and docid not in self._b_docs:
            return _UNWORKED  # no B here (see below)
        b = self.b
        if b.is_active() and b.id() < docid:
            b.skip_to(docid)
        if not (b.is_active() and b.id() == docid):
            # No B here: every occurrence of A qualifies, and A has one wherever it matches. The
            # spans are worked out only if something asks for them (a phrase or proximity above).
            return _UNWORKED
        return _to_spans(near_intervals(_intervals(self.child), _intervals(b), self.distance, False, True))

    def spans(self):
        if self._spans is _UNWORKED:
            self._spans = _to_spans(near_intervals(_intervals(self.child), {}, self.distance, False, True))
        return self._spans

    def all_ids(self):
        while self.is_active():
            if self._spans:
                yield self.id()
            self.next()


class _Unworked(list):
    """Stands for "every occurrence of the child, not yet worked out": true, never read as a list."""

    def __bool__(self):
        return True


_UNWORKED = _Unworked()


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
    """A Whoosh index in INDEX_DIR (created if missing). Single writer; searchers per thread.

    Writing: documents are buffered and given to one writer that stays open until ``commit()``
    (an ingest run commits once, at its end). A run that buffers ``bulk_threshold`` documents
    before its first flush is written by ``procs`` worker processes, each building its own
    segments (Whoosh's MpWriter with ``multisegment=True``: whoosh.md trap 10; a worker starts a
    new segment when its ``limitmb`` posting pool fills). A worker that dies fails the write before
    anything is committed (``_RollingMpWriter``), and the committed document count is checked
    afterwards. Smaller runs use one in-process writer. ``add`` replaces documents with the same
    id; ``add_new`` (ingest, whose ids are new by construction) skips looking for them.

    A write that fails or is interrupted discards its writer (nothing of it is committed, its
    workers are stopped, the index's lock is released), and commit() then raises rather than
    commit what is left; ``cancel()`` discards on purpose, and close() after a failure discards.
    """

    name = "whoosh"

    def __init__(self, index_dir: str | Path, *, batch_size: int = 2000, limitmb: int = 128,
                 procs: int | None = None, bulk_threshold: int = 10_000):
        self.path = Path(index_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        if windex.exists_in(str(self.path)):
            self._ix = windex.open_dir(str(self.path))
            if _signature(self._ix.schema) != _signature(make_schema()):
                raise IndexOutdatedError(
                    f"{self.path}: this full-text index was built by an older version of discovery "
                    "and cannot answer queries now; rebuild it from case.db with `discovery reindex`"
                )
        else:
            self._ix = windex.create_in(str(self.path), make_schema())
        self.batch_size = batch_size
        self.limitmb = limitmb
        self.procs = max(1, min(2, os.cpu_count() or 1) if procs is None else procs)
        self.bulk_threshold = bulk_threshold
        self._writer = None
        self._pending: dict[str, IndexDoc] = {}
        self._replace: set[str] = set()  # pending ids whose committed copies must be deleted first
        self._written: set[str] = set()  # ids sent to the open, uncommitted writer
        self._expected: int | None = None  # live documents the open writer's commit must leave
        self._committed_ids: dict[bytes, list[int]] | None = None  # id -> live docnums, per writer
        self._failed: str | None = None  # why a writer was discarded with documents not committed
        self._lock = threading.RLock()
        self._local = threading.local()
        self._searchers: list = []

    # ------------------------------------------------------------------ writing

    def add(self, docs: Iterable[IndexDoc]) -> int:
        """Index DOCS, replacing any committed document with the same id."""
        return self._add(docs, replace=True)

    def add_new(self, docs: Iterable[IndexDoc]) -> int:
        """Index DOCS whose ids are in no committed segment: no lookup for copies to replace.

        For ingest, which has already deduplicated every id against case.db, and writes the index
        only after case.db (so the index never holds an id case.db does not). An id repeated
        within the open writer is still replaced, as with ``add``.
        """
        return self._add(docs, replace=False)

    def _add(self, docs: Iterable[IndexDoc], replace: bool) -> int:
        count = 0
        with self._lock, self._discarding_on_failure():
            for doc in docs:
                if doc.id in self._written:
                    # A writer only deletes committed copies: commit the older one first.
                    self.commit()
                self._pending[doc.id] = doc
                if replace:
                    self._replace.add(doc.id)
                count += 1
                if len(self._pending) >= (self.batch_size if self._writer else self.bulk_threshold):
                    self._flush()
        return count

    def _get_writer(self, bulk: bool = False):
        if self._writer is None:
            if bulk and self.procs > 1:
                self._writer = _RollingMpWriter(self._ix, procs=self.procs, batchsize=256, limitmb=self.limitmb)
            else:
                self._writer = self._ix.writer(limitmb=self.limitmb)
            self._expected = _live_docs(self._writer)
        return self._writer

    def _delete_committed(self, writer, ids: Iterable[str]) -> None:
        """Delete the committed documents with IDS (the id column is read once per writer)."""
        if not _live_docs(writer):
            return
        if self._committed_ids is None:
            reader = writer.reader()
            found: dict[bytes, list[int]] = {}
            for docnum, value in enumerate(reader.column_reader("id")):
                if not reader.is_deleted(docnum):
                    found.setdefault(value, []).append(docnum)
            self._committed_ids = found
        for doc_id in ids:
            for docnum in self._committed_ids.pop(doc_id.encode("utf-8"), ()):
                writer.delete_document(docnum)
                self._expected -= 1

    def _flush(self) -> None:
        if not self._pending:
            return
        writer = self._get_writer(bulk=len(self._pending) >= self.bulk_threshold)
        if self._replace:
            self._delete_committed(writer, [i for i in self._pending if i in self._replace])
            self._replace.clear()
        for doc in self._pending.values():
            writer.add_document(**_fields(doc))
        self._written.update(self._pending)
        self._expected += len(self._pending)
        self._pending.clear()

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock, self._discarding_on_failure():
            ids = list(ids)
            for doc_id in ids:
                self._pending.pop(doc_id, None)
                self._replace.discard(doc_id)
            if self._written.intersection(ids):
                self.commit()
            self._delete_committed(self._get_writer(), ids)

    def commit(self) -> None:
        """Commit everything given so far. Raises IndexWriteError, committing nothing, if a write
        failed since the last commit (its documents are lost: ``cancel()`` acknowledges that)."""
        with self._lock, self._discarding_on_failure():
            if self._failed is not None:
                raise IndexWriteError(
                    f"{self.path}: an earlier write to the full-text index failed ({self._failed}); the documents "
                    "given to it since its last commit were discarded, not indexed"
                )
            self._flush()
            if self._writer is not None:
                expected = self._expected
                self._writer.commit()  # (if it fails, _discarding_on_failure discards the writer)
                self._writer, self._expected, self._committed_ids = None, None, None
                self._written.clear()
                found = self._ix.doc_count()
                if found != expected:
                    raise RuntimeError(
                        f"{self.path}: the full-text index holds {found} documents after this commit, "
                        f"{expected} were expected; rebuild it from case.db with `discovery reindex`"
                    )
            self._written.clear()

    def cancel(self) -> None:
        """Discard everything given since the last commit, committing nothing: the writer's worker
        processes are stopped and the index's lock released. Never waits on a stuck writer."""
        with self._lock:
            self._discard(None)
            self._failed = None

    @contextlib.contextmanager
    def _discarding_on_failure(self):
        """Whatever fails (or is interrupted) while writing leaves no writer open: it is discarded
        (see ``cancel``), and commit() refuses to pretend its documents were indexed."""
        try:
            yield
        except BaseException as error:
            self._discard(error)
            raise

    def _discard(self, error: BaseException | None) -> None:
        writer, self._writer = self._writer, None
        if error is not None and self._failed is None and (writer is not None or self._pending or self._written):
            self._failed = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        self._pending.clear()
        self._replace.clear()
        self._written.clear()
        self._expected = self._committed_ids = None
        if writer is not None:
            if isinstance(writer, _RollingMpWriter):
                writer.cancel()
            else:
                _discard_writer(writer)

    # ------------------------------------------------------------------ searching

    def _searcher(self):
        """This thread's searcher, reopened when the index has a newer generation.

        Not ``Searcher.refresh()``: in 2.7.5 its reader reuse keeps segments from the old reader
        (``Index._reader(reuse=...)`` extends the new segment list with the old ones), so after a
        re-add or delete the refreshed searcher still counts the replaced copy. A reopen costs
        ~0.1-0.2 s and happens only after a commit.
        """
        version = self._version()
        searcher = getattr(self._local, "searcher", None)
        if searcher is not None:
            if self._local.version == version:
                return searcher
            # Dropped before it is closed, and whatever closing it raises ignored: a searcher
            # whose files were deleted (`discovery reindex` rebuilds the folder) may fail to close,
            # and must not stay this thread's searcher.
            self._local.searcher = None
            with self._lock:
                if searcher in self._searchers:
                    self._searchers.remove(searcher)
            with contextlib.suppress(Exception):
                searcher.close()
        try:
            searcher = self._ix.searcher()
        except (windex.EmptyIndexError, FileNotFoundError) as error:  # deleted or not yet recreated
            raise self._rebuilding() from error
        with self._lock:
            self._searchers.append(searcher)
        self._local.searcher, self._local.version = searcher, version
        return searcher

    def _version(self) -> tuple[int, int, int, int]:
        """Which index the folder holds now: its latest generation and that TOC file's identity.
        (A rebuilt index starts its generations again, so the number alone cannot tell it.)"""
        for _ in range(3):  # a commit may delete the TOC just listed: look again
            generation = self._ix.latest_generation()
            if generation < 0:
                break
            try:
                stat = os.stat(self.path / f"_{self._ix.indexname}_{generation}.toc")
            except FileNotFoundError:
                continue
            return generation, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns
        raise self._rebuilding()

    def _rebuilding(self) -> IndexRebuildingError:
        return IndexRebuildingError(f"{self.path}: the search index is being rebuilt; try again in a moment")

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
        offset = max(0, offset)
        wanted = offset + max(0, limit)
        if sort == "relevance" and _equal_scores(q):  # filters only: every match scores the same
            total, top = _top_by_id(searcher, q, max(1, wanted), _ids_column(searcher))
            top = top[offset:wanted] if limit > 0 else []
            return EngineResult(total=total, ids=[i for _, i in top], scores=[score for score, _ in top])
        if sort == "relevance":
            total, top = _top_by_score(searcher, q, max(1, wanted), _ids_column(searcher))
            top = top[offset:wanted] if limit > 0 else []
            return EngineResult(total=total, ids=[i for _, i in top], scores=[score for score, _ in top])
        total, top = _top_by_time(searcher, q, max(1, wanted), sort == "time_desc", _ids_column(searcher))
        top = top[offset:wanted] if limit > 0 else []
        return EngineResult(total=total, ids=[i for _, i in top], scores=[score for score, _ in top])

    def all_ids(self, query: object) -> list[str]:
        searcher = self._searcher()
        q = _Translator(searcher.reader()).query(query)  # type: ignore[arg-type]
        if searcher.doc_count_all() == 0:
            return []
        column = _ids_column(searcher)
        if _equal_scores(q):  # filters only: answered with set operations
            return [_as_str(column[offset + docnum]) for sub, offset in searcher.leaf_searchers()
                    for docnum in sorted(_doc_set(q, sub))]
        return [_as_str(column[docnum]) for docnum in searcher.docs_for_query(q)]

    def doc_count(self) -> int:
        return self._searcher().doc_count()

    def close(self) -> None:
        """Commit what was given (unless a write failed: then it is discarded, as ``cancel`` does)
        and close every searcher."""
        with self._lock:
            try:
                if self._failed is not None:
                    self.cancel()
                elif self._pending or self._writer is not None:
                    self.commit()
            finally:
                for searcher in self._searchers:
                    with contextlib.suppress(Exception):
                        searcher.close()
                self._searchers.clear()
                self._local = threading.local()


class _RollingSubWriter(SubWriterTask):
    """A worker of _RollingMpWriter. When its posting pool nears its memory limit it finishes its
    segment and starts a new one, instead of spilling sorted runs to disk and merging them all when
    the writer commits: the segment work is spread over the run, not left for a long final wait.

    A daemon process: it can never hold up the exit of the process that started it (which, if it
    still has the writer, stops it itself: see ``_RollingMpWriter.cancel``).
    """

    ROLL_AT = 0.8  # of the pool's limit (a job file adds well under 1 %)
    FAILED = "failed"  # first item of what a worker that failed reports on the result queue

    def run(self):
        try:
            self._run()
        except Exception as error:  # reported to the parent, which raises it; the worker ends with 1
            os_error = isinstance(error, OSError) and error.errno is not None
            if not os_error:  # a bug: its traceback is what to report
                traceback.print_exc()
            with contextlib.suppress(Exception):
                self.resultqueue.put((self.FAILED, error.errno if os_error else None,
                                      error.strerror if os_error else f"{type(error).__name__}: {error}"), timeout=5)
            sys.exit(1)

    def _run(self):
        ix = self.storage.open_index(self.indexname)
        self.writer = SegmentWriter(ix, _lk=False, **self.kwargs)
        segments = []
        while self.running:
            jobinfo = self.jobqueue.get()
            if jobinfo is None:
                break
            self._process_file(*jobinfo)
            pool = self.writer.pool
            if pool.currentsize >= pool.limit * self.ROLL_AT:
                segments.append(self.writer._finalize_segment())
                self.writer = SegmentWriter(ix, _lk=False, **self.kwargs)
        if not self.running:
            self.writer.cancel()
            return
        fieldnames = self.writer.pool.fieldnames
        if self.writer.docnum or not segments:
            segments.append(self.writer._finalize_segment())
        else:
            self.writer._close_segment()
        self.resultqueue.put((None, fieldnames, segments), timeout=5)


class IndexWriteError(RuntimeError):
    """The index's writer failed (a worker process died or stopped); nothing it held was committed."""


class _RollingMpWriter(MpWriter):
    """Whoosh's MpWriter with ``multisegment=True`` whose workers roll over to new segments (see
    _RollingSubWriter); each worker reports a list of segments, all added to the index as they are.

    It never waits forever on its workers: a job is queued a moment at a time, checking between
    tries that the workers still run; a worker that died (killed, out of memory, a full disk) fails
    the write with IndexWriteError before anything is committed, and ``cancel()`` stops the
    workers, removes the job files and releases the index's lock. (Whoosh's own MpWriter blocks
    for good on a full job queue whose workers are dead, and drops a dead worker's segments.)
    """

    POLL_SECONDS = 0.25
    RESULT_SECONDS = 10.0  # a worker that ended cleanly has already sent its result
    STOP_SECONDS = 2.0  # a worker told to stop (SIGTERM) before it is killed

    def __init__(self, ix, **kwargs):
        super().__init__(ix, multisegment=True, **kwargs)

    def _new_task(self):
        task = _RollingSubWriter(self.storage, self.indexname, self.jobqueue, self.resultqueue, self.subargs, True)
        task.daemon = True
        self.tasks.append(task)
        task.start()
        return task

    def _check_tasks(self) -> None:
        """Raise (see ``_stopped``) if a worker ended abnormally, or none runs any more."""
        if any(task.exitcode not in (None, 0) for task in self.tasks) or not any(t.is_alive() for t in self.tasks):
            raise self._stopped()

    def _stopped(self) -> Exception:
        """The error to raise for workers that ended abnormally: the OSError one of them reported (a
        full disk), or IndexWriteError."""
        reported = []
        with contextlib.suppress(Exception):
            while True:
                item = self.resultqueue.get(timeout=0.2)
                if item[0] == _RollingSubWriter.FAILED:
                    reported.append(item)
        for _, errno, text in reported:
            if errno is not None:
                return OSError(errno, f"{text} (a worker process writing the full-text index)")
        codes = ", ".join(f"{task.name}: exit code {task.exitcode}" for task in self.tasks)
        why = "; ".join(text for _, _, text in reported)
        return IndexWriteError(f"the full-text index's worker processes stopped before the write ended ({codes})"
                               + (f": {why}" if why else ""))

    def _put(self, item) -> None:
        while True:
            self._check_tasks()
            try:
                self.jobqueue.put(item, timeout=self.POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _enqueue(self):
        docbuffer, self.docbuffer = self.docbuffer, []
        filename = f"{random_name()}.doclist"
        with self.temp_storage().create_file(filename).raw_file() as f:
            for item in docbuffer:
                pickle.dump(item, f, 2)
        if len(self.tasks) < self.procs:
            self._new_task()
        self._put((filename, len(docbuffer)))

    def _commit(self, mergetype, optimize, merge):
        if self.docbuffer:
            self._enqueue()
        for _ in self.tasks:
            self._put(None)
        finalsegments = self._merge_segments(mergetype, optimize, merge)
        for task in self.tasks:
            while task.is_alive():
                task.join(self.POLL_SECONDS)
                if any(other.exitcode not in (None, 0) for other in self.tasks):
                    break
        if any(task.exitcode != 0 for task in self.tasks):
            raise self._stopped()
        results = []
        for task in self.tasks:
            try:
                results.append(self.resultqueue.get(timeout=self.RESULT_SECONDS))
            except queue.Empty:
                raise IndexWriteError(f"{task.name} of the full-text index's writer sent no segments") from None
        finalsegments += [segment for _, _, segments in results for segment in segments]
        if self._added:
            finalsegments.append(self._finalize_segment())
        else:
            self._close_segment()
        self._commit_toc(finalsegments)
        self._finish()

    def cancel(self):
        """Stop the workers (SIGTERM, then SIGKILL), drop their work and release the index's lock."""
        try:
            self._stop_tasks()
        finally:
            _discard_writer(self)

    def _stop_tasks(self) -> None:
        for task in self.tasks:
            if task.is_alive():
                with contextlib.suppress(Exception):
                    task.terminate()
        for task in self.tasks:
            task.join(self.STOP_SECONDS)
            if task.is_alive():
                with contextlib.suppress(Exception):
                    task.kill()
                task.join(self.STOP_SECONDS)
        for q in (self.jobqueue, self.resultqueue):  # never wait at exit to flush what no one reads
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()


def _discard_writer(writer) -> None:
    """Close WRITER without committing anything: its segment is dropped, its lock released.

    Each step is tried on its own (the writer may be in any state after a failure)."""
    if getattr(writer, "is_closed", True):
        return
    with contextlib.suppress(Exception):
        writer._close_segment()
    with contextlib.suppress(Exception):
        writer._finish()
    if not writer.is_closed:
        lock = getattr(writer, "writelock", None)
        if lock is not None:
            with contextlib.suppress(Exception):
                lock.release()
        writer.is_closed = True


def _ids_column(searcher):
    """The searcher's id column reader, opened once per searcher (opening one reads the offsets of
    every document's id, milliseconds per 100,000 documents)."""
    column = getattr(searcher, "_discovery_ids", None)
    if column is None:
        column = searcher._discovery_ids = searcher.reader().column_reader("id")
    return column


class _TopByScore(collectors.ScoredCollector):
    """The LIMIT best documents by (score descending, id ascending), exactly.

    Like Whoosh's TopCollector it skips posting blocks whose best possible score cannot reach the
    current LIMIT-th score (block-max pruning), but it keeps every document TIED with that score,
    so ties can be broken by id afterwards. It never restructures the matcher tree (``replace``),
    so every score is computed exactly as a full scan computes it. Skipped documents are not
    counted: ``count`` runs the match again, unscored, when anything could have been skipped.
    """

    def __init__(self, limit: int):
        super().__init__(replace=0)
        self.limit = limit

    def prepare(self, top_searcher, q, context):
        super().prepare(top_searcher, q, context)
        self.heap: list[float] = []  # the LIMIT best scores so far (a min-heap)
        self.candidates: list[tuple[float, int]] = []  # (score, docnum) of every doc that reached it
        self.prune_at = 4 * self.limit + 256  # candidates below the LIMIT-th score are dropped past this
        self.reaches: dict[tuple, bytes] = {}  # see _collect_term_blocks
        self.total = 0

    def collect_matches(self):
        """Score the current segment's matches (one tight loop: this is a search's hot path)."""
        lengths = _term_fast_path(self.matcher, self.subsearcher)
        if lengths is not None and not self.final_fn:
            self._collect_term_blocks(lengths)
            return
        matcher, offset, limit, heap = self.matcher, self.offset, self.limit, self.heap
        usequality = not self.top_searcher.weighting.use_final and matcher.supports_block_quality()
        final_fn, top_searcher = self.final_fn, self.top_searcher
        is_active, next_doc, score_of, id_of = matcher.is_active, matcher.next, matcher.score, matcher.id
        candidates = self.candidates
        # Blocks whose best possible score is below (never equal to) the LIMIT-th score are skipped.
        floor = math.nextafter(heap[0], -math.inf) if len(heap) == limit else None
        checkquality = True
        total = 0
        while is_active():
            if usequality and checkquality and floor is not None:
                self.skipped_times += matcher.skip_to_quality(floor)
                if not is_active():
                    break
            docnum = offset + id_of()
            score = score_of()
            if final_fn:
                score = final_fn(top_searcher, docnum, score)
            total += 1
            raised = False
            if len(heap) < limit:
                heapq.heappush(heap, score)
                candidates.append((score, docnum))
                if len(heap) == limit:
                    floor, raised = math.nextafter(heap[0], -math.inf), True
            elif score >= heap[0]:
                if score > heap[0]:
                    heapq.heapreplace(heap, score)
                    floor, raised = math.nextafter(heap[0], -math.inf), True
                candidates.append((score, docnum))
                if len(candidates) > self.prune_at:
                    least = heap[0]
                    candidates[:] = [c for c in candidates if c[0] >= least]
                    self.prune_at = max(self.prune_at, 2 * len(candidates))  # (ties may keep them all)
            checkquality = next_doc() or raised
        self.total += total

    def _collect_term_blocks(self, lengths: bytes):
        """collect_matches for one term's postings on a segment without deletions, a block at a
        time: each document's score is the scorer's own ``_score(weight, length)`` with the weight
        and length the matcher would read, so the scores are the same floats. Blocks are read
        without their positions (``_block_postings``); a block whose every score is below the
        LIMIT-th score so far is counted and passed over, as the per-document loop would."""
        matcher, offset, limit, heap, candidates = self.matcher, self.offset, self.limit, self.heap, self.candidates
        scorer = matcher.scorer
        score, to_length = scorer._score, byte_to_length
        # A score depends only on the weight and the length byte: one table of 256 per weight.
        params = (scorer.idf, scorer.avgfl, scorer.B, scorer.K1)
        tables: dict[float, list] = {}

        def table(weight: float) -> list:
            found = tables[weight] = _score_table(params, weight, score)
            return found

        # Once LIMIT scores are in, a block is first screened by its length bytes: reach[b] is 1
        # where a weight of the block (one, or a frozenset) scores at least LEAST with length byte b.
        reaches = self.reaches

        def reach(least: float, weights) -> bytes:
            key = (params, least, weights)
            found = reaches.get(key)
            if found is None:
                if type(weights) is float:
                    row = tables.get(weights) or table(weights)
                    found = bytes([1] + [value >= least for value in row[1:]])
                else:
                    bits = 0
                    for w in weights:
                        bits |= int.from_bytes(reach(least, w), "big")
                    found = bits.to_bytes(256, "big")
                if len(reaches) >= 1024:
                    reaches.clear()
                reaches[key] = found
            return found

        length_of = lengths.__getitem__
        floor = math.nextafter(heap[0], -math.inf) if len(heap) == limit else None
        total = 0
        while matcher.is_active():
            if floor is not None:
                self.skipped_times += matcher.skip_to_quality(floor)
                if not matcher.is_active():
                    break
            ids, weights = _block_postings(matcher)
            start, end = matcher._i, matcher._blocklength
            if start or end != len(ids):
                ids = ids[start:end]
                weights = weights if type(weights) is float else weights[start:end]
            lens = bytes(map(length_of, ids))
            total += len(ids)
            least = heap[0] if len(heap) == limit else None
            if 0 in lens:  # a posting whose length byte is 0: score it as the matcher would
                each = [weights] * len(ids) if type(weights) is float else weights
                scores = [score(w, to_length(b) if b else None) for b, w in zip(lens, each, strict=True)]
                postings = zip(ids, scores, strict=True)
            elif least is not None:  # only the documents that can reach the LIMIT-th score so far
                distinct = weights if type(weights) is float else frozenset(weights)
                mask = lens.translate(reach(least, distinct))
                if 1 not in mask:
                    matcher._next_block()
                    continue
                if type(weights) is float:
                    row = tables.get(weights) or table(weights)
                    postings = [(ids[i], row[lens[i]]) for i in compress(range(len(ids)), mask)]
                else:
                    for w in distinct.difference(tables):
                        table(w)
                    postings = [(ids[i], tables[weights[i]][lens[i]]) for i in compress(range(len(ids)), mask)]
            elif type(weights) is float:
                postings = zip(ids, map((tables.get(weights) or table(weights)).__getitem__, lens), strict=True)
            else:
                for w in set(weights).difference(tables):
                    table(w)
                postings = zip(ids, map(getitem, map(tables.__getitem__, weights), lens), strict=True)
            for docnum, value in postings:
                if least is not None and value < least:
                    continue
                if len(heap) < limit:
                    heapq.heappush(heap, value)
                    if len(heap) == limit:
                        least = heap[0]
                elif value > least:
                    heapq.heapreplace(heap, value)
                    least = heap[0]
                candidates.append((value, offset + docnum))
            if least is not None:
                floor = math.nextafter(least, -math.inf)
                if len(candidates) > self.prune_at:
                    candidates[:] = [c for c in candidates if c[0] >= least]
                    self.prune_at = max(self.prune_at, 2 * len(candidates))
            matcher._next_block()
        self.total += total

    def collect(self, sub_docnum):
        raise NotImplementedError  # collect_matches does the collecting

    def count(self) -> int:
        """Every match: counted while collecting unless blocks were skipped."""
        if not self.skipped_times:
            return self.total
        q, searcher = self.q, self.top_searcher
        if isinstance(q, wq.Term) and not searcher.reader().has_deletions():
            return searcher.doc_frequency(q.fieldname, q.text)  # every posting is a live match
        return sum(1 for _ in searcher.docs_for_query(q))

    def results(self):
        raise NotImplementedError  # see _top_by_score


def _term_fast_path(matcher, subsearcher) -> bytes | None:
    """The in-memory length bytes of the term's field, if MATCHER is a plain BM25 term matcher on
    a segment without deletions (the case _collect_term_blocks handles); else None."""
    if type(matcher) is not whoosh3.W3LeafMatcher or type(matcher.scorer) is not scoring.BM25FScorer:
        return None
    reader = subsearcher.reader()
    perdoc = getattr(reader, "_perdoc", None)
    term = matcher.term()
    if type(perdoc) is not whoosh3.W3PerDocReader or reader.has_deletions() or matcher._byteids or not term:
        return None
    lengths = perdoc._cached_reader(whoosh3._lenfield(term[0]), whoosh3.LENGTHS_COLUMN)
    if type(lengths) is not _LoadedLengths or lengths._count != lengths._doccount:
        return None
    return lengths._bytes


# Scores of BM25F (idf, avgfl, B, K1) for one weight, by length byte: a table is a pure function
# of its key, kept across segments and searches (a few kilobytes each).
_SCORE_TABLES: dict[tuple, list] = {}
_SCORE_TABLES_KEPT = 4096


def _score_table(params: tuple, weight: float, score) -> list:
    """[None, SCORE(WEIGHT, byte_to_length(1)), ..., SCORE(WEIGHT, byte_to_length(255))] for a
    BM25FScorer whose (idf, avgfl, B, K1) are PARAMS and whose ``_score`` is SCORE."""
    key = (*params, weight)
    found = _SCORE_TABLES.get(key)
    if found is None:
        if len(_SCORE_TABLES) >= _SCORE_TABLES_KEPT:
            _SCORE_TABLES.clear()
        found = _SCORE_TABLES[key] = [None] + [score(weight, byte_to_length(b)) for b in range(1, 256)]
    return found


# How pickle protocol 2 starts a tuple of bytes values (each rebuilt by a call to _codecs.encode).
_VALUES_MARK = b"(c_codecs\nencode\n"


def _block_postings(matcher) -> tuple:
    """(document numbers, weights) of a W3LeafMatcher's current block, the values its
    ``_read_ids`` and ``_read_weights`` give (WEIGHTS is one float when every posting has it),
    without unpickling the block's values.

    A block is the zlib-compressed pickle of (id deltas, weights, values). For the text field the
    values are the encoded positions: three quarters of the bytes, and most of the unpickling time.
    Only the head of the block is decompressed (ids and weights take at most 14 bytes a posting),
    cut where the values tuple starts, and unpickled closed as a 2-tuple. A block of any other
    shape (no such tuple, other types or lengths) is read by the matcher itself.
    """
    n = matcher._blocklength
    if matcher._data is None and matcher._ids is None and matcher._weights is None and not matcher._byteids:
        raw = matcher._postfile.get(matcher._dataoffset, matcher._nextoffset - matcher._dataoffset)
        if matcher._compression:
            raw = zlib.decompressobj().decompress(raw, 14 * n + 64)
        at = raw.find(_VALUES_MARK)
        if at > 0:
            try:
                data = pickle.loads(raw[:at] + b"\x86.")  # TUPLE2, STOP
            except Exception:  # noqa: BLE001 - not the expected shape: the matcher reads it
                data = None
            if type(data) is tuple and len(data) == 2 and type(data[0]) is tuple and len(data[0]) == n:
                deltas, weights = data
                if weights is None:  # every weight 1.0 (as _read_weights expands it)
                    return tuple(accumulate(deltas)), 1.0
                if type(weights) is float:  # one weight for all, stored as a 32-bit float
                    return tuple(accumulate(deltas)), array("f", (weights,))[0]
                if type(weights) is tuple and len(weights) == n:
                    return tuple(accumulate(deltas)), weights
    if matcher._ids is None:
        matcher._read_ids()
    if matcher._weights is None:
        matcher._read_weights()
    return matcher._ids, matcher._weights


def _top_by_score(searcher, q, limit: int, ids) -> tuple[int, list[tuple[float, str]]]:
    """(total matches, the LIMIT best as (score, id)) in (score descending, id ascending) order."""
    collector = _TopByScore(limit)
    # The context a score-sorted search builds (the matchers, hence the scores, are the same).
    searcher.search_with_collector(q, collector, searcher.context(needs_current=True))
    floor = collector.heap[0] if len(collector.heap) == limit else -math.inf
    best = [(score, _as_str(ids[docnum])) for score, docnum in collector.candidates if score >= floor]
    best.sort(key=lambda item: (-item[0], item[1]))
    return collector.count(), best[:limit]


def _equal_scores(q) -> bool:
    """True when every document Q matches gets the same score, so relevance order is id order:
    everything, a date range, an id set, a keyword term, and ANDs (and AND NOTs) of those."""
    if isinstance(q, (wq.Every, TimeRange, IdsQuery)):
        return True
    if isinstance(q, wq.Term):
        return q.fieldname == KEYWORD_FIELD
    if isinstance(q, wq.AndNot):
        return _equal_scores(q.a)
    if type(q) is wq.And:
        return all(_equal_scores(child) for child in q.subqueries)
    return False


def _doc_set(q, sub) -> set[int]:
    """The documents of one segment (searcher SUB) that Q matches, by set operations where Q is
    everything, an AND or an AND NOT (stepping a matcher through 180,000 documents of "NOT x"
    took 0.3 s; the set difference takes milliseconds)."""
    if type(q) is wq.Every and not q.fieldname:
        reader = sub.reader()
        docs = set(range(reader.doc_count_all()))
        return docs - reader.deleted_docs_set if reader.has_deletions() else docs
    if isinstance(q, wq.AndNot):
        return _doc_set(q.a, sub).difference(q.b.matcher(sub, sub.boolean_context()).all_ids())
    if type(q) is wq.And and q.subqueries:
        found = _doc_set(q.subqueries[0], sub)
        for child in q.subqueries[1:]:
            found &= _doc_set(child, sub)
        return found
    return set(q.matcher(sub, sub.boolean_context()).all_ids())


def _top_by_id(searcher, q, limit: int, ids) -> tuple[int, list[tuple[float, str]]]:
    """(total matches, the LIMIT first as (score, id)) in id order, for a query whose matches all
    score the same (``_equal_scores``): what a sort by (score, id) gives, scoring only LIMIT."""
    total = 0
    picked: list[tuple[bytes, int]] = []
    for sub, offset in searcher.leaf_searchers():
        matched = _doc_set(q, sub)
        total += len(matched)
        if not matched:
            continue
        found: list[int] = []
        for docnum in _id_order(sub.reader()):
            if docnum in matched:
                found.append(docnum)
                if len(found) >= limit:
                    break
        picked.extend((ids[offset + docnum], offset + docnum) for docnum in found)
    picked.sort()
    top = picked[:limit]
    scores = _scores_at(searcher, q, [docnum for _, docnum in top])
    return total, [(scores[docnum], _as_str(doc_id)) for doc_id, docnum in top]


def _top_by_time(searcher, q, limit: int, newest_first: bool, ids) -> tuple[int, list[tuple[float, str]]]:
    """(total matches, the LIMIT first as (score, id)) by time (ties by id ascending), exactly as a
    sort of every match by (ts, id) would give them; only the LIMIT are scored.

    Per segment: the matches (unscored), then the segment's documents in time order (kept per
    reader) until LIMIT matches and every match tied with the last one are found.
    """
    total = 0
    picked: list[tuple[int, bytes, int]] = []
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        matched = set(q.matcher(sub, sub.boolean_context()).all_ids())
        total += len(matched)
        if not matched:
            continue
        values = _ts_values(reader)
        order = _ts_order(reader)
        found: list[int] = []
        last = None
        for docnum in reversed(order) if newest_first else order:
            if docnum in matched:
                value = values[docnum]
                if len(found) >= limit and value != last:
                    break
                found.append(docnum)
                last = value
        for docnum in found:
            key = 0 - values[docnum] if newest_first else values[docnum]
            picked.append((key, ids[offset + docnum], offset + docnum))
    picked.sort()
    top = picked[:limit]
    scores = _scores_at(searcher, q, [docnum for _, _, docnum in top])
    return total, [(scores[docnum], _as_str(doc_id)) for _, doc_id, docnum in top]


def _scores_at(searcher, q, docnums: list[int]) -> dict[int, float]:
    """The score of each of DOCNUMS (global, all matching Q), as a scored search computes it."""
    out: dict[int, float] = {}
    context = searcher.context(needs_current=True)
    for sub, offset in searcher.leaf_searchers():
        mine = sorted(d - offset for d in docnums if offset <= d < offset + sub.doc_count_all())
        if not mine:
            continue
        matcher = q.matcher(sub, context)
        for docnum in mine:
            matcher.skip_to(docnum)
            if not (matcher.is_active() and matcher.id() == docnum):
                raise RuntimeError(f"document {offset + docnum} matched {q!r} but its matcher skipped it")
            out[offset + docnum] = matcher.score()
    return out


def _live_docs(writer) -> int:
    """Documents in the writer's committed segments, deletions excluded."""
    return sum(segment.doc_count() for segment in writer.segments)


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
            prefix = _KW_RAW["sender_id" if name == "sender_ids" else "conversation_id"]
            ids = sorted(value)  # type: ignore[call-overload]
            return wq.Or([_kw(prefix + i) for i in ids]) if ids else wq.NullQuery
        if name == "ids":  # message ids the search layer resolved (review tags, notes)
            return ids_query(value)  # type: ignore[arg-type]
        if name == "participant":
            raise ValueError("participant: must be resolved to conversation_ids by the search layer")
        if not isinstance(value, str):
            raise TypeError(f"field {name} needs a string value")
        if name == "has":
            return _kw(_KW_FLAGS["has_attachment"]) if value.lower() == "attachment" else wq.NullQuery
        if name == "is":
            flag = {"edited": "edited", "deleted": "deleted"}.get(value.lower())
            return _kw(_KW_FLAGS[flag]) if flag else wq.NullQuery
        key = name_key(value)
        if not key:
            return wq.NullQuery
        if name == "sender":
            return wq.Or([_kw(_KW_RAW["sender_id"] + value), _kw(_KW_KEYED["sender_name"] + key)])
        if name == "conversation":
            return wq.Or([_kw(_KW_RAW["conversation_id"] + value), _kw(_KW_KEYED["conversation_name"] + key)])
        attr = KEYWORD_ATTRS.get(name)
        if attr is None:
            raise ValueError(f"unknown field {name!r}")
        return _kw(_KW_KEYED[attr] + key)

    def dates(self, node: DateRange):
        start, end = range_us(node)
        if start is not None and end is not None and start > end:
            return wq.NullQuery
        return TimeRange(start, end)


def _kw(term: str):
    return wq.Term(KEYWORD_FIELD, term)


class _SortedListMatcher(mcore.ListMatcher):
    """A ListMatcher whose skip_to bisects (the base class walks the list)."""

    def skip_to(self, id):
        if not self.is_active():
            raise ReadTooFar
        if id > self.id():
            self._i = bisect.bisect_left(self._ids, id, self._i)


class TimeRange(wq.Query):
    """Messages whose exact timestamp (the ts column) is within [LO, HI]; None is open-ended.

    Per segment, the column is read into memory once per reader and scanned for the range (about
    40 ns a document), and the answer is kept for the reader's life (a few ranges). Every match
    scores 1.0, as a constant-score NumericRange did.
    """

    def __init__(self, lo: int | None, hi: int | None):
        self.lo, self.hi = lo, hi

    def __eq__(self, other):
        return type(other) is type(self) and (other.lo, other.hi) == (self.lo, self.hi)

    def __hash__(self):
        return hash((type(self).__name__, self.lo, self.hi))

    def __repr__(self):
        return f"TimeRange({self.lo}, {self.hi})"

    def is_leaf(self):
        return True

    def terms(self, phrases=False):
        return iter(())

    def estimate_size(self, ixreader):
        return ixreader.doc_count_all()

    def matcher(self, searcher, context=None):
        docnums = _time_range_docnums(searcher.reader(), self.lo, self.hi)
        return _SortedListMatcher(docnums) if docnums else mcore.NullMatcher()


_RANGES_KEPT = 16


def _time_range_docnums(reader, lo: int | None, hi: int | None) -> list[int]:
    """Sorted live document numbers of one segment READER with LO <= ts <= HI."""
    cache = reader.__dict__.setdefault("_discovery_ranges", {})
    found = cache.get((lo, hi))
    if found is None:
        values = _ts_values(reader)
        if lo is None and hi is None:
            found = list(range(len(values)))
        elif lo is None:
            found = [docnum for docnum, value in enumerate(values) if value <= hi]
        elif hi is None:
            found = [docnum for docnum, value in enumerate(values) if lo <= value]
        else:
            found = [docnum for docnum, value in enumerate(values) if lo <= value <= hi]
        if reader.has_deletions():
            deleted = reader.deleted_docs_set
            found = [docnum for docnum in found if docnum not in deleted]
        if len(cache) >= _RANGES_KEPT:
            cache.pop(next(iter(cache)))
        cache[(lo, hi)] = found
    return found


class _SegmentArrays:
    """Arrays derived from one segment's columns (its timestamps, its documents in time or id
    order). A segment's files never change, so they are kept across searchers and commits, keyed
    by index folder and segment id, up to MAX_DOCS documents' worth (about 8 bytes a document)."""

    MAX_DOCS = 8_000_000

    def __init__(self):
        self._items: dict[tuple[object, str, str], array] = {}
        self._docs = 0
        self._lock = threading.Lock()

    def get(self, reader, kind: str, build) -> array:
        storage = reader.storage()
        key = (getattr(storage, "folder", id(storage)), reader.segment().segment_id(), kind)
        found = self._items.get(key)
        if found is None:
            found = build(reader)
            with self._lock:
                self._items[key] = found
                self._docs += len(found)
                while self._docs > self.MAX_DOCS and len(self._items) > 1:
                    self._docs -= len(self._items.pop(next(iter(self._items))))
        return found


_SEGMENT_ARRAYS = _SegmentArrays()


def _ts_values(reader) -> array:
    """The ts column of one segment READER as an array indexed by document number."""
    return _SEGMENT_ARRAYS.get(reader, "ts", _read_ts)


def _read_ts(reader) -> array:
    column = reader.column_reader("ts", translate=False)
    count = reader.doc_count_all()
    values = array("q")
    if type(column) is NumericColumn.Reader and column._typecode == "q":
        # The column's bytes as they are (big-endian 8-byte integers), without a read per value.
        values.frombytes(column._dbfile.get(column._basepos, column._count * 8) if column._count else b"")
        if sys.byteorder == "little":
            values.byteswap()
        values.extend([column.default_value()] * (count - len(values)) if count > len(values) else [])
    else:
        values.extend(column[docnum] for docnum in range(count))
    return values


def _ts_order(reader) -> array:
    """The document numbers of one segment READER in ts order (ties in docnum order)."""
    return _SEGMENT_ARRAYS.get(reader, "ts_order", lambda r: array("l", sorted(range(len(_ts_values(r))),
                                                                                 key=_ts_values(r).__getitem__)))


def _id_order(reader) -> array:
    """The document numbers of one segment READER in id order."""

    def build(r) -> array:
        ids = list(r.column_reader("id", translate=False))
        return array("l", sorted(range(len(ids)), key=ids.__getitem__))

    return _SEGMENT_ARRAYS.get(reader, "id_order", build)
