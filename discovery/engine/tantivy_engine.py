"""The Tantivy engine (``tantivy`` on PyPI, the official Python bindings) behind discovery's seam.

Optional: ``pip install 'discovery[tantivy]'`` (tantivy >= 0.26: ``terms_with_prefix``,
``regex_phrase_query`` and ``empty_query`` are used). The only module that imports ``tantivy``. It
gives exactly the answers of ``discovery.query.match`` (the brute-force oracle), like Whoosh.

Tokens. Tantivy never tokenizes our text: ``discovery.analysis.tokenize`` does, and the tokens are
handed over joined by single spaces into a field whose tokenizer is Tantivy's ``whitespace`` (it
splits on ASCII whitespace only, and none of our tokens contains whitespace: they are runs of word
characters or CJK bigrams), so Tantivy's positions are our token positions. The per-character CJK
unigrams go into a second field the same way. Tokens Tantivy cannot hold (over 65,530 UTF-8 bytes;
it would drop them silently) are replaced by a marker term at the same position, and documents with
a marker are always checked by the oracle (below), so even they are answered exactly.

Queries. Our AST maps onto Tantivy query objects (never Tantivy's query parser):

- Term: ``term_query``; a lone CJK character (CjkChar): ``term_query`` on the unigram field.
- Wildcard: ``regex_query`` (the pattern with ``*`` -> ``.*``, ``?`` -> ``.``, every other
  character escaped): Tantivy's regex automaton runs over the whole term dictionary, uncapped.
- Fuzzy: ``fuzzy_term_query`` (Levenshtein with adjacent transpositions costing one: the optimal
  string alignment distance, like ours) for up to 2 edits and no fixed prefix; otherwise the term
  dictionary is expanded here (``terms_with_prefix``, filtered by our own predicate), uncapped.
  Stem: the dictionary under the stem, filtered by our ``stem``. Expansions become ``term_set_query``.
- Phrase, w/N, pre/N: compiled to the exact set of position patterns ("shapes") they allow: a
  list of (offset, token set) places. ``"a b"~1`` is ``a b`` or ``a _ b``; ``a w/2 b`` is ``a b``,
  ``a _ b``, ``b a``, ``b _ a``. Each shape is a ``phrase_query`` with explicit offsets, or a
  ``regex_phrase_query`` when a place is a wildcard, an OR-group or an expansion. Tantivy's own
  phrase slop is a budget that also allows reordering, so it is never used as such, with one exact
  exception: with offsets 0 and K and slop S the second place may sit K-S..K+S positions after
  the first, so two-place shapes that differ only in their gap merge (``a w/5 b`` is two queries,
  not ten; see ``shape_groups``). At most MAX_QUERIES queries per node.
- And / Or / Not / MatchAll: ``boolean_query`` (Must / Should / MustNot) and ``all_query``.
- Fields: ``term_query`` / ``term_set_query`` on raw keyword fields (values as ``name_key``
  gives them, ids verbatim); has/is flags in one raw field. Dates: ``range_query`` on the i64 fast
  field ``ts`` (microseconds, inclusive): exact to the microsecond, no day tricks needed.

Candidate verification. Where Tantivy cannot express our semantics (``not w/N``; a phrase or
proximity needing over MAX_QUERIES queries; a regex phrase over too many terms; documents holding
an over-long token) the node gets a SUPERSET query (every document that may match) and, when known, a
SUBSET query (documents that surely match). The documents in superset-minus-subset, narrowed by
what the rest of the query requires of them, are fetched and checked token by token with the
oracle's own rules (``discovery.query.match``'s token predicates and its phrase and proximity
interval code, as the Whoosh engine's span queries reuse them); the node then becomes
``subset OR id in (verified ids)``, so totals, paging and sorting stay exact. The cost: each
message's tokens are stored (space-joined, in Tantivy's LZ4-compressed doc store: about a fifth of
the index), and each checked candidate costs a stored-document read and an interval computation
(some 20-60 microseconds), so a ``not w/N`` over two words that often meet checks every message
where they do meet (hundreds to thousands at 200,000 messages: a few to tens of milliseconds).

Sorting. Relevance is Tantivy's BM25; time sorts use the ``ts`` fast field. Ties (equal score or
equal timestamp) are broken by id, like the Whoosh engine, whenever the tied group has at most
TIE_GROUP_MAX documents; larger groups (a filter-only query: every score is equal) stay in index
order, which is deterministic for a given index, so paging is stable.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from operator import itemgetter
from pathlib import Path

import tantivy

from discovery.analysis import is_cjk, remembered_joined_tokens, token_texts
from discovery.engine import SORTS, EngineResult, IndexDoc
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
    REVIEW_FIELDS,
    REVIEW_FLAGS,
    fuzzy_matches,
    near_intervals,
    phrase_intervals,
    phrase_word_predicate,
    stem,
    term_predicate,
    wildcard_prefix,
    wildcard_regex,
)

Q = tantivy.Query
MUST, SHOULD, MUST_NOT = tantivy.Occur.Must, tantivy.Occur.Should, tantivy.Occur.MustNot

# Bump when the schema or the token encoding changes: older indexes must be rebuilt.
LAYOUT = 2  # 2: ids as numbers in columns too (ID_HIGH, ID_LOW)
LAYOUT_FILE = "discovery-tantivy.json"
TEXT_FIELD = "text"
UNIGRAM_FIELD = "cjk1"
BODY_FIELD = "tokens"  # our tokens, space-joined, stored only: what candidates are checked against
FLAGS_FIELD = "flags"
ID_HIGH, ID_LOW = "id_high", "id_low"  # a message id "m" + 19 hex digits as numbers: 3 digits, 16 digits
NOT_AN_ID_NUMBER = 1 << 12  # ID_HIGH of any other id (tests, hand-made): its stored id is read instead
MAX_TOKEN_BYTES = 65_530  # Tantivy drops longer tokens (MAX_TOKEN_LEN = u16::MAX - 5)
CJK_FIRST = "\u1100"  # no character below this is CJK to discovery.analysis (Hangul Jamo start)
LONG_TOKEN = "\x00long"  # stands in for such a token; no token of ours contains NUL
MAX_SHAPES = 4096  # position patterns enumerated per phrase / proximity node, at most
MAX_QUERIES = 64  # Tantivy phrase queries per node (after merging); beyond: candidate verification
MAX_PLACE_TERMS = 64  # a prefix wildcard inside a phrase or proximity expanding to more stays a regex
MAX_COMBOS = 8  # literal phrase queries for one shape whose places are small term sets; beyond: a regex
# Rough costs (ms) that decide between many phrase queries and checking a few candidates by hand.
QUERY_MS, CHECK_MS = 0.4, 0.03
REPEAT_OFFSET = 1 << 24  # "occurs twice or more": a window of 1..2**25 positions (Tantivy's are u32)
MAX_REMEMBERED = 500_000  # ids of uncommitted documents kept for replacement; then a commit
TIE_GROUP_MAX = 256  # a tied group up to this size is ordered by id (each id is a stored-field read)
MAX_FUZZY_EDITS = 2  # what Tantivy's Levenshtein automata support
WORD_TERMS_MAX = 8  # a place of up to this many words is term queries, not a term_set_query (place_query)
ID_TERMS_MAX = 256  # id sets up to this size are term queries, not a term_set_query (see id_set)

_KEYWORDS = ("conversation_id", "sender_id")  # matched verbatim
_NAMED = ("source_format", "custodian", "kind", "conversation_type", "sender_name", "conversation_name")
_NON_WORD_ASCII = re.compile(r"[^0-9A-Za-z_]+")
_LITERAL = re.compile(r"[0-9A-Za-z_]")

Shape = tuple[tuple[int, frozenset], ...]  # ((offset, place), ...) with offsets from 0, sorted
Place = frozenset  # of ("t", literal token) / ("r", regex) alternatives


def make_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    # The id again, as two numbers in columns (see _id_numbers), so listing every hit's id reads two
    # columns instead of each hit's stored document (~3 us apiece: 75 ms of a 19,000-hit search
    # page's facets). A text fast field sorted by was slower still (~20 us a hit).
    sb.add_unsigned_field(ID_HIGH, stored=False, indexed=False, fast=True)
    sb.add_unsigned_field(ID_LOW, stored=False, indexed=False, fast=True)
    sb.add_text_field(TEXT_FIELD, stored=False, tokenizer_name="whitespace", index_option="position")
    sb.add_text_field(UNIGRAM_FIELD, stored=False, tokenizer_name="whitespace", index_option="freq")
    sb.add_bytes_field(BODY_FIELD, stored=True, indexed=False, fast=False)
    for name in _KEYWORDS + _NAMED + (FLAGS_FIELD,):
        sb.add_text_field(name, stored=False, tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("ts", stored=False, indexed=True, fast=True)
    return sb.build()


# ---------------------------------------------------------------------------- analysis


def analyzed(text: str, joined: str | None = None) -> tuple[str, str]:
    """(our tokens joined by spaces, the CJK characters of TEXT joined by spaces) for TEXT.

    ``token_texts`` is exactly the texts of ``tokenize`` (a test checks that none contains
    whitespace, so joining loses nothing). The unigram field only answers "does the message hold
    this CJK character": every character of a CJK run is in one of its tokens, so the characters
    of the CJK tokens, each once, are the same set as ``cjk_unigrams`` gives, without normalizing
    the text a second time.
    """
    if joined is None:  # (else JOINED is " ".join(token_texts(text)), computed already)
        joined = " ".join(token_texts(text))
    if text.isascii():
        return joined, ""
    tokens = joined.split(" ") if joined else []
    chars = dict.fromkeys(c for t in tokens if t[0] >= CJK_FIRST and is_cjk(t[0]) for c in t)
    return joined, " ".join(chars)


def _indexable(joined: str) -> str:
    """JOINED with every token Tantivy would drop (too long) replaced by the marker term."""
    if len(joined) <= MAX_TOKEN_BYTES // 4:  # a token this long needs at least this many characters
        return joined
    return " ".join(LONG_TOKEN if len(word.encode("utf-8")) > MAX_TOKEN_BYTES else word for word in joined.split(" "))


@lru_cache(maxsize=65536)
def _key(value: str) -> str:
    return name_key(value)


_SCHEMA = make_schema()  # what from_dict converts values by (the same fields every index has)


def _document(doc: IndexDoc) -> tantivy.Document:
    """DOC as a Tantivy document: built from one dict in one call (a dozen add_* calls cost twice as much).

    Its tokens may have been computed already, by ingest's parsing workers (``remember_tokens``)."""
    text = doc.text or ""
    joined, unigrams = analyzed(text, remembered_joined_tokens(doc, text))
    fields: dict[str, object] = {"id": doc.id, TEXT_FIELD: _indexable(joined)}
    if unigrams:
        fields[UNIGRAM_FIELD] = unigrams
    fields[BODY_FIELD] = joined.encode("utf-8")
    for name in _KEYWORDS:
        value = getattr(doc, name)
        if value:
            fields[name] = value
    for name in _NAMED:
        value = _key(getattr(doc, name) or "")
        if value:
            fields[name] = value
    flags = [flag for flag, on in (("attachment", doc.has_attachment), ("edited", doc.edited),
                                   ("deleted", doc.deleted)) if on]
    if flags:
        fields[FLAGS_FIELD] = flags
    fields["ts"] = doc.sent_at_us
    fields[ID_HIGH], fields[ID_LOW] = _id_numbers(doc.id)
    return tantivy.Document.from_dict(fields, _SCHEMA)


