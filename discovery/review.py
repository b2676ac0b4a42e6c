"""The review workflow: tags, notes, saved searches and review sets, kept in case.db.

Investigators decide, message by message, what is responsive, privileged or hot, and come back to
the same searches for weeks. This module is the library under the web pages and the
``discovery tag / note / saved / sets`` commands:

- Tags: a case-level list (seeded with :data:`DEFAULT_TAGS`; more can be defined, with colours),
  put on and taken off messages one by one or for every hit of a search (with or without context).
  A tag on a message is a row saying who added it and when; removing it marks that row removed
  (who, when), so the history of every message's tags is kept and nothing is silently deleted.
- Notes: free text on a message. An edit or a deletion is a new revision; every revision is kept.
- Saved searches: a named query with its filters, owned by a user and optionally shared with the
  case; the hit count when it was saved is kept, so a rerun shows what later ingests added.
- Review sets: the result of a search (hits and their context windows) frozen as a numbered set
  of numbered items; reviewers mark items reviewed (optionally tagging them); progress is counted;
  a set exports as an evidence bundle of exactly its messages.

The query language reaches these tables through :func:`resolve_field`: ``tag:hot``,
``is:tagged``, ``is:untagged`` and ``note:word`` become ``Field("ids", IdSet)``, the message ids
they stand for now, which the matcher and the engines answer directly.

Every change is written to the audit trail (:mod:`discovery.audit`) with actions ``tag_define``,
``tag_update``, ``tag_add``, ``tag_remove``, ``note_add``, ``note_edit``, ``note_delete``,
``saved_add``, ``saved_run``, ``saved_share``, ``saved_delete``, ``set_create``, ``set_review``
and ``set_export``. Functions take ``actor`` (who: a user name; default the CLI actor
``cli:<os user>``) and ``address`` (the client IP for the web; default the host name). Roles are
the caller's business (the web checks them); the library checks only ownership of saved searches.

The tables are created on first use by :func:`ensure_schema` (``CREATE ... IF NOT EXISTS``; the
same SQL can move into ``discovery.case.SCHEMA``). Triggers keep history append-only.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from discovery import audit
from discovery.case import Case, now_utc
from discovery.engine import SORTS
from discovery.query import ast as q
from discovery.query import parse_filters
from discovery.query.ast import name_key
from discovery.query.explain import explain
from discovery.query.match import spans
from discovery.query.parser import QueryError, parse

__all__ = [
    "DEFAULT_TAGS", "SCHEMA", "AppliedTag", "IdSet", "Note", "NoteRevision", "NotPermitted", "Progress", "QueryError",
    "ReviewError", "ReviewItem", "ReviewSet", "SavedRun", "SavedSearch", "Tag", "TagChange", "TagCount",
    "TagEvent", "TagFacet", "add_note", "add_tag", "count_hits", "count_query", "create_set", "define_tag",
    "delete_note", "delete_saved", "edit_note", "ensure_schema", "export_set", "find_tag", "get_note",
    "get_saved", "get_set", "get_tag", "list_notes", "list_saved", "list_sets", "list_tags", "message_tags",
    "next_item", "note_history", "note_ids", "notes_for", "query_ids", "remove_tag", "resolve_field",
    "review_item", "run_saved", "save_search", "set_item", "set_items", "set_message_ids", "set_progress",
    "share_saved", "tag_counts", "tag_counts_of_query", "tag_history", "tag_query", "tagged_ids", "update_tag",
]  # fmt: skip

# name, colour: the tags every case starts with (in this order: review keys 1-5)
DEFAULT_TAGS: tuple[tuple[str, str], ...] = (
    ("responsive", "#2e7d32"),
    ("not responsive", "#757575"),
    ("privileged", "#6a1b9a"),
    ("hot", "#c62828"),
    ("needs second look", "#ef6c00"),
)
# colours handed to new tags defined without one, in turn; the first is also the tags page's default. No blue like
# the buttons' (#0b5cad): a tag's swatch shows on its review button.
PALETTE = ("#00838f", "#ad1457", "#4e342e", "#558b2f", "#283593", "#f9a825", "#5d4037")
DEFAULT_ACTOR = "discovery"  # who created the default tags
MAX_NAME = 64
MAX_SAVED_NAME = 200
MAX_NOTE = 20_000
MAX_CONTEXT = 50
SHORTCUTS = 9  # the first nine tags of the list are review keys 1-9
_AUDIT_IDS = 1000  # an audit entry lists up to this many message ids (bulk changes: count and batch id)

SCHEMA = """
-- Review (discovery.review): tags, notes, saved searches, review sets. Nothing is ever deleted here:
-- a removal or an edit is a new row or a tombstone, so every change keeps who made it and when.
CREATE TABLE IF NOT EXISTS tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,               -- as shown
    key TEXT NOT NULL UNIQUE,         -- name_key(name): how tag:NAME finds it (case-insensitive)
    colour TEXT NOT NULL,             -- #rrggbb
    description TEXT,
    position INTEGER NOT NULL,        -- list order; the first nine are the review keys 1-9
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_by TEXT,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS message_tags (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    tag_id INTEGER NOT NULL REFERENCES tags(id),
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,           -- ISO 8601 UTC
    added_batch TEXT,                 -- one id per bulk operation (tagging a whole search)
    removed_by TEXT,                  -- set once, when the tag is taken off: the row is a tombstone
    removed_at TEXT,
    removed_batch TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS message_tags_live ON message_tags(message_id, tag_id) WHERE removed_at IS NULL;
CREATE INDEX IF NOT EXISTS message_tags_by_tag ON message_tags(tag_id, message_id) WHERE removed_at IS NULL;
CREATE INDEX IF NOT EXISTS message_tags_message ON message_tags(message_id);
CREATE TRIGGER IF NOT EXISTS message_tags_no_delete BEFORE DELETE ON message_tags
BEGIN SELECT RAISE(ABORT, 'tag history is kept: take a tag off by marking its row removed'); END;
CREATE TRIGGER IF NOT EXISTS message_tags_remove_only BEFORE UPDATE ON message_tags
WHEN OLD.removed_at IS NOT NULL OR NEW.removed_at IS NULL OR NEW.removed_by IS NULL
  OR NEW.id IS NOT OLD.id OR NEW.message_id IS NOT OLD.message_id OR NEW.tag_id IS NOT OLD.tag_id
  OR NEW.added_by IS NOT OLD.added_by OR NEW.added_at IS NOT OLD.added_at OR NEW.added_batch IS NOT OLD.added_batch
BEGIN SELECT RAISE(ABORT, 'a tag row can only be marked removed, once'); END;
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    text TEXT NOT NULL,               -- the latest revision's text ('' once deleted)
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    revisions INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS notes_message ON notes(message_id);
CREATE TABLE IF NOT EXISTS note_revisions (
    note_id INTEGER NOT NULL REFERENCES notes(id),
    revision INTEGER NOT NULL,        -- 1 = as first written
    text TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (note_id, revision)
);
CREATE TRIGGER IF NOT EXISTS notes_no_delete BEFORE DELETE ON notes
BEGIN SELECT RAISE(ABORT, 'notes are kept: delete a note by adding a deleting revision'); END;
CREATE TRIGGER IF NOT EXISTS note_revisions_no_update BEFORE UPDATE ON note_revisions
BEGIN SELECT RAISE(ABORT, 'note revisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS note_revisions_no_delete BEFORE DELETE ON note_revisions
BEGIN SELECT RAISE(ABORT, 'note revisions are append-only'); END;
CREATE TABLE IF NOT EXISTS saved_searches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    filters TEXT NOT NULL,            -- JSON list of query strings, each ANDed with the query
    context INTEGER NOT NULL,
    sort TEXT NOT NULL,
    view TEXT NOT NULL,               -- JSON object: UI state to restore (opaque to the library)
    owner TEXT NOT NULL,
    shared INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    hits_at_save INTEGER NOT NULL,
    last_run_at TEXT,
    last_run_by TEXT,
    last_run_hits INTEGER,
    deleted_by TEXT,                  -- a deleted saved search is a tombstone
    deleted_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS saved_searches_name ON saved_searches(owner, name) WHERE deleted_at IS NULL;
CREATE TRIGGER IF NOT EXISTS saved_searches_no_delete BEFORE DELETE ON saved_searches
BEGIN SELECT RAISE(ABORT, 'saved searches are kept: mark one deleted instead'); END;
CREATE TABLE IF NOT EXISTS review_sets (
    id INTEGER PRIMARY KEY,           -- the set's number
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    filters TEXT NOT NULL,            -- JSON list of the filters' texts
    explained TEXT NOT NULL,          -- the query and filters in plain words, as resolved at freezing
    context INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    items INTEGER NOT NULL,
    hits INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS review_items (
    set_id INTEGER NOT NULL REFERENCES review_sets(id),
    position INTEGER NOT NULL,        -- 1..items: export order (conversation id, time, message id)
    message_id TEXT NOT NULL,
    hit INTEGER NOT NULL,             -- 1: the search matched it; 0: context around a hit
    reviewed INTEGER NOT NULL DEFAULT 0,
    reviewed_by TEXT,                 -- who last set or cleared the flag, and when
    reviewed_at TEXT,
    PRIMARY KEY (set_id, position)
);
CREATE UNIQUE INDEX IF NOT EXISTS review_items_message ON review_items(set_id, message_id);
CREATE INDEX IF NOT EXISTS review_items_by_message ON review_items(message_id);
CREATE TRIGGER IF NOT EXISTS review_sets_frozen BEFORE UPDATE ON review_sets
BEGIN SELECT RAISE(ABORT, 'a review set is frozen'); END;
CREATE TRIGGER IF NOT EXISTS review_sets_no_delete BEFORE DELETE ON review_sets
BEGIN SELECT RAISE(ABORT, 'a review set is frozen'); END;
CREATE TRIGGER IF NOT EXISTS review_items_no_delete BEFORE DELETE ON review_items
BEGIN SELECT RAISE(ABORT, 'a review set is frozen'); END;
CREATE TRIGGER IF NOT EXISTS review_items_frozen BEFORE UPDATE ON review_items
WHEN NEW.set_id IS NOT OLD.set_id OR NEW.position IS NOT OLD.position OR NEW.message_id IS NOT OLD.message_id
  OR NEW.hit IS NOT OLD.hit
BEGIN SELECT RAISE(ABORT, 'a review set is frozen: only the reviewed flag of an item changes'); END;
"""
_LAST_OBJECT = "review_items_frozen"  # created last by SCHEMA: its presence means the schema is in place


class ReviewError(ValueError):
    """A review request that cannot be done: unknown tag, message, note, saved search or set; a bad
    name, colour or text; a bulk count that changed since it was confirmed; not the owner."""


class NotPermitted(ReviewError):
    """The actor may not make this change: someone else's note or saved search, and not an admin
    (the web answers it with 403, other review errors with 400)."""


class IdSet(frozenset[str]):
    """A frozenset of message ids that says what it stands for: ``str()`` is its label.

    The value of ``Field("ids", ...)`` built by :func:`resolve_field`; it compares and hashes as a
    plain frozenset (``IdSet({"a"}) == frozenset({"a"})``).
    """

    label: str

    def __new__(cls, ids: Iterable[str] = (), label: str = "") -> IdSet:
        self = super().__new__(cls, ids)
        self.label = label
        return self

    def __str__(self) -> str:
        return self.label or f"{len(self)} messages"

    def __repr__(self) -> str:
        return f"IdSet(<{len(self)} ids>, {self.label!r})"


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Tag:
    id: int
    name: str
    colour: str
    description: str | None
    position: int
    created_by: str
    created_at: str
    shortcut: str | None = None  # "1".."9" for the first nine tags of the list (review keys)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AppliedTag:
    """A tag on one message now, with who put it there and when."""

    name: str
    colour: str
    added_by: str
    added_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TagEvent:
    """One step of a message's tag history: ``action`` is ``add`` or ``remove``."""

    message_id: str
    tag: str
    action: str
    actor: str
    at: str
    batch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TagChange:
    """What one add/remove did: CHANGED messages gained (lost) the tag, UNCHANGED already had
    (did not have) it. BATCH identifies a bulk operation (its rows carry it)."""

    tag: str
    action: str  # "add" or "remove"
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    batch: str | None = None
    actor: str = ""
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changed_count": len(self.changed), "unchanged_count": len(self.unchanged)}


@dataclass(frozen=True)
class TagCount:
    name: str
    colour: str
    count: int
    shortcut: str | None = None


@dataclass
class TagFacet:
    """Tags over a set of messages: every case tag in list order (zero counts included)."""

    total: int  # messages counted
    tags: list[TagCount]
    tagged: int  # messages with at least one tag
    untagged: int

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "tagged": self.tagged, "untagged": self.untagged,
                "tags": [asdict(t) for t in self.tags]}


@dataclass(frozen=True)
class Note:
    id: int
    message_id: str
    text: str
    created_by: str
    created_at: str
    updated_by: str
    updated_at: str
    deleted: bool
    revisions: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NoteRevision:
    note_id: int
    revision: int
    text: str
    deleted: bool
    actor: str
    at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SavedSearch:
    id: int
    name: str
    query: str
    filters: list[str]  # query strings, each ANDed with the query
    context: int
    sort: str
    view: dict[str, Any]  # UI state to restore (the web's form), stored as given
    owner: str
    shared: bool
    created_at: str
    hits_at_save: int
    last_run_at: str | None
    last_run_by: str | None
    last_run_hits: int | None

    def filter_nodes(self) -> list[q.Node]:
        """The filters as parsed query nodes (for ``discovery.search.search(filters=...)``)."""
        return [parse(text) for text in self.filters]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SavedRun:
    """A rerun: the hit count when the search was saved, at its previous run, and now."""

    saved: SavedSearch  # as it stands after this run
    hits_then: int
    hits_previous_run: int | None
    hits_now: int
    ran_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"saved": self.saved.to_dict(), "hits_then": self.hits_then,
                "hits_previous_run": self.hits_previous_run, "hits_now": self.hits_now,
                "new_since_saved": self.hits_now - self.hits_then, "ran_at": self.ran_at}


@dataclass(frozen=True)
class Progress:
    items: int
    reviewed: int
    hits: int
    hits_reviewed: int
    by_reviewer: dict[str, int]  # items currently marked reviewed, by who marked them

    @property
    def remaining(self) -> int:
        return self.items - self.reviewed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "remaining": self.remaining}


