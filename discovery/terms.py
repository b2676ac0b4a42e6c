"""Search term reports: for each term of a list, how much of the case it reaches.

The JSON contract (``term_report``), reused by ``discovery terms`` and by evidence bundles::

    {"terms": [{"term", "messages", "with_context", "conversations", "unique"}],
     "total": {"messages", "with_context", "conversations"}}

- messages: messages the term hits;
- with_context: those hits plus their context windows (the windows ``discovery search`` shows,
  N messages either side within the stream), distinct messages;
- conversations: distinct conversations holding a hit;
- unique: messages this term hits and no other term of the list does;
- total: the same over the union of all terms (a message hit by two terms counts once).

``scope`` (a query, e.g. an export's) is ANDed with every term, so the report describes that
population only.

How it counts (:class:`StreamOrder`): the case's messages are read once, in stream order (stream,
time, id: the order context windows run in), and every set of messages becomes a bitset over that
order (a Python int, one bit per message: 25 KB per 200,000 messages). A term's hits are one bitset;
its context windows are that bitset shifted by 1..N places either way, with the shifts that would
cross into the next or previous stream masked off; unions, "hit by exactly one term" and totals are
bit operations. :func:`term_report_sql` is the plain counterpart (SQLite temp tables, the export's
window expansion), kept to check this one against.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from discovery.case import Case
from discovery.export.select import connect, expand, load_hits, temp_table
from discovery.query import QueryError
from discovery.query import ast as q
from discovery.search import parse_query


class TermError(ValueError):
    """A term that does not parse: names its line (1-based, in the list) and the position in it."""

    def __init__(self, line: int, term: str, error: QueryError):
        super().__init__(f"term {line} ({term!r}): {error.message}")
        self.line = line
        self.term = term
        self.position = error.position


def read_terms(path: str | os.PathLike[str]) -> list[str]:
    """The terms in a file: one query per line, UTF-8 (a BOM is allowed), blank lines skipped."""
    with open(path, encoding="utf-8-sig") as file:
        return [line.strip() for line in file if line.strip()]


def parse_terms(case: Case, terms: Sequence[str], scope: Any = None) -> list[Any]:
    """Each term parsed (and ANDed with SCOPE, a parsed query node); TermError on the first bad one."""
    nodes = []
    for line, term in enumerate(terms, start=1):
        try:
            node = parse_query(case, term)
        except QueryError as error:
            raise TermError(line, term, error) from error
        nodes.append(q.and_all([node, scope]) if scope is not None else node)
    return nodes


def term_report(case: Case, terms: Sequence[str], *, context: int = 3, scope: Any = None) -> dict[str, Any]:
    """The report for TERMS over CASE (see the module docstring); raises TermError for a bad term."""
    nodes = parse_terms(case, terms, scope)
    if not nodes:
        return {"terms": [], "total": {"messages": 0, "with_context": 0, "conversations": 0}}
    engine = case.engine()
    order = StreamOrder.load(case)
    hit_sets = []
    rows = []
    for term, node in zip(terms, nodes, strict=True):
        hits = order.hits(engine.all_ids(node))
        hit_sets.append(hits)
        rows.append({"term": term, **order.counts(hits, context)})
    once = many = 0  # messages hit by exactly one term / by more than one
    for hits in hit_sets:
        many |= once & hits.bits
        once = (once | hits.bits) & ~many
    for row, hits in zip(rows, hit_sets, strict=True):
        row["unique"] = (hits.bits & once).bit_count()
    every = Hits(once | many, set().union(*(hits.conversations for hits in hit_sets)))
    return {"terms": rows, "total": order.counts(every, context)}


@dataclass
class Hits:
    """A set of messages as a bitset over a StreamOrder, and the conversations they are in."""

    bits: int
    conversations: set[int] = field(default_factory=set)


class StreamOrder:
    """Every message of a case in stream order (stream, time, id), read once from case.db.

    ``position`` maps a message id to its place in that order; ``starts``/``ends`` are bitsets of
    the first/last message of each stream; ``conversation`` holds each place's conversation number.
    """

    def __init__(self, ordered: Iterable[tuple[str, str]], conversations: Iterable[tuple[str, str]]):
        self.position: dict[str, int] = {}
        starts = bytearray()
        ends = bytearray()
        previous = None
        for place, (message_id, stream) in enumerate(ordered):
            self.position[message_id] = place
            if place % 8 == 0:
                starts.append(0)
                ends.append(0)
            if stream != previous:
                starts[place >> 3] |= 1 << (place & 7)
                if place:
                    ends[(place - 1) >> 3] |= 1 << ((place - 1) & 7)
                previous = stream
        self.size = len(self.position)
        if self.size:
            ends[(self.size - 1) >> 3] |= 1 << ((self.size - 1) & 7)
        self.starts = int.from_bytes(starts, "little")
        self.ends = int.from_bytes(ends, "little")
        self.all = (1 << self.size) - 1
        self.conversation = array("l", bytes(array("l").itemsize * self.size))
        numbers: dict[str, int] = {}
        for message_id, conversation_id in conversations:
            place = self.position.get(message_id)
            if place is not None:
                self.conversation[place] = numbers.setdefault(conversation_id, len(numbers))
        self._masks: list[tuple[int, int]] = []  # [(may shift later by k, may shift earlier by k)], k = 1, 2 ...

    @classmethod
    def load(cls, case: Case) -> StreamOrder:
        """The order of CASE's messages now (both reads from one snapshot of case.db)."""
        db = connect(case)
        try:
            ordered = db.execute("SELECT id, stream FROM messages ORDER BY stream, sent_at_us, id").fetchall()
            indexed = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'messages_facets'")
            hint = "INDEXED BY messages_facets" if indexed.fetchone() else ""  # covering: no row reads
            conversations = db.execute(f"SELECT id, conversation_id FROM messages {hint}").fetchall()
        finally:
            db.rollback()
            db.close()
        return cls(ordered, conversations)

    def hits(self, ids: Iterable[str]) -> Hits:
        """The messages with these IDS (ids case.db does not know are skipped, duplicates count once)."""
        buffer = bytearray((self.size + 7) // 8)
        position = self.position
        conversation = self.conversation
        conversations = set()
        for message_id in ids:
            place = position.get(message_id)
            if place is not None:
                buffer[place >> 3] |= 1 << (place & 7)
                conversations.add(conversation[place])
        return Hits(int.from_bytes(buffer, "little"), conversations)

    def _mask(self, k: int) -> tuple[int, int]:
        """(places at least K after their stream's first, places at least K before their stream's last)."""
        while len(self._masks) < k:
            j = len(self._masks)  # the masks for j + 1, from those for j: one more place barred
            near_start = self.all & ~self._masks[-1][0] if self._masks else 0
            near_end = self.all & ~self._masks[-1][1] if self._masks else 0
            near_start |= (self.starts << j) & self.all
            near_end |= self.ends >> j
            self._masks.append((self.all & ~near_start, self.all & ~near_end))
        return self._masks[k - 1]

    def window(self, bits: int, context: int) -> int:
        """BITS and every message within CONTEXT places of one of them in its stream."""
        out = bits
        for k in range(1, context + 1):
            later, earlier = self._mask(k)
            out |= ((bits << k) & later) | ((bits >> k) & earlier)
        return out

    def counts(self, hits: Hits, context: int) -> dict[str, int]:
        return {"messages": hits.bits.bit_count(), "with_context": self.window(hits.bits, context).bit_count(),
                "conversations": len(hits.conversations)}


def term_report_sql(case: Case, terms: Sequence[str], *, context: int = 3, scope: Any = None) -> dict[str, Any]:
    """The same report counted in SQLite temp tables (the plain path :func:`term_report` is checked against)."""
    nodes = parse_terms(case, terms, scope)
    engine = case.engine()
    db = connect(case)
    try:
        db.execute("CREATE TEMP TABLE term_hits (term INTEGER NOT NULL, id TEXT NOT NULL, PRIMARY KEY (term, id))")
        every = temp_table(db, "terms_all")
        rows = []
        for index, (term, node) in enumerate(zip(terms, nodes, strict=True)):
            hits = temp_table(db, "terms_one")
            load_hits(db, hits, engine.all_ids(node))
            db.execute(f"INSERT INTO term_hits SELECT ?, id FROM {hits}", (index,))
            db.execute(f"INSERT OR IGNORE INTO {every} SELECT * FROM {hits}")
            rows.append({"term": term, **_counts(db, hits, context)})
            db.execute(f"DROP TABLE {hits}")
        unique = dict(db.execute(
            "SELECT term, COUNT(*) FROM term_hits WHERE id IN "
            "(SELECT id FROM term_hits GROUP BY id HAVING COUNT(*) = 1) GROUP BY term"
        ).fetchall())
        for index, row in enumerate(rows):
            row["unique"] = unique.get(index, 0)
        total = _counts(db, every, context)
    finally:
        db.rollback()
        db.close()
    return {"terms": rows, "total": total}


def _counts(db: Any, hits: str, context: int) -> dict[str, int]:
    messages, conversations = db.execute(f"SELECT COUNT(*), COUNT(DISTINCT conversation_id) FROM {hits}").fetchone()
    window = temp_table(db, "terms_window")
    expand(db, hits, window, context)
    with_context = db.execute(f"SELECT COUNT(*) FROM {window}").fetchone()[0]
    db.execute(f"DROP TABLE {window}")
    return {"messages": messages, "with_context": with_context, "conversations": conversations}


CSV_COLUMNS = ("term", "messages", "with_context", "conversations", "unique")


def csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The report as spreadsheet rows (a final TOTAL row; unique is per term only)."""
    rows: list[list[Any]] = [[row[c] for c in CSV_COLUMNS] for row in report["terms"]]
    total = report["total"]
    rows.append(["TOTAL", total["messages"], total["with_context"], total["conversations"], ""])
    return rows