def _document_by_calls(doc: IndexDoc) -> tantivy.Document:
    """The same document as ``_document``, field by field (kept as the reference the tests compare with)."""
    joined, unigrams = analyzed(doc.text or "")
    out = tantivy.Document()
    out.add_text("id", doc.id)
    out.add_text(TEXT_FIELD, _indexable(joined))
    if unigrams:
        out.add_text(UNIGRAM_FIELD, unigrams)
    out.add_bytes(BODY_FIELD, joined.encode("utf-8"))
    for name in _KEYWORDS:
        value = getattr(doc, name) or ""
        if value:
            out.add_text(name, value)
    for name in _NAMED:
        value = _key(getattr(doc, name) or "")
        if value:
            out.add_text(name, value)
    if doc.has_attachment:
        out.add_text(FLAGS_FIELD, "attachment")
    if doc.edited:
        out.add_text(FLAGS_FIELD, "edited")
    if doc.deleted:
        out.add_text(FLAGS_FIELD, "deleted")
    out.add_integer("ts", doc.sent_at_us)
    high, low = _id_numbers(doc.id)
    out.add_unsigned(ID_HIGH, high)
    out.add_unsigned(ID_LOW, low)
    return out


_ID_SHAPE = re.compile("m[0-9a-f]{19}")  # discovery.model.stable_id


def _id_numbers(doc_id: str) -> tuple[int, int]:
    """A message id as (its first 3 hex digits, its last 16) for the ID_HIGH and ID_LOW columns."""
    if _ID_SHAPE.fullmatch(doc_id):
        return int(doc_id[1:4], 16), int(doc_id[4:], 16)
    return NOT_AN_ID_NUMBER, 0


# ---------------------------------------------------------------------------- the engine