@dataclass(frozen=True)
class ReviewSet:
    id: int  # the set's number
    name: str
    query: str
    filters: list[str]
    explained: str
    context: int
    created_by: str
    created_at: str
    items: int
    hits: int
    reviewed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReviewItem:
    set_id: int
    position: int  # 1..items
    message_id: str
    hit: bool
    reviewed: bool
    reviewed_by: str | None
    reviewed_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- schema


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create the review tables, indexes and triggers if missing, and seed the default tags once.

    Safe to call at any time outside a transaction of the caller (``executescript`` commits first).
    """
    present = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (_LAST_OBJECT,)).fetchone()
    if present is None:
        db.executescript(SCHEMA)
    if db.execute("SELECT 1 FROM tags LIMIT 1").fetchone() is None:
        if db.in_transaction:
            db.commit()
        db.execute("BEGIN IMMEDIATE")
        try:
            at = now_utc()
            db.executemany(
                "INSERT OR IGNORE INTO tags(name, key, colour, position, created_by, created_at) VALUES (?,?,?,?,?,?)",
                [(name, name_key(name), colour, n, DEFAULT_ACTOR, at)
                 for n, (name, colour) in enumerate(DEFAULT_TAGS, 1)],
            )
            db.commit()
        except BaseException:
            db.rollback()
            raise


def _ready(case: Case) -> sqlite3.Connection:
    """CASE's connection with the review schema in place (checked once per Case object)."""
    if not getattr(case, "_review_schema", False):
        ensure_schema(case.db)
        case._review_schema = True  # type: ignore[attr-defined]
    return case.db


