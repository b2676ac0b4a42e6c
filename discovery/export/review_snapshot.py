"""Review decisions in a bundle: the tags and notes on the exported messages, as of the export.

Read through the selection's own connection (discovery.export.select), inside the same read
transaction as the messages, so tags, notes and messages come from one consistent snapshot of
case.db even while reviewers keep working. The rules are those of discovery.review (tags that are
on a message now, in tag-list order; live notes, oldest first; a deleted note is not exported,
its history stays in case.db); the SQL is repeated here only to read that snapshot, and a test
checks it agrees with ``review.message_tags`` and ``review.notes_for``.

A case that never used review has no review tables: the export reads nothing and writes the same
shapes with empty values (the export never creates them: it does not write to case.db).

The same values appear in every per-message file, flattened for each reader:
messages.jsonl (``tags``/``notes`` lists), messages.csv (``tags``/``notes`` cells), the transcript
(labels and note boxes) and loadfile.dat (TAGS/NOTES per document). RSMF files carry none of it:
tags and notes are not part of the source conversation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

SNAPSHOT = (
    "tags and notes as they stood when the bundle was made (manifest.json's created_at); changes made later are "
    "not in this bundle, and deleted notes are not exported (their history stays in case.db)"
)
_TABLES = ("tags", "message_tags", "notes")


class ReviewSnapshot:
    """Tags and notes of the messages in TABLE, read on DB (the selection's snapshot connection)."""

    def __init__(self, db: sqlite3.Connection, table: str):
        self.db = db
        self.table = table
        found = db.execute(
            f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ({','.join('?' * len(_TABLES))})",
            _TABLES,
        ).fetchone()[0]
        self.present = found == len(_TABLES)

    def lookup(self, ids: Sequence[str]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
        """Tags and notes of IDS (at most 999 ids, one IN list): {id: [tag]}, {id: [note]}; [] for none."""
        tags: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        notes: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        if not self.present or not ids:
            return tags, notes
        marks = ",".join("?" * len(ids))
        for row in self.db.execute(
            "SELECT mt.message_id, t.name, mt.added_by, mt.added_at FROM message_tags mt "
            f"JOIN tags t ON t.id = mt.tag_id WHERE mt.removed_at IS NULL AND mt.message_id IN ({marks}) "
            "ORDER BY t.position, t.id", list(ids)
        ):
            tags[row[0]].append({"name": row[1], "added_by": row[2], "added_at": row[3]})
        for row in self.db.execute(
            "SELECT id, message_id, text, created_by, created_at, updated_by, updated_at, revisions FROM notes "
            f"WHERE deleted = 0 AND message_id IN ({marks}) ORDER BY id", list(ids)
        ):
            edited = row[7] > 1
            notes[row[1]].append({"id": row[0], "author": row[3], "created_at": row[4],
                                  "edited_by": row[5] if edited else None, "edited_at": row[6] if edited else None,
                                  "text": row[2]})
        return tags, notes

    def counts(self) -> dict[str, Any]:
        """What the bundle holds: messages tagged, tags applied (per tag, in tag-list order), notes."""
        if not self.present:
            return summary(0, {}, 0, 0)
        per_tag = self.db.execute(
            f"SELECT t.name, COUNT(*) FROM {self.table} s JOIN message_tags mt ON mt.message_id = s.id "
            "AND mt.removed_at IS NULL JOIN tags t ON t.id = mt.tag_id GROUP BY t.id ORDER BY t.position, t.id"
        ).fetchall()
        tagged = self.db.execute(
            f"SELECT COUNT(DISTINCT mt.message_id) FROM {self.table} s JOIN message_tags mt "
            "ON mt.message_id = s.id AND mt.removed_at IS NULL"
        ).fetchone()[0]
        notes, noted = self.db.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT n.message_id) FROM {self.table} s JOIN notes n "
            "ON n.message_id = s.id AND n.deleted = 0"
        ).fetchone()
        return summary(tagged, {row[0]: row[1] for row in per_tag}, notes, noted)


def summary(tagged: int, per_tag: dict[str, int], notes: int, noted: int) -> dict[str, Any]:
    """manifest.json's ``review`` section (and what README.txt and the transcript state)."""
    return {"snapshot": SNAPSHOT, "tagged_messages": tagged, "tags_applied": sum(per_tag.values()),
            "tags": per_tag, "notes": notes, "messages_with_notes": noted}


# ------------------------------------------------------------------------------- flattened forms


def csv_tags(tags: Iterable[dict[str, Any]]) -> str:
    """One cell: ``hot (alice, 2024-09-10T04:00:00.000Z); privileged (...)``."""
    return "; ".join(f"{t['name']} ({t['added_by']}, {t['added_at']})" for t in tags)


def note_heading(note: dict[str, Any], time: Any = str) -> str:
    """Who wrote NOTE and when (TIME formats a UTC ISO time), with its last edit if any."""
    head = f"{note['author']}, {time(note['created_at'])}"
    if note["edited_at"]:
        head += f", edited by {note['edited_by']} {time(note['edited_at'])}"
    return head


def csv_notes(notes: Iterable[dict[str, Any]]) -> str:
    """One cell, a note a line: ``[alice, 2024-09-10T04:00:00.000Z] text``."""
    return "\n".join(f"[{note_heading(n)}] {n['text']}" for n in notes)


def dat_tags(messages: Iterable[dict[str, Any]]) -> str:
    """A document's TAGS: every tag on any of its messages, once, sorted; ';' separates values."""
    names = {t["name"].replace(";", ",") for m in messages for t in m["tags"]}
    return ";".join(sorted(names, key=lambda name: (name.casefold(), name)))


def dat_notes(messages: Iterable[dict[str, Any]], time: Any) -> str:
    """A document's NOTES: each note with its message's Bates number, author and time (UTC);
    ';' separates notes, so a ';' inside a note becomes ',' (messages.jsonl has the exact text)."""
    return ";".join(
        f"{m['export']['bates']} {note_heading(n, time)}: {n['text']}".replace(";", ",")
        for m in messages for n in m["notes"]
    )
