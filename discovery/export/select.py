"""Which messages an export holds: every hit of the query plus its context window, in export order.

The selection lives in TEMP tables of a connection of its own, inside one read transaction, so a
bundle is cut from one consistent snapshot of case.db even while an ingest runs, and memory stays
bounded whatever the number of hits: ids go into SQLite, and messages come back in chunks.

Export order is conversation id, then time, then message id. A context window is the same one
``discovery search`` shows (:meth:`discovery.case.Case.window`): up to N messages before and after
each hit within its stream (its conversation, or the merged-forward bundle it was carried in);
overlapping windows merge, and a message is a hit if the query matched it, context otherwise.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from discovery.case import Case, rows_in
from discovery.export.review_snapshot import ReviewSnapshot

CHUNK = 500  # also the IN (...) list size: old SQLite builds allow 999 variables
_IN = 500  # ids per IN (...) list
_names = itertools.count(1)
# The columns of discovery.case.MESSAGE_SELECT that message_record reads, by position (see _record),
# preceded by the selection's hit flag.
_EXPORT_SELECT = """
SELECT x.hit, m.id, m.native_id, m.source_format, m.conversation_id, c.name, c.type, m.thread_id, m.reply_to,
       m.bundle_id, m.sender_id, COALESCE(m.sender_name, p.name), m.sender_kind, m.sent_at, m.sent_at_raw,
       m.tz_assumption, m.edited, m.edited_at, m.deleted, m.kind, m.text, m.mentions, m.attachments, m.reactions,
       m.custodian, s.sha256, s.path, s.member, s.container_sha256, m.locator, m.raw"""
_EXPORT_JOINS = """
JOIN messages m ON m.id = x.id
LEFT JOIN conversations c ON c.id = m.conversation_id
LEFT JOIN participants p ON p.id = m.sender_id
JOIN sources s ON s.id = m.source_id"""


@dataclass(frozen=True)
class ConversationCount:
    id: str
    name: str
    type: str | None
    messages: int
    hits: int


def connect(case: Case) -> sqlite3.Connection:
    """A private connection to CASE's database holding one read snapshot until it is closed."""
    db = sqlite3.connect(case.folder / "case.db", isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("BEGIN")
    return db


def temp_table(db: sqlite3.Connection, prefix: str) -> str:
    """A fresh TEMP table (id, hit, conversation_id, sent_at_us, stream) keyed by id."""
    name = f"{prefix}_{next(_names)}"
    db.execute(
        f"CREATE TEMP TABLE {name} (id TEXT PRIMARY KEY, hit INTEGER NOT NULL, conversation_id TEXT NOT NULL, "
        "sent_at_us INTEGER NOT NULL, stream TEXT NOT NULL)"
    )
    return name


def load_hits(db: sqlite3.Connection, table: str, ids: Iterable[str]) -> None:
    """Put the messages with these IDS into TABLE as hits; ids case.db does not know are skipped."""
    batch: list[str] = []
    for message_id in ids:
        batch.append(message_id)
        if len(batch) == _IN:
            _insert_hits(db, table, batch)
            batch = []
    if batch:
        _insert_hits(db, table, batch)


def _insert_hits(db: sqlite3.Connection, table: str, ids: list[str]) -> None:
    marks = ",".join("?" * len(ids))
    db.execute(
        f"INSERT OR IGNORE INTO {table} SELECT id, 1, conversation_id, sent_at_us, stream FROM messages "
        f"WHERE id IN ({marks})",
        ids,
    )


def expand(db: sqlite3.Connection, hits: str, out: str, context: int) -> None:
    """Fill OUT with the hits in HITS and every message within CONTEXT of one in its stream."""
    db.execute(f"INSERT INTO {out} SELECT * FROM {hits}")
    if context <= 0:
        return
    streams = db.execute(
        f"SELECT h.stream, COUNT(*) AS hits, (SELECT COUNT(*) FROM messages m WHERE m.stream = h.stream) AS size "
        f"FROM {hits} h GROUP BY h.stream ORDER BY h.stream"
    ).fetchall()
    for stream, hit_count, size in streams:
        if hit_count * (2 * context + 1) * 8 < size:
            _windows_by_seek(db, hits, out, stream, context)
        else:
            _windows_by_scan(db, hits, out, stream, context)


def _windows_by_scan(db: sqlite3.Connection, hits: str, out: str, stream: str, context: int) -> None:
    """One ordered pass over a stream dense with hits: a sliding window marks the neighbours."""
    rows = db.execute(
        f"SELECT m.id, m.conversation_id, m.sent_at_us, h.id IS NOT NULL FROM messages m "
        f"LEFT JOIN {hits} h ON h.id = m.id WHERE m.stream = ? ORDER BY m.sent_at_us, m.id",
        (stream,),
    )
    before: deque[tuple[str, str, int]] = deque(maxlen=context)
    after = 0
    picked: list[tuple[str, str, int, str]] = []
    for message_id, conversation_id, at, is_hit in rows:
        if is_hit:
            picked.extend((*row, stream) for row in before)
            before.clear()
            after = context
        elif after:
            picked.append((message_id, conversation_id, at, stream))
            after -= 1
        else:
            before.append((message_id, conversation_id, at))
    db.executemany(f"INSERT OR IGNORE INTO {out} VALUES (?, 0, ?, ?, ?)", picked)


def _windows_by_seek(db: sqlite3.Connection, hits: str, out: str, stream: str, context: int) -> None:
    """A few hits in a long stream: fetch each window through the (stream, time, id) index."""
    anchors = db.execute(f"SELECT id, sent_at_us FROM {hits} WHERE stream = ? ORDER BY sent_at_us, id", (stream,))
    for message_id, at in anchors.fetchall():
        for sql in (
            "SELECT id, conversation_id, sent_at_us, stream FROM messages WHERE stream = ? "
            "AND (sent_at_us, id) < (?, ?) ORDER BY sent_at_us DESC, id DESC LIMIT ?",
            "SELECT id, conversation_id, sent_at_us, stream FROM messages WHERE stream = ? "
            "AND (sent_at_us, id) > (?, ?) ORDER BY sent_at_us, id LIMIT ?",
        ):
            rows = db.execute(sql, (stream, at, message_id, context)).fetchall()
            db.executemany(f"INSERT OR IGNORE INTO {out} VALUES (?, 0, ?, ?, ?)", [tuple(r) for r in rows])


def _json_list(text: str) -> Any:
    """A JSON column; most are an empty list, which needs no parser."""
    return [] if text == "[]" else json.loads(text)


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row of _EXPORT_SELECT as discovery.case.message_record makes it (same keys, same order, same
    values; a test holds them equal), plus ``hit``. Positional: this runs once per exported message."""
    return {
        "id": row[1], "native_id": row[2], "source_format": row[3], "conversation_id": row[4],
        "conversation_name": row[5] or row[4], "conversation_type": row[6], "thread_id": row[7],
        "reply_to": row[8], "bundle_id": row[9], "sender_id": row[10], "sender_name": row[11] or row[10],
        "sender_kind": row[12], "sent_at": row[13], "sent_at_raw": row[14], "tz_assumption": row[15],
        "edited": bool(row[16]), "edited_at": row[17], "deleted": bool(row[18]), "kind": row[19],
        "text": row[20], "mentions": _json_list(row[21]), "attachments": _json_list(row[22]),
        "reactions": _json_list(row[23]), "custodian": row[24],
        "source": {"sha256": row[25], "path": row[26], "member": row[27], "container_sha256": row[28],
                   "locator": row[29]},
        "raw": row[30], "hit": bool(row[0]),
    }


class Selection:
    """The exported messages of one query: build with :meth:`create`, read in export order."""

    def __init__(self, db: sqlite3.Connection, table: str):
        self.db = db
        self.table = table
        self._review: ReviewSnapshot | None = None

    @property
    def review(self) -> ReviewSnapshot:
        """The selection's tags and notes, read in the same snapshot as its messages."""
        if self._review is None:
            self._review = ReviewSnapshot(self.db, self.table)
        return self._review

    @classmethod
    def create(cls, case: Case, hit_ids: Iterable[str] | None, context: int) -> Selection:
        """HIT_IDS (in any order), or None for every message in the case, with CONTEXT around each."""
        db = connect(case)
        table = temp_table(db, "export_sel")
        if hit_ids is None:  # every message is a hit, so no window can add one: nothing to expand
            db.execute(f"INSERT INTO {table} SELECT id, 1, conversation_id, sent_at_us, stream FROM messages")
        else:
            hits = temp_table(db, "export_hits")
            load_hits(db, hits, hit_ids)
            expand(db, hits, table, context)
            db.execute(f"DROP TABLE {hits}")
        db.execute(f"CREATE INDEX {table}_order ON {table}(conversation_id, sent_at_us, id)")
        return cls(db, table)

    @classmethod
    def exact(cls, case: Case, items: Iterable[tuple[str, bool]]) -> Selection:
        """Exactly ITEMS, (message id, is a hit) pairs such as a frozen review set: no context is added."""
        db = connect(case)
        table = temp_table(db, "export_sel")
        rows = ((int(hit), message_id) for message_id, hit in items)
        while batch := list(itertools.islice(rows, _IN)):
            db.executemany(f"INSERT OR IGNORE INTO {table} SELECT id, ?, conversation_id, sent_at_us, stream "
                           "FROM messages WHERE id = ?", batch)
        db.execute(f"CREATE INDEX {table}_order ON {table}(conversation_id, sent_at_us, id)")
        return cls(db, table)

    def close(self) -> None:
        self.db.rollback()
        self.db.close()

    def __enter__(self) -> Selection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def counts(self) -> dict[str, int]:
        row = self.db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(hit), 0), COUNT(DISTINCT conversation_id) FROM {self.table}"
        ).fetchone()
        return {"messages": row[0], "hits": row[1], "context": row[0] - row[1], "conversations": row[2]}

    def conversations(self) -> list[ConversationCount]:
        rows = self.db.execute(
            f"SELECT s.conversation_id, c.name, c.type, COUNT(*), SUM(s.hit) FROM {self.table} s "
            "LEFT JOIN conversations c ON c.id = s.conversation_id GROUP BY s.conversation_id "
            "ORDER BY s.conversation_id"
        )
        return [ConversationCount(r[0], r[1] or r[0], r[2], r[3], r[4]) for r in rows]

    def messages(self) -> Iterator[dict[str, Any]]:
        """Every selected message as the message model M plus ``hit`` (bool) and the review decisions on it
        now, ``tags`` and ``notes`` (discovery.export.review_snapshot), in export order.

        One ordered join read in chunks (not a query per chunk or per message): the export reads every
        row once, and the review decisions are looked up a chunk at a time."""
        cursor = self.db.cursor()
        cursor.row_factory = None  # plain tuples: _record reads them by position
        cursor.execute(f"{_EXPORT_SELECT} FROM {self.table} x {_EXPORT_JOINS} "
                       "ORDER BY x.conversation_id, x.sent_at_us, x.id")
        try:
            while rows := cursor.fetchmany(CHUNK):
                tags, notes = self.review.lookup([row[1] for row in rows])
                for row in rows:
                    record = _record(row)
                    record["tags"], record["notes"] = tags[row[1]], notes[row[1]]
                    yield record
        finally:
            cursor.close()

    def sources(self) -> list[dict[str, Any]]:
        """The source files the selected messages came from, with their ingest runs, by source id."""
        rows = self.db.execute(
            f"SELECT s.id, s.path, s.member, s.size, s.sha256, s.container_sha256, s.format, s.custodian, "
            f"s.limits, s.original, s.ingested_at, s.run_id, r.started_at AS run_started_at, "
            f"r.finished_at AS run_finished_at, r.tool_version AS run_tool_version, r.arguments AS run_arguments, "
            f"r.status AS run_status, COUNT(*) AS exported_messages FROM {self.table} x "
            f"JOIN messages m ON m.id = x.id JOIN sources s ON s.id = m.source_id "
            f"JOIN ingest_runs r ON r.id = s.run_id GROUP BY s.id ORDER BY s.id"
        )
        return [dict(row) for row in rows]

    def participants(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Directory entries (id, name, kind) for participant IDS that case.db knows."""
        rows = rows_in(self.db, "SELECT id, name, kind FROM participants WHERE id IN", sorted(set(ids)), _IN)
        return {row["id"]: dict(row) for row in rows}

    def members(self, conversation_id: str) -> list[str]:
        rows = self.db.execute(
            "SELECT participant_id FROM conversation_members WHERE conversation_id = ? ORDER BY participant_id",
            (conversation_id,),
        )
        return [row[0] for row in rows]