@contextmanager
def _writing(case: Case) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE: the write lock up front, no upgrade deadlocks)."""
    db = _ready(case)
    if db.in_transaction:
        db.commit()
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.commit()
    except BaseException:
        db.rollback()
        raise


def _who(actor: str | None) -> str:
    return actor or audit.cli_actor()


def _record(case: Case, action: str, details: dict[str, Any], actor: str, address: str | None) -> None:
    audit.record(case, action, details, actor=actor, address=address)


def _ids_for_audit(ids: Sequence[str]) -> dict[str, Any]:
    return {"message_ids": list(ids[:_AUDIT_IDS]), "count": len(ids),
            **({"message_ids_truncated": True} if len(ids) > _AUDIT_IDS else {})}


# Every query joining a JSON list of ids (json_each) says CROSS JOIN: the ids stay the outer loop, each one
# index probe, whatever the planner guesses about json_each's size.


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _check_messages(db: sqlite3.Connection, ids: Sequence[str]) -> None:
    missing = [row[0] for row in db.execute(
        "SELECT j.value FROM json_each(?) j WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = j.value)",
        (json.dumps(list(ids)),))]
    if missing:
        shown = ", ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
        raise ReviewError(f"no such message{'s' if len(missing) > 1 else ''} in this case: {shown}")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUOTE_CHARS = '"\u201c\u201d'
_COLOUR = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def _clean_name(name: str, what: str, limit: int) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ReviewError(f"a {what} needs a name")
    if len(cleaned) > limit:
        raise ReviewError(f"a {what} name is at most {limit} characters")
    if _CONTROL.search(cleaned):
        raise ReviewError(f"a {what} name cannot contain control characters")
    return cleaned


def _colour(value: str) -> str:
    m = _COLOUR.fullmatch(value.strip())
    if not m:
        raise ReviewError(f"a colour is #rrggbb (or #rgb), not {value!r}")
    digits = m.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits


def _check_context(context: int) -> None:
    if not 0 <= context <= MAX_CONTEXT:
        raise ReviewError(f"context must be between 0 and {MAX_CONTEXT}, not {context}")


def _filters(filters: Sequence[str | q.Node] | None) -> tuple[list[q.Node], list[str]]:
    return parse_filters(filters, error=ReviewError)


def _resolved(case: Case, query: str, filters: Sequence[str | q.Node] | None) -> tuple[q.Node, list[str]]:
    from discovery.search import parse_query

    nodes, texts = _filters(filters)
    return parse_query(case, query, nodes), texts


def _all_hit_ids(case: Case, node: q.Node) -> list[str] | None:
    """Every id NODE matches; None for every message of the case."""
    return None if isinstance(node, q.MatchAll) else case.engine().all_ids(node)


# ---------------------------------------------------------------------------------------------- tags


def _tag(row: sqlite3.Row, index: int | None = None) -> Tag:
    shortcut = str(index + 1) if index is not None and index < SHORTCUTS else None
    return Tag(row["id"], row["name"], row["colour"], row["description"], row["position"], row["created_by"],
               row["created_at"], shortcut)


def list_tags(case: Case) -> list[Tag]:
    """The case's tags in list order; the first nine carry their review key (``shortcut``)."""
    rows = _ready(case).execute("SELECT * FROM tags ORDER BY position, id").fetchall()
    return [_tag(row, index) for index, row in enumerate(rows)]


def find_tag(case: Case, name: str) -> Tag | None:
    """The tag called NAME (compared as the query language compares names), or None."""
    key = name_key(name)
    for tag in list_tags(case):
        if name_key(tag.name) == key:
            return tag
    return None


def get_tag(case: Case, name: str) -> Tag:
    """The tag called NAME; ReviewError naming the case's tags if there is none."""
    tag = find_tag(case, name)
    if tag is None:
        known = ", ".join(t.name for t in list_tags(case))
        raise ReviewError(f"no tag {name!r} in this case; tags: {known}")
    return tag


def define_tag(case: Case, name: str, colour: str | None = None, *, description: str | None = None,
               actor: str | None = None, address: str | None = None) -> Tag:
    """Add a tag to the case's list (at the end); COLOUR ``#rrggbb`` or the next of PALETTE.

    Names are compared case-insensitively (``Hot`` and ``hot`` are one tag) and cannot contain
    double quotes (the query language quotes names with them). Audited as ``tag_define``.
    """
    cleaned = _clean_name(name, "tag", MAX_NAME)
    if any(c in cleaned for c in _QUOTE_CHARS):
        raise ReviewError("a tag name cannot contain double quotes")
    who = _who(actor)
    with _writing(case) as db:
        if db.execute("SELECT 1 FROM tags WHERE key = ?", (name_key(cleaned),)).fetchone():
            raise ReviewError(f"the tag {cleaned!r} already exists")
        count, last = db.execute("SELECT COUNT(*), COALESCE(MAX(position), 0) FROM tags").fetchone()
        chosen = _colour(colour) if colour else PALETTE[max(0, count - len(DEFAULT_TAGS)) % len(PALETTE)]
        db.execute(
            "INSERT INTO tags(name, key, colour, description, position, created_by, created_at) VALUES (?,?,?,?,?,?,?)",
            (cleaned, name_key(cleaned), chosen, description, last + 1, who, now_utc()),
        )
    _record(case, "tag_define", {"tag": cleaned, "colour": chosen, "description": description}, who, address)
    return get_tag(case, cleaned)


