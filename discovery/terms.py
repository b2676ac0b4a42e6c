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
population only. Counting runs in SQLite temp tables, so memory stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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