class TantivyEngine:
    """A Tantivy index in INDEX_DIR (created if missing). One writer at a time; searches from any thread."""

    name = "tantivy"
    remembers_tokens = True  # its documents take tokens computed before (analysis.remember_tokens)

    def __init__(self, index_dir: str | Path, *, heap_mb: int = 256, threads: int = 0):
        self.path = Path(index_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        layout = self.path / LAYOUT_FILE
        self.schema = make_schema()
        if tantivy.Index.exists(str(self.path)):
            recorded = json.loads(layout.read_text()).get("layout") if layout.exists() else None
            if recorded != LAYOUT:
                raise ValueError(
                    f"{self.path}: this Tantivy index has layout {recorded!r}, this version writes {LAYOUT}; "
                    "rebuild it with `discovery reindex`"
                )
            self._index = tantivy.Index.open(str(self.path))
        else:
            self._index = tantivy.Index(self.schema, str(self.path))
            layout.write_text(json.dumps({"layout": LAYOUT, "engine": "tantivy"}))
        self.heap_bytes = heap_mb * 1_000_000
        self.threads = threads
        self._writer: tantivy.IndexWriter | None = None
        self._written: set[str] = set()  # ids added (by add) to the open writer since its last commit
        self._unrecorded = False  # whether add_new added documents since the last commit
        self._may_exist = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ writing

    def _get_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._index.writer(heap_size=self.heap_bytes, num_threads=self.threads)
            self._may_exist = self._index.searcher().num_docs > 0
        return self._writer

    def add(self, docs: Iterable[IndexDoc]) -> int:
        """Index DOCS, replacing any document with the same id (committed or not)."""
        return self._add(docs, replace=True)

    def add_new(self, docs: Iterable[IndexDoc]) -> int:
        """Index DOCS the caller knows are in no segment and not yet added (ingest's fresh ids):
        no lookups, and no memory of their ids."""
        return self._add(docs, replace=False)

    def _add(self, docs: Iterable[IndexDoc], replace: bool) -> int:
        count = 0
        with self._lock:
            if replace and self._unrecorded:
                self.commit()  # ids added by add_new are not remembered: look them up once committed
            writer = self._get_writer()
            searcher = self._index.searcher() if replace and self._may_exist else None
            for doc in docs:
                doc_id = doc.id
                if replace:
                    # A delete only hides documents added before it, so delete-then-add replaces.
                    if doc_id in self._written or (searcher is not None and searcher.doc_freq("id", doc_id)):
                        writer.delete_documents_by_term("id", doc_id)
                    self._written.add(doc_id)
                else:
                    self._unrecorded = True
                writer.add_document(_document(doc))
                count += 1
                if len(self._written) >= MAX_REMEMBERED:  # bound the memory: commit, then look up
                    self.commit()
                    writer = self._get_writer()
                    searcher = self._index.searcher()
        return count

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            writer = self._get_writer()
            for doc_id in ids:
                writer.delete_documents_by_term("id", doc_id)

    def commit(self) -> None:
        with self._lock:
            if self._writer is None:
                return
            writer, self._writer = self._writer, None
            writer.commit()
            writer.wait_merging_threads()  # finish merges and release the index lock
            self._written.clear()
            self._unrecorded = False
            self._index.reload()

    def cancel(self) -> None:
        """Discard what was added since the last commit and release the index's lock (a failed ingest:
        the next one indexes what case.db kept, see discovery.index_state)."""
        with self._lock:
            writer, self._writer = self._writer, None
            self._written.clear()
            self._unrecorded = False
            if writer is not None:
                writer.rollback()
                writer.wait_merging_threads()  # consumes the writer: its lock is released

    # ------------------------------------------------------------------ searching

    def _searcher(self) -> tantivy.Searcher:
        return self._index.searcher()

    def to_tantivy(self, node: Node) -> tantivy.Query:
        """Our AST as one Tantivy query (verification, where needed, is done here and now)."""
        return _Plan(self, self._searcher()).query(node)

    def search(self, query: object, *, sort: str = "relevance", offset: int = 0, limit: int = 50) -> EngineResult:
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
        searcher = self._searcher()
        try:
            return self._search(searcher, _Plan(self, searcher).query(query), sort, offset, limit)  # type: ignore[arg-type]
        except ValueError as error:
            if not _too_many_expansions(error):
                raise
        plan = _Plan(self, searcher, regex_phrases=False)
        return self._search(searcher, plan.query(query), sort, offset, limit)  # type: ignore[arg-type]

    def _search(self, searcher: tantivy.Searcher, q: tantivy.Query, sort: str, offset: int, limit: int) -> EngineResult:
        offset, limit = max(0, offset), max(0, limit)
        if limit == 0 or searcher.num_docs == 0:
            return EngineResult(total=_count(searcher, q), ids=[], scores=[])
        wanted = offset + limit
        order_by = None if sort == "relevance" else "ts"
        order = tantivy.Order.Asc if sort == "time_asc" else tantivy.Order.Desc
        # Enough hits to see the whole tied group the page may end in (one pass over the index).
        fetch = wanted + TIE_GROUP_MAX + 1
        result = searcher.search(q, limit=fetch, count=True, order_by_field=order_by, order=order)
        total = result.count
        hits = result.hits
        big_group = None  # the key of a tied group too large to order by id (it keeps index order)
        if len(hits) > wanted and hits[wanted - 1][0] == hits[wanted][0]:
            boundary = hits[wanted - 1][0]
            if sum(1 for key, _ in hits if key == boundary) <= TIE_GROUP_MAX and (
                len(hits) < fetch or hits[-1][0] != boundary
            ):
                hits = [h for h in hits if h[0] == boundary or _before(h[0], boundary, sort)]
            else:
                hits, big_group = hits[:wanted], boundary
        else:
            hits = hits[:wanted]
        sizes: dict[object, int] = {}
        for key, _ in hits:
            sizes[key] = sizes.get(key, 0) + 1
        rows = []
        for position, (key, address) in enumerate(hits):
            if key == big_group or sizes[key] > TIE_GROUP_MAX:
                rows.append((key, position, None, address))  # index order inside a huge tied group
            else:
                rows.append((key, 0, _stored_id(searcher, address), address))
        rows = sorted(rows, key=_order_key(sort))[offset:wanted]
        ids = [doc_id if doc_id is not None else _stored_id(searcher, address) for _, _, doc_id, address in rows]
        scores = [float(row[0]) for row in rows] if sort == "relevance" else self._scores(searcher, q, ids)
        return EngineResult(total=total, ids=ids, scores=scores)

    def _scores(self, searcher: tantivy.Searcher, q: tantivy.Query, ids: list[str]) -> list[float]:
        """Relevance scores of IDS for Q (time-sorted pages still report them, like Whoosh)."""
        if not ids:
            return []
        only = Q.const_score_query(Q.term_set_query(self.schema, "id", ids), 0.0)
        found = searcher.search(Q.boolean_query([(MUST, q), (MUST, only)]), limit=len(ids), count=False)
        by_id = {_stored_id(searcher, address): float(score) for score, address in found.hits}
        return [by_id.get(doc_id, 0.0) for doc_id in ids]

    def all_ids(self, query: object) -> list[str]:
        searcher = self._searcher()
        try:
            return _ids(searcher, _Plan(self, searcher).query(query))  # type: ignore[arg-type]
        except ValueError as error:
            if not _too_many_expansions(error):
                raise
        return _ids(searcher, _Plan(self, searcher, regex_phrases=False).query(query))  # type: ignore[arg-type]

    def doc_count(self) -> int:
        return self._searcher().num_docs

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self.commit()


def _count(searcher: tantivy.Searcher, q: tantivy.Query) -> int:
    return searcher.search(q, limit=1, count=True).count


def _addresses(searcher: tantivy.Searcher, q: tantivy.Query, guess: int = 1024) -> list[tantivy.DocAddress]:
    """Every document matching Q, in index order (stored documents are read fastest that way).

    One pass when there are at most GUESS of them; else a second one, now knowing how many."""
    result = searcher.search(q, limit=guess, count=True)
    hits = result.hits
    if result.count > len(hits):
        hits = searcher.search(q, limit=result.count, count=False).hits
    return sorted((address for _, address in hits), key=lambda a: (a.segment_ord, a.doc))


def _ids(searcher: tantivy.Searcher, q: tantivy.Query, guess: int = 1024) -> list[str]:
    """The id of every document matching Q, read from the ID_HIGH and ID_LOW columns.

    One pass when there are at most GUESS of them; else a second one, now knowing how many."""
    result = searcher.search(q, limit=guess, count=True)
    hits = result.hits
    if result.count > len(hits):
        hits = searcher.search(q, limit=result.count, count=False).hits
    addresses = list(map(itemgetter(1), hits))
    highs = searcher.fast_field_values(ID_HIGH, addresses)
    lows = searcher.fast_field_values(ID_LOW, addresses)
    if None not in highs and (not highs or max(highs) < NOT_AN_ID_NUMBER):  # (None: no such column in a segment)
        return list(map("m%03x%016x".__mod__, zip(highs, lows, strict=True)))
    return [f"m{high:03x}{low:016x}" if high is not None and high < NOT_AN_ID_NUMBER
            else _stored_id(searcher, address) for high, low, address in zip(highs, lows, addresses, strict=True)]


def _stored_id(searcher: tantivy.Searcher, address: tantivy.DocAddress) -> str:
    return searcher.doc(address).get_first("id")


def _before(key: float, boundary: float, sort: str) -> bool:
    return key < boundary if sort == "time_asc" else key > boundary


def _order_key(sort: str):
    """(key, position, id, address) rows: key descending (ascending for time_asc), then position
    (index order, only inside a huge tied group; 0 elsewhere), then id."""
    if sort == "time_asc":
        return lambda row: (row[0], row[1], row[2] or "")
    return lambda row: (-row[0], row[1], row[2] or "")


def _too_many_expansions(error: ValueError) -> bool:
    return "max expansions" in str(error)


# ---------------------------------------------------------------------------- translation


def _rx_escape(text: str) -> str:
    """TEXT as a literal in Tantivy's (Rust) regex syntax."""
    return "".join(c if _LITERAL.fullmatch(c) else f"\\x{{{ord(c):X}}}" for c in text)


def _wildcard_rx(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else _rx_escape(c) for c in pattern)


def _place_rx(place: Place) -> str:
    parts = sorted(_rx_escape(value) if kind == "t" else value for kind, value in place)
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _literal(word: str) -> Place:
    return frozenset([("t", word)])


def _shift(shape: Shape, by: int) -> Shape:
    return tuple((offset + by, place) for offset, place in shape)


def _offset(item: tuple[int, Place]) -> int:
    return item[0]


def _length(shape: Shape) -> int:
    return shape[-1][0] + 1


class _Fallback(ValueError):
    """A regex phrase matched too many terms: retry with those nodes verified instead."""

    def __init__(self) -> None:
        super().__init__("a regex phrase query exceeded Tantivy's max expansions")


class _Plan:
    """Translate one query against one searcher (its term dictionary and its documents)."""

    def __init__(self, engine: TantivyEngine, searcher: tantivy.Searcher, regex_phrases: bool = True):
        self.engine = engine
        self.schema = engine.schema
        self.searcher = searcher
        self.regex_phrases = regex_phrases
        self._shapes: dict[Node, list[Shape] | None] = {}
        self._expansions: dict[Node, list[str]] = {}
        self._context_uses = 0  # verifications that relied on a context (their result is not cached)
        self._exact: dict[Node, tantivy.Query] = {}
        self.long_docs = searcher.num_docs > 0 and searcher.doc_freq(TEXT_FIELD, LONG_TOKEN) > 0

    def query(self, node: Node) -> tantivy.Query:
        try:
            return self.exact(node, None)
        except _Fallback:
            if not self.regex_phrases:
                raise
            return _Plan(self.engine, self.searcher, regex_phrases=False).query(node)

    def needs_regex_phrase(self, shape: Shape) -> bool:
        return len(shape) > 1 and self.literal_combos(shape) is None

    # ---------------------------------------------------------------- small builders

    def term(self, field: str, value: str) -> tantivy.Query:
        return Q.term_query(self.schema, field, value)

    @staticmethod
    def must(*parts: tantivy.Query | None) -> tantivy.Query:
        present = [p for p in parts if p is not None]
        if len(present) == 1:
            return present[0]
        return Q.boolean_query([(MUST, p) for p in present])

    @staticmethod
    def should(parts: list[tantivy.Query]) -> tantivy.Query:
        if not parts:
            return Q.empty_query()
        return parts[0] if len(parts) == 1 else Q.boolean_query([(SHOULD, p) for p in parts])

    @staticmethod
    def but_not(base: tantivy.Query, excluded: tantivy.Query) -> tantivy.Query:
        return Q.boolean_query([(MUST, base), (MUST_NOT, excluded)])

    def id_set(self, ids: list[str]) -> tantivy.Query:
        """The documents with these IDS, each scoring 1.0 (what ``term_set_query`` scores).

        A ``term_set_query`` walks the id dictionary with an automaton (some 0.3-0.6 ms at
        200,000 ids, whatever the set's size); up to ID_TERMS_MAX ids, term queries under a
        constant score of 1.0 find the same documents with the same score, in microseconds."""
        if not ids:
            return Q.empty_query()
        if len(ids) > ID_TERMS_MAX:
            return Q.term_set_query(self.schema, "id", ids)
        terms = [Q.term_query(self.schema, "id", doc_id) for doc_id in ids]
        found = terms[0] if len(terms) == 1 else Q.boolean_query([(SHOULD, q) for q in terms])
        return Q.const_score_query(found, 1.0)

    # ---------------------------------------------------------------- the term dictionary

    def lexicon(self, prefix: str) -> list[str]:
        return [term for term, _ in self.searcher.terms_with_prefix(TEXT_FIELD, prefix)]

    def expand(self, node: Fuzzy | Stem) -> list[str]:
        """Every indexed token a fuzzy or stem word matches (complete, never capped)."""
        if node not in self._expansions:
            if isinstance(node, Fuzzy):
                terms = [t for t in self.lexicon(node.word[: node.prefix_len]) if fuzzy_matches(node, t)]
            else:
                target = stem(node.word)
                terms = [t for t in self.lexicon(target) if stem(t) == target]
            self._expansions[node] = sorted(set(terms) - {LONG_TOKEN})
        return self._expansions[node]

    def expand_wildcard(self, node: Wildcard) -> list[str] | None:
        """The tokens a wildcard with a literal prefix matches, if at most MAX_PLACE_TERMS (a phrase
        query per term beats a regex phrase); None otherwise (it stays a regex)."""
        if node not in self._expansions:
            prefix = wildcard_prefix(node.pattern)
            terms: list[str] | None = None
            if prefix:
                regex = wildcard_regex(node.pattern)
                found = [t for t in self.lexicon(prefix) if regex.fullmatch(t) and t != LONG_TOKEN]
                terms = sorted(found) if len(found) <= MAX_PLACE_TERMS else None
            self._expansions[node] = terms  # type: ignore[assignment]
        return self._expansions[node]

    # ---------------------------------------------------------------- positions: shapes

    def place(self, node: Node) -> Place | None:
        """The token set of a single-token node (None: the node has no occurrence at all)."""
        if isinstance(node, Term):
            return _literal(node.word)
        if isinstance(node, Wildcard):
            terms = self.expand_wildcard(node)
            if terms is None:
                return frozenset([("r", _wildcard_rx(node.pattern))])
            return frozenset(("t", t) for t in terms) if terms else None
        if isinstance(node, CjkChar):  # positional use: the character itself or a bigram holding it
            c = _rx_escape(node.char)
            return frozenset([("r", f"{c}|.{c}|{c}.")])
        if isinstance(node, (Fuzzy, Stem)):
            terms = self.expand(node)
            return frozenset(("t", t) for t in terms) if terms else None
        raise TypeError(node)

    def phrase_places(self, node: Phrase) -> list[Place]:
        places = []
        count = len(node.words)
        for i, word in enumerate(node.words):
            if count > 1 and len(word) == 1 and is_cjk(word) and i in (0, count - 1):
                c = _rx_escape(word)
                places.append(frozenset([("r", f"{c}|.{c}" if i == 0 else f"{c}|{c}.")]))
            else:
                places.append(_literal(word))
        return places

    def shapes(self, node: Node) -> list[Shape] | None:
        """Every position pattern of NODE's occurrences, or None if there are too many (or any
        occurrence cannot be described by positions alone: ``not w/N``)."""
        if node in self._shapes:
            return self._shapes[node]
        out: list[Shape] | None
        if isinstance(node, (Term, Wildcard, CjkChar, Fuzzy, Stem)):
            place = self.place(node)
            out = [] if place is None else [((0, place),)]
        elif isinstance(node, Phrase):
            places = self.phrase_places(node)
            if (node.slop + 1) ** (len(places) - 1) > MAX_SHAPES or len(places) > 64:
                out = None
            else:
                out = []
                for gaps in itertools.product(range(node.slop + 1), repeat=len(places) - 1):
                    offsets = [0, *itertools.accumulate(g + 1 for g in gaps)]
                    out.append(tuple(zip(offsets, places, strict=True)))
        elif isinstance(node, Or):
            parts = [self.shapes(child) for child in node.children]
            out = None if any(p is None for p in parts) else _merge_single([s for p in parts for s in p])  # type: ignore[union-attr]
        elif isinstance(node, Near):
            out = None if node.negated else self.near_shapes(node.left, node.right, node.distance, node.ordered)
        else:
            raise ValueError(f"{type(node).__name__} cannot be used inside a proximity search")
        single = isinstance(node, (Term, Wildcard, CjkChar, Fuzzy, Stem))  # always one shape, one place
        if (
            out is not None
            and not single
            and (
                len(out) > MAX_SHAPES
                or self.native_queries(out) > MAX_QUERIES
                or (not self.regex_phrases and any(map(self.needs_regex_phrase, out)))
            )
        ):
            out = None
        self._shapes[node] = out
        return out

    def near_shapes(self, left: Node, right: Node, distance: int, ordered: bool) -> list[Shape] | None:
        a, b = self.shapes(left), self.shapes(right)
        if a is None or b is None:
            return None
        if len(a) * len(b) * distance * (1 if ordered else 2) > MAX_SHAPES:
            return None
        out: dict[Shape, None] = {}
        for sa in a:
            for sb in b:
                for gap in range(1, distance + 1):
                    out[tuple(sorted(sa + _shift(sb, _length(sa) - 1 + gap), key=_offset))] = None
                    if not ordered:
                        out[tuple(sorted(_shift(sa, _length(sb) - 1 + gap) + sb, key=_offset))] = None
        return list(out)

    @staticmethod
    def shape_groups(shapes: list[Shape]) -> list[tuple[Shape, int]]:
        """SHAPES as (shape, slop) pairs, one Tantivy query each.

        Two-place shapes that differ only in their gap merge: with explicit offsets 0 and K and
        slop S, Tantivy matches the second place K-S..K+S positions after the first (checked by
        tests, also for places that can match the same token), so ``a w/5 b`` is two queries
        (offsets 3, slop 2, both ways), not ten. Other shapes are exact patterns (slop 0).
        """
        pairs: dict[tuple[Place, Place], list[int]] = {}
        out: list[tuple[Shape, int]] = []
        for shape in shapes:
            if len(shape) == 2:
                pairs.setdefault((shape[0][1], shape[1][1]), []).append(shape[1][0])
            else:
                out.append((shape, 0))
        for (first, second), gaps in pairs.items():
            for low, high in _runs(sorted(set(gaps))):
                while low <= high:
                    top = high if (high - low) % 2 == 0 else high - 1  # an odd width: centre +- slop
                    out.append((((0, first), ((low + top) // 2, second)), (top - low) // 2))
                    low = top + 1
        return out

    @staticmethod
    def literal_combos(shape: Shape) -> int | None:
        """How many literal phrase queries SHAPE takes (one per choice of a term at each place),
        or None if it needs a regex phrase (a regex place, or more than MAX_COMBOS choices)."""
        combos = 1
        for _, place in shape:
            if any(kind != "t" for kind, _ in place):
                return None
            combos *= len(place)
        return combos if combos <= MAX_COMBOS else None

    def native_queries(self, shapes: list[Shape]) -> int:
        return sum(
            1 if len(shape) == 1 else (self.literal_combos(shape) or 1) for shape, _ in self.shape_groups(shapes)
        )

    def shapes_query(self, shapes: list[Shape]) -> tantivy.Query:
        return self.should([q for shape, slop in self.shape_groups(shapes) for q in self.shape_queries(shape, slop)])

    def shape_queries(self, shape: Shape, slop: int) -> list[tantivy.Query]:
        if len(shape) == 1:
            return [self.place_query(shape[0][1])]
        if self.literal_combos(shape) is not None:
            offsets = [offset for offset, _ in shape]
            return [
                Q.phrase_query(self.schema, TEXT_FIELD, list(zip(offsets, words, strict=True)), slop)
                for words in itertools.product(*(sorted(value for _, value in place) for _, place in shape))
            ]
        if not self.regex_phrases:  # the shapes() of such nodes are None in this mode
            raise _Fallback
        words = [(offset, _place_rx(place)) for offset, place in shape]
        return [Q.regex_phrase_query(self.schema, TEXT_FIELD, words, slop)]

    def repeated(self, node: Node) -> tantivy.Query | None:
        """Documents where the single-token NODE occurs at two positions or more (None: unknown).

        Offsets 0 and K with slop K - 1 accept the second occurrence 1..2K-1 positions on.
        """
        shapes = self.shapes(node)
        if shapes is None or len(shapes) != 1 or len(shapes[0]) != 1:
            return None
        place = shapes[0][0][1]
        shape: Shape = ((0, place), (REPEAT_OFFSET, place))
        if not self.regex_phrases and self.needs_regex_phrase(shape):
            return None
        return self.should(self.shape_queries(shape, REPEAT_OFFSET - 1))

    def near_filter(self, near: Near) -> tantivy.Query:
        """The documents holding an occurrence of the plain proximity NEAR, for where their scores
        are never used (a MustNot clause, a candidate filter): ``pos_superset(near)`` made cheaper.

        ``a w/N b`` over two single-token places of words with no word in common is one phrase
        query per pair of words, both at offset 0 with slop N: the second word then sits -N..N
        positions from the first (the offset-K window of ``shape_groups`` with K = 0), and never
        at the same position, a position holding one token. That is 2 queries where the shapes
        take 4 to 8 (two directions, gaps 1..N split into windows); same documents, other scores."""
        if not near.ordered and not near.negated:
            a, b = self.shapes(near.left), self.shapes(near.right)
            if a and b and len(a) == 1 == len(b) and len(a[0]) == 1 == len(b[0]):
                first, second = a[0][0][1], b[0][0][1]
                shape: Shape = ((0, first), (0, second))
                if (
                    all(kind == "t" for kind, _ in first | second)
                    and not first & second
                    and self.literal_combos(shape) is not None
                ):
                    return self.should(self.shape_queries(shape, near.distance))
        return self.pos_superset(near)

    def near_repeated(self, near: Near) -> tantivy.Query:
        """The documents holding an occurrence of the plain proximity NEAR whose left operand (one
        token) occurs twice or more: ``must(near_filter(near), repeated(near.left))``, for where
        scores are never used (``not w/N``'s candidates).

        A left operand of a few words is taken word by word: the documents where word t is near
        the right operand and t occurs again or another of the words occurs. The same documents
        (the operand's occurrences are exactly its words' tokens), without the union of huge-slop
        phrase queries Tantivy would evaluate over every document where a word occurs (some 2 ms
        per word at 200,000 messages) where it only needs the few near the right operand."""
        shapes = self.shapes(near.left)
        if shapes and len(shapes) == 1 and len(shapes[0]) == 1 and not near.negated:
            place = shapes[0][0][1]
            words = sorted(value for kind, value in place if kind == "t")
            singles = [Near(Term(word), near.right, near.distance, near.ordered, False) for word in words]
            if (
                1 < len(words) == len(place)
                and len(words) ** 2 <= MAX_COMBOS
                and all(self.shapes(single) is not None for single in singles)
            ):
                parts = []
                for word, single in zip(words, singles, strict=True):
                    near_word = self.near_filter(single)
                    parts.append(self.must(near_word, self.repeated(Term(word))))
                    parts.extend(self.must(near_word, self.term(TEXT_FIELD, other)) for other in words if other != word)
                return self.should(parts)
        return self.must(self.near_filter(near), self.repeated(near.left))

    def place_query(self, place: Place) -> tantivy.Query:
        literals = sorted(value for kind, value in place if kind == "t")
        parts = [Q.regex_query(self.schema, TEXT_FIELD, value) for kind, value in sorted(place) if kind == "r"]
        if len(literals) == 1:
            parts.append(self.term(TEXT_FIELD, literals[0]))
        elif len(literals) <= WORD_TERMS_MAX:  # the same documents and score (1.0) as the term set, faster
            found = Q.boolean_query([(SHOULD, self.term(TEXT_FIELD, word)) for word in literals])
            parts.append(Q.const_score_query(found, 1.0))
        elif literals:
            parts.append(Q.term_set_query(self.schema, TEXT_FIELD, literals))
        return self.should(parts)

    # ---------------------------------------------------------------- positions: bounds

    def pos_superset(self, node: Node) -> tantivy.Query:
        """Documents that MAY hold an occurrence of the positional NODE."""
        shapes = self.shapes(node)
        if shapes is not None:
            return self.shapes_query(shapes)
        if isinstance(node, Phrase):
            return self.must(*[self.place_query(p) for p in self.phrase_places(node)])
        if isinstance(node, Or):
            return self.should([self.pos_superset(child) for child in node.children])
        if isinstance(node, Near):
            if node.negated:
                return self.pos_superset(node.left)
            return self.must(self.pos_superset(node.left), self.pos_superset(node.right))
        raise TypeError(node)

    def pos_subset(self, node: Node) -> tantivy.Query | None:
        """Documents that surely hold an occurrence of the positional NODE (None: unknown)."""
        shapes = self.shapes(node)
        if shapes is not None:
            return self.shapes_query(shapes)
        if isinstance(node, Phrase):  # the words adjacent always qualify, whatever the slop
            adjacent: Shape = tuple(enumerate(self.phrase_places(node)))
            if not self.regex_phrases and self.needs_regex_phrase(adjacent):
                return None
            return self.shapes_query([adjacent])
        if isinstance(node, Or):
            parts = [p for p in (self.pos_subset(child) for child in node.children) if p is not None]
            return self.should(parts) if parts else None
        if isinstance(node, Near) and node.negated:
            left = self.pos_subset(node.left)
            if left is None:
                return None
            near = Near(node.left, node.right, node.distance, False, False)
            # an occurrence of left with no occurrence of right within the distance anywhere near it
            return self.but_not(left, self.near_filter(near))
        return None

    # ---------------------------------------------------------------- documents

    def certain(self, node: Node) -> bool:
        """Can NODE be answered by Tantivy alone (no candidate verification)?"""
        if isinstance(node, (Phrase, Near)):
            return self.shapes(node) is not None and not self.long_docs
        if isinstance(node, (Term, Wildcard, Fuzzy, Stem)):
            return not self.long_docs
        if isinstance(node, (And, Or)):
            return all(self.certain(child) for child in node.children)
        if isinstance(node, Not):
            return self.certain(node.child)
        return True

    def superset(self, node: Node) -> tantivy.Query | None:
        """Documents that MAY match NODE (None: any document may)."""
        if isinstance(node, (Phrase, Near)) and not self.long_docs:
            return self.pos_superset(node)  # exact when it has shapes, and never checks candidates
        if self.certain(node):
            return self.exact(node, None)
        if isinstance(node, (Term, Wildcard, Fuzzy, Stem, Phrase, Near)):
            base = self.pos_superset(node) if isinstance(node, (Phrase, Near)) else self.leaf(node)
            return self.should([base, self.term(TEXT_FIELD, LONG_TOKEN)]) if self.long_docs else base
        if isinstance(node, And):
            parts = [self.superset(c) for c in node.children if not isinstance(c, Not)]
            present = [p for p in parts if p is not None]
            return self.must(*present) if present else None
        if isinstance(node, Or):
            parts = [self.superset(c) for c in node.children]
            return None if any(p is None for p in parts) else self.should(parts)  # type: ignore[arg-type]
        return None  # Not of an uncertain node

    def exact(self, node: Node, context: tantivy.Query | None) -> tantivy.Query:
        """Exactly the documents matching NODE, at least among those CONTEXT allows (CONTEXT is
        a superset of what the rest of the query requires; None = no restriction)."""
        if node in self._exact:
            return self._exact[node]
        uses = self._context_uses
        out = self._build(node, context)
        if self.certain(node) and self._context_uses == uses:
            self._exact[node] = out  # independent of the context: cache it
        return out

    def _build(self, node: Node, context: tantivy.Query | None) -> tantivy.Query:
        if isinstance(node, MatchAll):
            return Q.all_query()
        if isinstance(node, CjkChar):
            return self.term(UNIGRAM_FIELD, node.char)
        if isinstance(node, (Term, Wildcard, Fuzzy, Stem, Phrase, Near)):
            return self.text(node, context)
        if isinstance(node, And):
            positive = [c for c in node.children if not isinstance(c, Not)]
            negative = [c.child for c in node.children if isinstance(c, Not)]
            clauses = []
            for child in positive:
                clauses.append((MUST, self.exact(child, self._narrowed(node, child, child, context))))
            for child in negative:
                clauses.append((MUST_NOT, self.exact(child, self._narrowed(node, child, None, context))))
            if not positive:
                clauses.insert(0, (MUST, Q.all_query()))
            return Q.boolean_query(clauses)
        if isinstance(node, Or):
            return self.should([self.exact(child, context) for child in node.children])
        if isinstance(node, Not):
            return self.but_not(Q.all_query(), self.exact(node.child, context))
        if isinstance(node, Field):
            return self.field(node)
        if isinstance(node, DateRange):
            return self.dates(node)
        raise TypeError(f"unknown query node {node!r}")

    def _narrowed(
        self, node: And, child: Node, skip: Node | None, context: tantivy.Query | None
    ) -> tantivy.Query | None:
        """CONTEXT and what NODE's positive children other than SKIP require, for CHILD.

        Within an AND only the documents the other conditions allow matter, also for a negated
        child (``x AND NOT y`` depends on y only where x holds).
        """
        if self.certain(child):
            return context  # answered by Tantivy alone: no candidates to narrow
        parts = [self.superset(c) for c in node.children if c is not skip and not isinstance(c, Not)]
        present = [p for p in [context, *parts] if p is not None]
        return self.must(*present) if present else None

    def leaf(self, node: Term | Wildcard | Fuzzy | Stem) -> tantivy.Query:
        if isinstance(node, Term):
            return self.term(TEXT_FIELD, node.word)
        if isinstance(node, Wildcard):
            return Q.regex_query(self.schema, TEXT_FIELD, _wildcard_rx(node.pattern))
        if isinstance(node, Fuzzy) and node.prefix_len == 0 and node.max_edits <= MAX_FUZZY_EDITS:
            if node.max_edits == 0:
                return self.term(TEXT_FIELD, node.word)
            return Q.fuzzy_term_query(self.schema, TEXT_FIELD, node.word, node.max_edits, True, False)
        terms = self.expand(node)
        if not terms:
            return Q.empty_query()
        return self.term(TEXT_FIELD, terms[0]) if len(terms) == 1 else Q.term_set_query(self.schema, TEXT_FIELD, terms)

    def text(self, node: Node, context: tantivy.Query | None) -> tantivy.Query:
        """A text condition at document level: by Tantivy where it can, else verified candidates."""
        if isinstance(node, (Phrase, Near)):
            shapes = self.shapes(node)
            if shapes is None:
                superset, subset = self.pos_superset(node), self.pos_subset(node)
            elif self.cheaper_to_check(node, shapes, context):
                superset, subset = self.loose(node), None
            else:
                superset = subset = self.shapes_query(shapes)
        else:
            superset = subset = self.leaf(node)  # type: ignore[arg-type]
        if self.long_docs:  # documents with an over-long token: the oracle decides for all of them
            long_token = self.term(TEXT_FIELD, LONG_TOKEN)
            subset = None if subset is None else self.but_not(subset, long_token)
            superset = self.should([superset, long_token])
        if subset is superset:
            return subset
        near = Near(node.left, node.right, node.distance, False, False) if isinstance(node, Near) else None
        if near is not None and node.negated and not self.long_docs and self.shapes(near) is not None:
            # superset - subset = the documents where the left operand occurs near the right one,
            # exactly; those with a single occurrence of it cannot match: check only the others.
            candidates = self.must(self.near_repeated(near), context)
        else:
            candidates = self.must(superset, context)
            if subset is not None:
                candidates = self.but_not(candidates, subset)
        if context is not None:
            self._context_uses += 1
        verified = self.id_set(self.verify(node, candidates))
        return verified if subset is None else self.should([subset, verified])

    def cheaper_to_check(self, node: Node, shapes: list[Shape], context: tantivy.Query | None) -> bool:
        """Would checking the documents that merely hold all the parts (``"a b" w/9 c``: the
        phrase and c) cost less than the many phrase queries of the exact shapes?"""
        queries = self.native_queries(shapes)
        if queries <= 4:
            return False
        limit = int(queries * QUERY_MS / CHECK_MS)
        return _count(self.searcher, self.must(self.loose(node), context)) <= limit

    def loose(self, node: Node) -> tantivy.Query:
        """Documents holding every part of the positional NODE, wherever: one cheap superset."""
        if isinstance(node, (Term, Wildcard, CjkChar, Fuzzy, Stem)):
            place = self.place(node)
            return Q.empty_query() if place is None else self.place_query(place)
        if isinstance(node, Phrase):
            shapes = self.shapes(node) if node.slop == 0 else None  # one phrase query, if exact
            if shapes is not None and self.native_queries(shapes) == 1:
                return self.shapes_query(shapes)
            return self.must(*[self.place_query(p) for p in self.phrase_places(node)])
        if isinstance(node, Or):
            return self.should([self.loose(child) for child in node.children])
        if isinstance(node, Near):
            if node.negated:
                return self.loose(node.left)
            return self.must(self.loose(node.left), self.loose(node.right))
        raise ValueError(f"{type(node).__name__} cannot be used inside a proximity search")

    def verify(self, node: Node, candidates: tantivy.Query) -> list[str]:
        """Ids of the CANDIDATES whose stored tokens hold an occurrence of the text condition NODE."""
        out = []
        searcher = self.searcher
        try:
            addresses = _addresses(searcher, candidates)
        except ValueError as error:
            if _too_many_expansions(error):
                raise _Fallback from error
            raise
        holds = _occurs_test(node)
        for address in addresses:
            stored = searcher.doc(address)
            joined = bytes(stored.get_first(BODY_FIELD) or b"").decode("utf-8")
            if joined and holds(joined.split(" ")):
                out.append(stored.get_first("id"))
        return out

    # ---------------------------------------------------------------- filters

    def field(self, node: Field) -> tantivy.Query:
        name, value = node.name, node.value
        if name in ("sender_ids", "conversation_ids"):
            attr = "sender_id" if name == "sender_ids" else "conversation_id"
            ids = sorted(value)  # type: ignore[call-overload]
            return Q.term_set_query(self.schema, attr, ids) if ids else Q.empty_query()
        if name == "ids":  # message ids the search layer resolved (review tags, notes)
            return self.id_set(sorted(value))  # type: ignore[call-overload]
        if name == "participant":
            raise ValueError("participant: must be resolved to conversation_ids by the search layer")
        if name in REVIEW_FIELDS or (name == "is" and str(value).lower() in REVIEW_FLAGS):
            raise ValueError(f"{name}:{value} must be resolved to message ids by the search layer")
        if not isinstance(value, str):
            raise TypeError(f"field {name} needs a string value")
        if name == "has":
            return self.term(FLAGS_FIELD, "attachment") if value.lower() == "attachment" else Q.empty_query()
        if name == "is":
            flag = value.lower()
            return self.term(FLAGS_FIELD, flag) if flag in ("edited", "deleted") else Q.empty_query()
        key = name_key(value)
        if not key:
            return Q.empty_query()
        if name == "sender":
            return self.should([self.term("sender_id", value), self.term("sender_name", key)])
        if name == "conversation":
            return self.should([self.term("conversation_id", value), self.term("conversation_name", key)])
        attr = KEYWORD_ATTRS.get(name)
        if attr is None:
            raise ValueError(f"unknown field {name!r}")
        return self.term(attr, key)

    def dates(self, node: DateRange) -> tantivy.Query:
        start, end = range_us(node)
        if start is not None and end is not None and start > end:
            return Q.empty_query()
        if start is None and end is None:
            return Q.all_query()
        return Q.range_query(self.schema, "ts", tantivy.FieldType.Integer, start, end, True, True)


def occurrences(node: Node, tokens: list[str]) -> dict[tuple[int, int], frozenset]:
    """The occurrences (inclusive token intervals) of the text condition NODE among TOKENS (a
    document's token texts, position = index), by ``discovery.query.match``'s own rules: its token
    predicates and its phrase and proximity interval code, as the oracle evaluates them."""
    if isinstance(node, Term):
        word = node.word
        return {(i, i): _EMPTY for i, token in enumerate(tokens) if token == word}
    if isinstance(node, (Wildcard, Fuzzy, Stem, CjkChar)):
        predicate = term_predicate(node)
        return {(i, i): _EMPTY for i, token in enumerate(tokens) if predicate(token)}
    if isinstance(node, Phrase):
        count = len(node.words)
        per_word = []
        for index, word in enumerate(node.words):
            predicate = phrase_word_predicate(word, index, count)
            per_word.append({(i, i): _EMPTY for i, token in enumerate(tokens) if predicate(token)})
        return phrase_intervals(per_word, node.slop)
    if isinstance(node, Or):
        out: dict[tuple[int, int], frozenset] = {}
        for child in node.children:
            out.update(occurrences(child, tokens))
        return out
    if isinstance(node, Near):
        left, right = occurrences(node.left, tokens), occurrences(node.right, tokens)
        return near_intervals(left, right, node.distance, node.ordered, node.negated)
    raise ValueError(f"{type(node).__name__} cannot be used inside a proximity search")


_EMPTY: frozenset = frozenset()


def _words(node: Node) -> frozenset | None:
    """The words of a Term, or of an OR of Terms (its occurrences: the tokens equal to one); else None."""
    if isinstance(node, Term):
        return frozenset([node.word])
    if isinstance(node, Or):
        parts = [_words(child) for child in node.children]
        return None if any(p is None for p in parts) else frozenset().union(*parts)  # type: ignore[arg-type]
    return None


def _occurs_test(node: Node):
    """A function of a document's TOKENS: whether NODE occurs among them (``bool(occurrences(...))``).

    ``left not w/N right`` over words (Terms, ORs of Terms) is decided on token positions
    directly: an occurrence of left with no occurrence of right 1..N positions away, either way
    (``near_intervals``' negated rule, which ignores the order); every other node goes through
    ``occurrences``. Tests compare the two."""
    if isinstance(node, Near) and node.negated:
        left, right = _words(node.left), _words(node.right)
        if left is not None and right is not None:
            distance = node.distance

            def holds(tokens: list[str]) -> bool:
                lefts = [i for i, token in enumerate(tokens) if token in left]
                if not lefts:
                    return False
                rights = [i for i, token in enumerate(tokens) if token in right]
                return any(not any(1 <= abs(a - b) <= distance for b in rights) for a in lefts)

            return holds
    return lambda tokens: bool(occurrences(node, tokens))


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct VALUES as maximal runs of consecutive integers, (first, last) each."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _merge_single(shapes: list[Shape]) -> list[Shape]:
    """OR-groups of single tokens become one place (fewer, wider shapes); duplicates go."""
    singles = [shape for shape in shapes if len(shape) == 1]
    out: dict[Shape, None] = {}
    if singles:
        out[((0, frozenset().union(*(shape[0][1] for shape in singles))),)] = None
    for shape in shapes:
        if len(shape) > 1:
            out[shape] = None
    return list(out)


__all__ = ["LAYOUT", "TantivyEngine", "analyzed", "make_schema"]