def update_tag(case: Case, name: str, *, colour: str | None = None, new_name: str | None = None,
               description: str | None = None, actor: str | None = None, address: str | None = None) -> Tag:
    """Recolour, rename or redescribe a tag (messages keep it: they refer to it by id).

    Audited as ``tag_update`` with the values before and after.
    """
    tag = get_tag(case, name)
    changes: dict[str, Any] = {}
    if colour is not None and _colour(colour) != tag.colour:
        changes["colour"] = _colour(colour)
    if new_name is not None:
        cleaned = _clean_name(new_name, "tag", MAX_NAME)
        if any(c in cleaned for c in _QUOTE_CHARS):
            raise ReviewError("a tag name cannot contain double quotes")
        if cleaned != tag.name:
            changes["name"] = cleaned
            changes["key"] = name_key(cleaned)
    if description is not None and description != tag.description:
        changes["description"] = description
    if not changes:
        return tag
    who = _who(actor)
    with _writing(case) as db:
        if "key" in changes and db.execute("SELECT 1 FROM tags WHERE key = ? AND id != ?",
                                           (changes["key"], tag.id)).fetchone():
            raise ReviewError(f"the tag {changes['name']!r} already exists")
        sets = ", ".join(f"{column} = ?" for column in changes)
        db.execute(f"UPDATE tags SET {sets}, updated_by = ?, updated_at = ? WHERE id = ?",
                   (*changes.values(), who, now_utc(), tag.id))
    changes.pop("key", None)
    before = {k: getattr(tag, k) for k in changes}
    _record(case, "tag_update", {"tag": tag.name, "before": before, "after": changes}, who, address)
    return get_tag(case, changes.get("name", tag.name))


def add_tag(case: Case, message_ids: Iterable[str], tag: str, *, actor: str | None = None,
            address: str | None = None, batch: str | None = None,
            details: dict[str, Any] | None = None) -> TagChange:
    """Put TAG on each of MESSAGE_IDS (those that have it already are left alone).

    Every id must be a message of the case (ReviewError otherwise; nothing is changed). One audit
    entry ``tag_add`` lists the changed ids (DETAILS, if given, is added to it). BATCH, if given,
    is stored on each new row (see :func:`tag_query`).
    """
    return _change(case, message_ids, tag, True, actor, address, batch, details)


def remove_tag(case: Case, message_ids: Iterable[str], tag: str, *, actor: str | None = None,
               address: str | None = None, batch: str | None = None,
               details: dict[str, Any] | None = None) -> TagChange:
    """Take TAG off each of MESSAGE_IDS: its row is marked removed (who, when), never deleted.

    Messages without the tag are left alone. Audited as ``tag_remove``.
    """
    return _change(case, message_ids, tag, False, actor, address, batch, details)


def _change(case: Case, message_ids: Iterable[str], tag_name: str, add: bool, actor: str | None,
            address: str | None, batch: str | None, details: dict[str, Any] | None) -> TagChange:
    ids = _unique(message_ids)
    if not ids:
        raise ReviewError("no message ids given")
    tag = get_tag(case, tag_name)
    who = _who(actor)
    at = now_utc()
    with _writing(case) as db:
        _check_messages(db, ids)
        live = {row[0] for row in db.execute(
            "SELECT mt.message_id FROM json_each(?) j CROSS JOIN message_tags mt "
            "ON mt.message_id = j.value AND mt.tag_id = ? AND mt.removed_at IS NULL",
            (json.dumps(ids), tag.id))}
        if add:
            changed = [i for i in ids if i not in live]
            db.executemany(
                "INSERT INTO message_tags(message_id, tag_id, added_by, added_at, added_batch) VALUES (?,?,?,?,?)",
                [(i, tag.id, who, at, batch) for i in changed],
            )
        else:
            changed = [i for i in ids if i in live]
            db.executemany(
                "UPDATE message_tags SET removed_by = ?, removed_at = ?, removed_batch = ? "
                "WHERE message_id = ? AND tag_id = ? AND removed_at IS NULL",
                [(who, at, batch, i, tag.id) for i in changed],
            )
    changed_set = set(changed)
    unchanged = [i for i in ids if i not in changed_set]
    change = TagChange(tag.name, "add" if add else "remove", changed, unchanged, batch, who, at)
    if changed:
        entry = {"tag": tag.name, **_ids_for_audit(changed), "unchanged": len(unchanged), **(details or {})}
        if batch:
            entry["batch"] = batch
        _record(case, "tag_add" if add else "tag_remove", entry, who, address)
    return change


def query_ids(case: Case, query: str, *, filters: Sequence[str | q.Node] | None = None,
              context: int = 0) -> list[tuple[str, bool]]:
    """Every message QUERY (with FILTERS) finds, with CONTEXT messages around each hit, as
    (message id, is a hit) in export order (conversation id, time, id) — the messages an export
    of the same search would hold. Raises QueryError for a malformed query."""
    from discovery.export.select import Selection

    _check_context(context)
    node, _ = _resolved(case, query, filters)
    with Selection.create(case, _all_hit_ids(case, node), context) as selection:
        rows = selection.db.execute(
            f"SELECT id, hit FROM {selection.table} ORDER BY conversation_id, sent_at_us, id").fetchall()
    return [(row[0], bool(row[1])) for row in rows]


def count_query(case: Case, query: str, *, filters: Sequence[str | q.Node] | None = None,
                context: int = 0) -> dict[str, int]:
    """How many messages a bulk change of QUERY would touch, for the confirmation that states it:
    ``{"hits": h, "context": c, "messages": h + c}`` (context 0: messages == hits)."""
    pairs = query_ids(case, query, filters=filters, context=context)
    hits = sum(1 for _, hit in pairs if hit)
    return {"hits": hits, "context": len(pairs) - hits, "messages": len(pairs)}


def tag_query(case: Case, query: str, tag: str, *, remove: bool = False,
              filters: Sequence[str | q.Node] | None = None, context: int = 0, expected: int | None = None,
              actor: str | None = None, address: str | None = None) -> TagChange:
    """Bulk-tag (or with REMOVE, untag) every message QUERY finds, with CONTEXT around each hit.

    EXPECTED is the count the user confirmed (``count_query(...)["messages"]``): if the search now
    finds a different number (an ingest or another reviewer got in between), nothing is changed
    and ReviewError says so. One audit entry records the query, filters, context, count and a batch
    id that every changed row carries.
    """
    get_tag(case, tag)  # an unknown tag fails before the search runs
    pairs = query_ids(case, query, filters=filters, context=context)
    if expected is not None and expected != len(pairs):
        raise ReviewError(f"the search now finds {len(pairs)} messages, not the {expected} confirmed; "
                          "confirm the new count to go on")
    if not pairs:
        return TagChange(get_tag(case, tag).name, "remove" if remove else "add", actor=_who(actor))
    _, texts = _filters(filters)
    batch = uuid.uuid4().hex
    details = {"query": query, "filters": texts, "context": context, "bulk": True}
    ids = [message_id for message_id, _ in pairs]
    change = _change(case, ids, tag, not remove, actor, address, batch, details)
    return change


def message_tags(case: Case, message_ids: Iterable[str]) -> dict[str, list[AppliedTag]]:
    """The tags on each of MESSAGE_IDS now (in tag list order); ids without tags map to []."""
    ids = _unique(message_ids)
    out: dict[str, list[AppliedTag]] = {i: [] for i in ids}
    rows = _ready(case).execute(
        "SELECT mt.message_id, t.name, t.colour, mt.added_by, mt.added_at FROM json_each(?) j "
        "CROSS JOIN message_tags mt ON mt.message_id = j.value AND mt.removed_at IS NULL "
        "JOIN tags t ON t.id = mt.tag_id ORDER BY t.position, t.id",
        (json.dumps(ids),),
    )
    for row in rows:
        out[row[0]].append(AppliedTag(row[1], row[2], row[3], row[4]))
    return out


def tag_history(case: Case, *, message_id: str | None = None, tag: str | None = None,
                limit: int | None = None) -> list[TagEvent]:
    """Every add and remove (who, when), oldest first, for one message and/or one tag, or all."""
    clauses, params = [], []
    if message_id is not None:
        clauses.append("mt.message_id = ?")
        params.append(message_id)
    if tag is not None:
        clauses.append("mt.tag_id = ?")
        params.append(get_tag(case, tag).id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = _ready(case).execute(
        f"SELECT mt.*, t.name FROM message_tags mt JOIN tags t ON t.id = mt.tag_id {where} ORDER BY mt.id", params)
    events: list[TagEvent] = []
    for row in rows:
        events.append(TagEvent(row["message_id"], row["name"], "add", row["added_by"], row["added_at"],
                               row["added_batch"]))
        if row["removed_at"] is not None:
            events.append(TagEvent(row["message_id"], row["name"], "remove", row["removed_by"], row["removed_at"],
                                   row["removed_batch"]))
    events.sort(key=lambda e: e.at)  # stable: same instant keeps row order
    return events[-limit:] if limit else events


def tagged_ids(case: Case, tag: str | None = None) -> frozenset[str]:
    """Ids of the messages carrying TAG now (None: any tag). An unknown TAG has none."""
    db = _ready(case)
    if tag is None:
        rows = db.execute("SELECT DISTINCT message_id FROM message_tags WHERE removed_at IS NULL")
    else:
        found = find_tag(case, tag)
        if found is None:
            return frozenset()
        rows = db.execute("SELECT message_id FROM message_tags WHERE tag_id = ? AND removed_at IS NULL", (found.id,))
    return frozenset(row[0] for row in rows)


def tag_counts(case: Case, ids: Iterable[str] | None = None) -> TagFacet:
    """The tag facet: how many of IDS (None: every message of the case) carry each tag now.

    For a search page, pass every hit id (``case.engine().all_ids(result.parsed)``).
    """
    db = _ready(case)
    if ids is None:
        total = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        counts = dict(db.execute(
            "SELECT tag_id, COUNT(*) FROM message_tags WHERE removed_at IS NULL GROUP BY tag_id").fetchall())
        tagged = int(db.execute(
            "SELECT COUNT(DISTINCT message_id) FROM message_tags WHERE removed_at IS NULL").fetchone()[0])
    else:
        wanted = sorted(set(ids))
        total = len(wanted)
        param = json.dumps(wanted)
        join = "FROM json_each(?) j CROSS JOIN message_tags mt ON mt.message_id = j.value AND mt.removed_at IS NULL"
        counts = dict(db.execute(f"SELECT mt.tag_id, COUNT(*) {join} GROUP BY mt.tag_id", (param,)).fetchall())
        tagged = int(db.execute(f"SELECT COUNT(DISTINCT mt.message_id) {join}", (param,)).fetchone()[0])
    tags = [TagCount(t.name, t.colour, int(counts.get(t.id, 0)), t.shortcut) for t in list_tags(case)]
    return TagFacet(total=total, tags=tags, tagged=tagged, untagged=total - tagged)


def tag_counts_of_query(case: Case, node: q.Node, total: int, ids: Iterable[str] | None = None) -> TagFacet:
    """The tag facet of a whole search result: NODE (parsed and resolved) finds TOTAL messages.

    IDS, when the caller has every hit id already (the facets did list them), is intersected with
    the live tag rows in memory: milliseconds even for 200,000 hits. Without it the engine is asked
    once: for the hits among the tagged messages (NODE AND their ids) when the tagged messages are
    few beside the hits, else for every hit id. A case nobody has tagged yet costs nothing.
    """
    rows = _ready(case).execute("SELECT message_id, tag_id FROM message_tags WHERE removed_at IS NULL").fetchall()
    tagged_any = frozenset(row[0] for row in rows)
    hits: frozenset[str] | set[str]
    if not tagged_any or total == 0:
        hits = frozenset()
    elif ids is not None:
        hits = tagged_any.intersection(ids)
    elif isinstance(node, q.MatchAll):
        hits = tagged_any
    elif total >= _RESTRICT_RATIO * len(tagged_any):
        hits = set(case.engine().all_ids(q.and_all([node, q.Field("ids", IdSet(tagged_any, "tagged (any tag)"))])))
    else:
        hits = tagged_any.intersection(case.engine().all_ids(node))
    counts: dict[int, int] = {}
    for message_id, tag_id in rows:
        if message_id in hits:
            counts[tag_id] = counts.get(tag_id, 0) + 1
    tags = [TagCount(t.name, t.colour, counts.get(t.id, 0), t.shortcut) for t in list_tags(case)]
    return TagFacet(total=total, tags=tags, tagged=len(hits), untagged=total - len(hits))


# Restrict the engine to the tagged ids when the hits outnumber them this many times (measured on a
# 200,000-message case: an id-set query costs about as much as listing 40 hits per id in it).
_RESTRICT_RATIO = 50


# ---------------------------------------------------------------------------------------------- notes


def _note(row: sqlite3.Row) -> Note:
    return Note(row["id"], row["message_id"], row["text"], row["created_by"], row["created_at"], row["updated_by"],
                row["updated_at"], bool(row["deleted"]), row["revisions"])


def _note_text(text: str) -> str:
    if not text.strip():
        raise ReviewError("a note needs some text")
    if len(text) > MAX_NOTE:
        raise ReviewError(f"a note is at most {MAX_NOTE} characters")
    return text.strip()


def get_note(case: Case, note_id: int) -> Note:
    row = _ready(case).execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        raise ReviewError(f"no note {note_id} in this case")
    return _note(row)


def add_note(case: Case, message_id: str, text: str, *, actor: str | None = None,
             address: str | None = None) -> Note:
    """A new note on MESSAGE_ID (revision 1). Audited as ``note_add``."""
    body = _note_text(text)
    who = _who(actor)
    at = now_utc()
    with _writing(case) as db:
        _check_messages(db, [message_id])
        cursor = db.execute(
            "INSERT INTO notes(message_id, text, created_by, created_at, updated_by, updated_at) VALUES (?,?,?,?,?,?)",
            (message_id, body, who, at, who, at))
        note_id = int(cursor.lastrowid or 0)
        db.execute("INSERT INTO note_revisions(note_id, revision, text, actor, at) VALUES (?, 1, ?, ?, ?)",
                   (note_id, body, who, at))
    _record(case, "note_add", {"note": note_id, "message_id": message_id, "chars": len(body)}, who, address)
    return get_note(case, note_id)


def may_change_note(note: Note, who: str, admin: bool = False) -> bool:
    """Whether WHO (with ADMIN: an administrator) may edit or delete NOTE: its author or an admin."""
    return admin or note.created_by == who


def _check_note_owner(note: Note, who: str, admin: bool, verb: str) -> None:
    if not may_change_note(note, who, admin):
        raise NotPermitted(f"only its author ({note.created_by}) or an admin may {verb} this note")


def edit_note(case: Case, note_id: int, text: str, *, actor: str | None = None,
              address: str | None = None, admin: bool = False) -> Note:
    """Replace a note's text: a new revision (the old text stays in its history). Only its author,
    or with ADMIN an administrator, may. Audited as ``note_edit``; an unchanged text changes nothing."""
    note = get_note(case, note_id)
    who = _who(actor)
    _check_note_owner(note, who, admin, "edit")
    body = _note_text(text)
    if note.deleted:
        raise ReviewError(f"note {note_id} was deleted")
    if body == note.text:
        return note
    return _revise(case, note, body, False, who, address)


def delete_note(case: Case, note_id: int, *, actor: str | None = None, address: str | None = None,
                admin: bool = False) -> Note:
    """Delete a note: a last, deleting revision; the note and its history stay in case.db. Only its
    author, or with ADMIN an administrator, may. Audited as ``note_delete``."""
    note = get_note(case, note_id)
    who = _who(actor)
    _check_note_owner(note, who, admin, "delete")
    if note.deleted:
        raise ReviewError(f"note {note_id} was already deleted")
    return _revise(case, note, "", True, who, address)


def _revise(case: Case, note: Note, body: str, deleted: bool, who: str, address: str | None) -> Note:
    at = now_utc()
    with _writing(case) as db:
        revision = int(db.execute("SELECT MAX(revision) FROM note_revisions WHERE note_id = ?",
                                  (note.id,)).fetchone()[0]) + 1
        db.execute("INSERT INTO note_revisions(note_id, revision, text, deleted, actor, at) VALUES (?,?,?,?,?,?)",
                   (note.id, revision, body, int(deleted), who, at))
        db.execute("UPDATE notes SET text = ?, deleted = ?, updated_by = ?, updated_at = ?, revisions = ? "
                   "WHERE id = ?", (body, int(deleted), who, at, revision, note.id))
    action = "note_delete" if deleted else "note_edit"
    _record(case, action, {"note": note.id, "message_id": note.message_id, "revision": revision,
                           "chars": len(body)}, who, address)
    return get_note(case, note.id)


def list_notes(case: Case, message_id: str | None = None, *, include_deleted: bool = False) -> list[Note]:
    """Notes on MESSAGE_ID (None: every note of the case), oldest first."""
    clauses, params = [], []
    if message_id is not None:
        clauses.append("message_id = ?")
        params.append(message_id)
    if not include_deleted:
        clauses.append("deleted = 0")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return [_note(row) for row in _ready(case).execute(f"SELECT * FROM notes {where} ORDER BY id", params)]


def notes_for(case: Case, message_ids: Iterable[str]) -> dict[str, list[Note]]:
    """The live notes of each of MESSAGE_IDS (oldest first; [] for none): to show beside messages."""
    ids = _unique(message_ids)
    out: dict[str, list[Note]] = {i: [] for i in ids}
    rows = _ready(case).execute(
        "SELECT n.* FROM json_each(?) j CROSS JOIN notes n ON n.message_id = j.value AND n.deleted = 0 ORDER BY n.id",
        (json.dumps(ids),))
    for row in rows:
        out[row["message_id"]].append(_note(row))
    return out


def note_history(case: Case, note_id: int) -> list[NoteRevision]:
    """Every revision of a note, first to last."""
    get_note(case, note_id)
    rows = _ready(case).execute("SELECT * FROM note_revisions WHERE note_id = ? ORDER BY revision", (note_id,))
    return [NoteRevision(r["note_id"], r["revision"], r["text"], bool(r["deleted"]), r["actor"], r["at"])
            for r in rows]


def note_ids(case: Case, text_query: str) -> frozenset[str]:
    """Ids of the messages with a live note matching TEXT_QUERY (words, phrases, wildcards, fuzzy,
    stems: the query language's text part, applied to the note's text)."""
    node = parse(text_query)
    rows = _ready(case).execute("SELECT message_id, text FROM notes WHERE deleted = 0")
    return frozenset(message_id for message_id, text in rows if spans(node, text) is not None)


# ---------------------------------------------------------------------------------------------- queries


def resolve_field(case: Case, node: q.Field) -> q.Node:
    """``tag:NAME``, ``is:tagged``, ``is:untagged``, ``note:TEXT`` as the messages they mean now.

    Returns ``Field("ids", IdSet)`` (``is:untagged``: its ``Not``). A tag the case does not have
    matches nothing (so ``-tag:reviewed`` matches everything until someone defines it).
    """
    value = str(node.value)
    if node.name == "tag":
        tag = find_tag(case, value)
        if tag is None:
            return q.Field("ids", IdSet((), f'tagged "{value}" (no such tag in this case)'))
        return q.Field("ids", IdSet(tagged_ids(case, tag.name), f'tagged "{tag.name}"'))
    if node.name == "note":
        return q.Field("ids", IdSet(note_ids(case, value), f"has a note matching {value}"))
    if node.name == "is" and value.lower() in ("tagged", "untagged"):
        tagged = q.Field("ids", IdSet(tagged_ids(case), "tagged (any tag)"))
        return tagged if value.lower() == "tagged" else q.Not(tagged)
    return node


def count_hits(case: Case, query: str, filters: Sequence[str | q.Node] | None = None) -> int:
    """How many messages QUERY with FILTERS matches now (hits only, no context)."""
    node, _ = _resolved(case, query, filters)
    ids = _all_hit_ids(case, node)
    if ids is None:
        return int(case.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    return len(ids)


# ---------------------------------------------------------------------------------------------- saved searches


def _saved(row: sqlite3.Row) -> SavedSearch:
    return SavedSearch(
        row["id"], row["name"], row["query"], json.loads(row["filters"]), row["context"], row["sort"],
        json.loads(row["view"]), row["owner"], bool(row["shared"]), row["created_at"], row["hits_at_save"],
        row["last_run_at"], row["last_run_by"], row["last_run_hits"],
    )


def save_search(case: Case, name: str, query: str, *, filters: Sequence[str] = (), context: int = 3,
                sort: str = "relevance", view: dict[str, Any] | None = None, shared: bool = False,
                actor: str | None = None, address: str | None = None) -> SavedSearch:
    """Save QUERY with FILTERS (query strings, each ANDed with it) under NAME for ACTOR (the owner).

    The query and filters are checked (QueryError) and run once: the hit count now is kept as
    ``hits_at_save``. VIEW is stored as given (the web's form state). SHARED makes it visible to
    every user of the case. Names are unique per owner. Audited as ``saved_add``.
    """
    cleaned = _clean_name(name, "saved search", MAX_SAVED_NAME)
    texts = list(filters)
    if any(not isinstance(text, str) for text in texts):
        raise ReviewError("saved search filters are query strings")
    _check_context(context)
    if sort not in SORTS:
        raise ReviewError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    who = _who(actor)
    hits = count_hits(case, query, texts)
    with _writing(case) as db:
        if db.execute("SELECT 1 FROM saved_searches WHERE owner = ? AND name = ? AND deleted_at IS NULL",
                      (who, cleaned)).fetchone():
            raise ReviewError(f"you already have a saved search called {cleaned!r}")
        cursor = db.execute(
            "INSERT INTO saved_searches(name, query, filters, context, sort, view, owner, shared, created_at, "
            "hits_at_save) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (cleaned, query, json.dumps(texts, ensure_ascii=False), context, sort,
             json.dumps(view or {}, ensure_ascii=False, sort_keys=True), who, int(shared), now_utc(), hits),
        )
        saved_id = int(cursor.lastrowid or 0)
    _record(case, "saved_add", {"saved": saved_id, "name": cleaned, "query": query, "filters": texts,
                                "shared": shared, "hits": hits}, who, address)
    return _get_saved_by_id(case, saved_id)


def _get_saved_by_id(case: Case, saved_id: int) -> SavedSearch:
    row = _ready(case).execute("SELECT * FROM saved_searches WHERE id = ? AND deleted_at IS NULL",
                               (saved_id,)).fetchone()
    if row is None:
        raise ReviewError(f"no saved search {saved_id} in this case")
    return _saved(row)


def list_saved(case: Case, *, user: str | None = None) -> list[SavedSearch]:
    """Saved searches USER may see (their own and the shared ones; None: all), by name."""
    if user is None:
        rows = _ready(case).execute("SELECT * FROM saved_searches WHERE deleted_at IS NULL ORDER BY name, id")
    else:
        rows = _ready(case).execute(
            "SELECT * FROM saved_searches WHERE deleted_at IS NULL AND (owner = ? OR shared = 1) ORDER BY name, id",
            (user,))
    return [_saved(row) for row in rows]


def get_saved(case: Case, ref: int | str, *, user: str | None = None) -> SavedSearch:
    """A saved search by number or name, among those USER may see (None: all).

    A name is looked up among USER's own first, then the shared ones; a name several owners use
    is ambiguous (ReviewError: use the number).
    """
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        saved = _get_saved_by_id(case, int(ref))
        if user is not None and saved.owner != user and not saved.shared:
            raise ReviewError(f"no saved search {ref} in this case")  # not visible: do not say it exists
        return saved
    visible = [s for s in list_saved(case, user=user) if s.name == " ".join(ref.split())]
    own = [s for s in visible if s.owner == user]
    candidates = own or visible
    if not candidates:
        raise ReviewError(f"no saved search called {ref!r}")
    if len(candidates) > 1:
        numbers = ", ".join(f"{s.id} ({s.owner})" for s in candidates)
        raise ReviewError(f"several saved searches are called {ref!r}: {numbers}; use the number")
    return candidates[0]


def run_saved(case: Case, ref: int | str, *, user: str | None = None, actor: str | None = None,
              address: str | None = None) -> SavedRun:
    """Count a saved search's hits now, beside the count when it was saved and at its last run.

    Records the run on the saved search (``last_run_*``) and in the audit trail (``saved_run``). To
    show the hits, search with ``saved.query``, ``filters=saved.filter_nodes()``, ``saved.context``
    and ``saved.sort``.
    """
    saved = get_saved(case, ref, user=user)
    who = _who(actor)
    hits = count_hits(case, saved.query, saved.filters)
    at = now_utc()
    with _writing(case) as db:
        db.execute("UPDATE saved_searches SET last_run_at = ?, last_run_by = ?, last_run_hits = ? WHERE id = ?",
                   (at, who, hits, saved.id))
    _record(case, "saved_run", {"saved": saved.id, "name": saved.name, "hits_then": saved.hits_at_save,
                                "hits_now": hits}, who, address)
    return SavedRun(_get_saved_by_id(case, saved.id), saved.hits_at_save, saved.last_run_hits, hits, at)


def _owned(case: Case, ref: int | str, who: str, admin: bool) -> SavedSearch:
    saved = get_saved(case, ref, user=None if admin else who)
    if not admin and saved.owner != who:
        raise NotPermitted(f"saved search {saved.id} belongs to {saved.owner}; only they (or an admin) can change it")
    return saved


def share_saved(case: Case, ref: int | str, shared: bool = True, *, actor: str | None = None,
                address: str | None = None, admin: bool = False) -> SavedSearch:
    """Share a saved search with the case (or stop sharing it). Only its owner, or with ADMIN an
    administrator, may. Audited as ``saved_share``."""
    who = _who(actor)
    saved = _owned(case, ref, who, admin)
    if saved.shared == shared:
        return saved
    with _writing(case) as db:
        db.execute("UPDATE saved_searches SET shared = ? WHERE id = ?", (int(shared), saved.id))
    _record(case, "saved_share", {"saved": saved.id, "name": saved.name, "shared": shared}, who, address)
    return _get_saved_by_id(case, saved.id)


def delete_saved(case: Case, ref: int | str, *, actor: str | None = None, address: str | None = None,
                 admin: bool = False) -> SavedSearch:
    """Delete a saved search (a tombstone: the row stays, marked deleted by whom and when). Only its
    owner, or with ADMIN an administrator, may. Audited as ``saved_delete``. Returns it as it was."""
    who = _who(actor)
    saved = _owned(case, ref, who, admin)
    with _writing(case) as db:
        db.execute("UPDATE saved_searches SET deleted_by = ?, deleted_at = ? WHERE id = ?", (who, now_utc(), saved.id))
    _record(case, "saved_delete", {"saved": saved.id, "name": saved.name, "owner": saved.owner}, who, address)
    return saved


# ---------------------------------------------------------------------------------------------- review sets


_SET_SELECT = ("SELECT s.*, (SELECT COUNT(*) FROM review_items i WHERE i.set_id = s.id AND i.reviewed = 1) "
               "AS reviewed_count FROM review_sets s")


def _set(row: sqlite3.Row) -> ReviewSet:
    return ReviewSet(row["id"], row["name"], row["query"], json.loads(row["filters"]), row["explained"],
                     row["context"], row["created_by"], row["created_at"], row["items"], row["hits"],
                     int(row["reviewed_count"]))


def _item(row: sqlite3.Row) -> ReviewItem:
    return ReviewItem(row["set_id"], row["position"], row["message_id"], bool(row["hit"]), bool(row["reviewed"]),
                      row["reviewed_by"], row["reviewed_at"])


def create_set(case: Case, name: str, query: str, *, filters: Sequence[str | q.Node] | None = None,
               context: int = 3, actor: str | None = None, address: str | None = None) -> ReviewSet:
    """Freeze what QUERY (with FILTERS) finds now, with CONTEXT messages around each hit, as a new
    numbered review set; its items are numbered 1..n in export order (conversation, time, id).

    Later ingests, tags or notes never change a set. ReviewError if the search finds nothing;
    QueryError for a malformed query. Audited as ``set_create``.
    """
    cleaned = _clean_name(name, "review set", MAX_SAVED_NAME)
    _check_context(context)
    node, texts = _resolved(case, query, filters)
    pairs = query_ids(case, query, filters=filters, context=context)
    if not pairs:
        raise ReviewError("the search finds no messages: there is nothing to put in a review set")
    who = _who(actor)
    hits = sum(1 for _, hit in pairs if hit)
    with _writing(case) as db:
        cursor = db.execute(
            "INSERT INTO review_sets(name, query, filters, explained, context, created_by, created_at, items, hits) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (cleaned, query, json.dumps(texts, ensure_ascii=False), explain(node), context, who, now_utc(),
             len(pairs), hits),
        )
        set_id = int(cursor.lastrowid or 0)
        db.executemany("INSERT INTO review_items(set_id, position, message_id, hit) VALUES (?,?,?,?)",
                       [(set_id, n, message_id, int(hit)) for n, (message_id, hit) in enumerate(pairs, 1)])
    _record(case, "set_create", {"set": set_id, "name": cleaned, "query": query, "filters": texts,
                                 "context": context, "items": len(pairs), "hits": hits}, who, address)
    return get_set(case, set_id)


def get_set(case: Case, set_id: int) -> ReviewSet:
    row = _ready(case).execute(f"{_SET_SELECT} WHERE s.id = ?", (set_id,)).fetchone()
    if row is None:
        raise ReviewError(f"no review set {set_id} in this case")
    return _set(row)


def list_sets(case: Case) -> list[ReviewSet]:
    """Every review set, by number."""
    return [_set(row) for row in _ready(case).execute(f"{_SET_SELECT} ORDER BY s.id")]


def set_items(case: Case, set_id: int, *, offset: int = 0, limit: int | None = None,
              reviewed: bool | None = None, hits_only: bool = False) -> list[ReviewItem]:
    """A set's items in order (a page of them with OFFSET/LIMIT; only (un)reviewed ones with
    REVIEWED True/False; only hits with HITS_ONLY)."""
    get_set(case, set_id)
    clauses = ["set_id = ?"]
    params: list[Any] = [set_id]
    if reviewed is not None:
        clauses.append("reviewed = ?")
        params.append(int(reviewed))
    if hits_only:
        clauses.append("hit = 1")
    params += [-1 if limit is None else limit, offset]
    rows = _ready(case).execute(
        f"SELECT * FROM review_items WHERE {' AND '.join(clauses)} ORDER BY position LIMIT ? OFFSET ?", params)
    return [_item(row) for row in rows]


def set_item(case: Case, set_id: int, position: int) -> ReviewItem:
    """Item POSITION (1..items) of a set."""
    get_set(case, set_id)
    row = _ready(case).execute("SELECT * FROM review_items WHERE set_id = ? AND position = ?",
                               (set_id, position)).fetchone()
    if row is None:
        raise ReviewError(f"review set {set_id} has no item {position}")
    return _item(row)


def next_item(case: Case, set_id: int, after: int = 0, *, unreviewed: bool = True,
              hits_only: bool = False) -> ReviewItem | None:
    """The first item after position AFTER (0: from the start) that is not reviewed yet (with
    UNREVIEWED False: any), or None at the end of the set."""
    get_set(case, set_id)
    sql = "SELECT * FROM review_items WHERE set_id = ? AND position > ?"
    if unreviewed:
        sql += " AND reviewed = 0"
    if hits_only:
        sql += " AND hit = 1"
    row = _ready(case).execute(sql + " ORDER BY position LIMIT 1", (set_id, after)).fetchone()
    return _item(row) if row else None


def review_item(case: Case, set_id: int, position: int, *, reviewed: bool = True, tags: Sequence[str] = (),
                untags: Sequence[str] = (), actor: str | None = None, address: str | None = None) -> ReviewItem:
    """Mark item POSITION of a set reviewed (or with REVIEWED False, not reviewed), first putting
    TAGS on its message and taking UNTAGS off (each a ``tag_add`` / ``tag_remove`` entry naming the
    set). Audited as ``set_review``."""
    item = set_item(case, set_id, position)
    for name in (*tags, *untags):
        get_tag(case, name)  # all names checked before anything changes
    who = _who(actor)
    where = {"set": set_id, "position": position}
    for name in tags:
        add_tag(case, [item.message_id], name, actor=who, address=address, details=where)
    for name in untags:
        remove_tag(case, [item.message_id], name, actor=who, address=address, details=where)
    with _writing(case) as db:
        db.execute("UPDATE review_items SET reviewed = ?, reviewed_by = ?, reviewed_at = ? "
                   "WHERE set_id = ? AND position = ?", (int(reviewed), who, now_utc(), set_id, position))
    _record(case, "set_review", {**where, "message_id": item.message_id, "reviewed": reviewed,
                                 "tags": list(tags), "untags": list(untags)}, who, address)
    return set_item(case, set_id, position)


def set_progress(case: Case, set_id: int) -> Progress:
    """Reviewed x of y (also among the hits), and how many each reviewer marked."""
    get_set(case, set_id)
    db = _ready(case)
    items, reviewed, hits, hits_reviewed = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(reviewed), 0), COALESCE(SUM(hit), 0), COALESCE(SUM(hit * reviewed), 0) "
        "FROM review_items WHERE set_id = ?", (set_id,)).fetchone()
    by = dict(db.execute("SELECT reviewed_by, COUNT(*) FROM review_items WHERE set_id = ? AND reviewed = 1 "
                         "GROUP BY reviewed_by ORDER BY reviewed_by", (set_id,)).fetchall())
    return Progress(int(items), int(reviewed), int(hits), int(hits_reviewed), {str(k): int(v) for k, v in by.items()})


def set_message_ids(case: Case, set_id: int) -> list[tuple[str, bool]]:
    """(message id, is a hit) of every item, in item order."""
    get_set(case, set_id)
    rows = _ready(case).execute("SELECT message_id, hit FROM review_items WHERE set_id = ? ORDER BY position",
                                (set_id,))
    return [(row[0], bool(row[1])) for row in rows]


def export_set(case: Case, set_id: int, out_path: str | Path, *, actor: str | None = None,
               address: str | None = None, **options: Any) -> Any:
    """Export exactly the set's frozen messages as an evidence bundle (``export_bundle``; OPTIONS
    are its keyword options: bates_prefix, bates_start, slice, tz, terms, ...). Returns its
    ExportReport. Audited as ``set_export``.

    If ``export_bundle`` accepts ``items`` (an exact (message id, hit) selection) the bundle keeps
    the set's hit/context marks; otherwise the set's ids are a filter with no context, and every
    message of the set is marked a hit in the bundle.
    """
    import inspect

    from discovery.export import export_bundle

    review_set = get_set(case, set_id)
    pairs = set_message_ids(case, set_id)
    who = _who(actor)
    label = f"the {len(pairs)} messages of review set {review_set.id} ({review_set.name!r})"
    options.setdefault("created_by", who)
    if "items" in inspect.signature(export_bundle).parameters:
        report = export_bundle(case, review_set.query, out_path, items=pairs, context=review_set.context,
                               **options)
    else:
        ids = q.Field("ids", IdSet((message_id for message_id, _ in pairs), label))
        report = export_bundle(case, "", out_path, context=0, filters=[ids], **options)
    _record(case, "set_export", {"set": set_id, "name": review_set.name, "out": str(out_path),
                                 "bundle_id": report.bundle_id, "fingerprint": report.manifest_sha256,
                                 "zip_sha256": report.bundle_sha256, "counts": report.counts}, who, address)
    return report

