"""A case: one folder holding case.db (the system of record), index/ and originals/.

case.db holds everything the evidence needs (messages, sources, provenance, exceptions, ingest
runs); the full-text index under index/ is derived from it and can always be rebuilt.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from discovery.model import iso_utc

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingest_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    tool_version TEXT NOT NULL,
    arguments TEXT NOT NULL,          -- JSON: paths, custodian, format, options as given
    custodian TEXT,
    files INTEGER NOT NULL DEFAULT 0,
    messages_added INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    exceptions INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'running'   -- running / complete / partial / failed / interrupted
);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES ingest_runs(id),
    path TEXT NOT NULL,               -- as the user gave it (the zip for members)
    member TEXT,                      -- path inside the zip, else NULL
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,             -- of exactly these bytes (the member's, inside a zip)
    container_sha256 TEXT,            -- the zip's hash, for members
    format TEXT,                      -- adapter name, NULL when no adapter claimed it
    custodian TEXT,
    limits TEXT,                      -- what this kind of export can and cannot contain
    original TEXT,                    -- path of the read-only copy under originals/, if kept
    messages INTEGER NOT NULL DEFAULT 0,
    ingested_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sources_sha ON sources(sha256);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    source_format TEXT NOT NULL,
    name TEXT,
    type TEXT
);
CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY,
    name TEXT,
    kind TEXT
);
CREATE TABLE IF NOT EXISTS conversation_members (
    conversation_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    PRIMARY KEY (conversation_id, participant_id)
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    native_id TEXT NOT NULL,
    source_format TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    stream TEXT NOT NULL,             -- context windows run inside a stream: the conversation,
                                      -- or the merged-forward bundle a message was carried in
    thread_id TEXT,
    reply_to TEXT,
    bundle_id TEXT,
    sender_id TEXT,
    sender_name TEXT,                 -- as the source named the sender, if it did
    sender_kind TEXT NOT NULL,
    sent_at TEXT NOT NULL,            -- ISO 8601 UTC
    sent_at_us INTEGER NOT NULL,      -- microseconds since the epoch, for ordering
    sent_at_raw TEXT NOT NULL,
    tz_assumption TEXT,
    edited INTEGER NOT NULL,
    edited_at TEXT,
    deleted INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    mentions TEXT NOT NULL,           -- JSON
    attachments TEXT NOT NULL,        -- JSON
    reactions TEXT NOT NULL,          -- JSON
    custodian TEXT,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    locator TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_stream ON messages(stream, sent_at_us, id);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages(conversation_id, sent_at_us, id);
-- covering index for facets over a hit list (sender, conversation, format, month) without table reads
CREATE INDEX IF NOT EXISTS messages_facets ON messages(id, sender_id, conversation_id, source_format, sent_at_us);
CREATE INDEX IF NOT EXISTS messages_bundle ON messages(bundle_id) WHERE bundle_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_native ON messages(native_id);
CREATE TABLE IF NOT EXISTS duplicates (
    message_id TEXT NOT NULL,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    locator TEXT NOT NULL,
    identical INTEGER NOT NULL,       -- 1 when the raw record equals the one kept
    raw TEXT                          -- kept when it differs, so nothing is lost
);
CREATE TABLE IF NOT EXISTS exceptions (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES ingest_runs(id),
    source_id INTEGER REFERENCES sources(id),
    path TEXT NOT NULL,
    member TEXT,
    locator TEXT NOT NULL,
    error TEXT NOT NULL,
    raw TEXT,
    created_at TEXT NOT NULL
);
-- Accounts (discovery.users): they live in the case, so a case folder carries its own access list.
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'investigator', 'auditor')),
    password_hash TEXT NOT NULL,
    token_hash TEXT,                  -- SHA-256 of the API token; the token itself is shown once
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
);
-- The audit trail (discovery.audit): append-only, hash-chained.
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,            -- ISO 8601 UTC
    actor TEXT NOT NULL,         -- user name, or "cli:<os user>" for commands run on the machine
    address TEXT NOT NULL,       -- client IP for the web, host name for the CLI
    action TEXT NOT NULL,        -- login, login_failed, search, view_message, export, ingest, ...
    details TEXT NOT NULL,       -- JSON
    outcome TEXT NOT NULL,       -- ok / denied / error / partial
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


# Secondary indexes of the messages table that a bulk write into an empty case builds at the end.
DEFERRABLE_INDEXES = ("messages_stream", "messages_conversation", "messages_facets", "messages_bundle",
                      "messages_native")


class CaseError(Exception):
    """The case folder is missing, unreadable, or from an incompatible version."""


def now_utc() -> str:
    return iso_utc(datetime.now(UTC))


class Case:
    """An open case folder. One instance per thread (SQLite connections are not shared)."""

    def __init__(self, folder: str | os.PathLike[str], *, create: bool = False):
        self.folder = Path(folder)
        if not (self.folder / "case.db").exists():
            if not create:
                raise CaseError(
                    f"{self.folder}: not a case folder (no case.db). Ingest something into it first, "
                    f"e.g. `discovery ingest EXPORT --case {self.folder}`."
                )
            self.folder.mkdir(parents=True, exist_ok=True)
        self._engine: Any = None
        self.db = sqlite3.connect(self.folder / "case.db", check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    @property
    def index_dir(self) -> Path:
        return self.folder / "index"

    @property
    def originals_dir(self) -> Path:
        return self.folder / "originals"

    def _migrate(self) -> None:
        self.db.executescript(SCHEMA)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            self.set_meta("created_at", now_utc())
            self.set_meta("engine", "whoosh")
        elif int(version) > SCHEMA_VERSION:
            raise CaseError(
                f"{self.folder}: case schema version {version} is newer than this tool "
                f"understands ({SCHEMA_VERSION}); upgrade discovery."
            )
        self.db.commit()

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self.db
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    @contextmanager
    def bulk_writes(self, cache_mb: int = 64) -> Iterator[None]:
        """A larger page cache for the length of a big write (an ingest run), then the old one back.

        The id-keyed indexes take random inserts; with SQLite's default 2 MB cache their pages are
        re-read from the OS cache again and again (200,000 messages: 216 vs 236 us of CPU each).
        Durability is untouched: journal_mode stays WAL and synchronous NORMAL, because case.db is
        the system of record (synchronous=OFF could corrupt it on a power loss, and in WAL mode a
        commit does not wait for the disk anyway).
        """
        previous = self.db.execute("PRAGMA cache_size").fetchone()[0]
        self.db.execute(f"PRAGMA cache_size = {-1024 * int(cache_mb)}")
        try:
            yield
        finally:
            self.db.execute(f"PRAGMA cache_size = {int(previous)}")

    @contextmanager
    def deferred_message_indexes(self) -> Iterator[None]:
        """For a big write into a case with no messages yet: the messages table's secondary indexes
        are dropped first and built again at the end (also when the write fails).

        Keeping five indexes up to date one row at a time cost ~28 us a message (half of writing
        it); building them from the finished table costs ~1 s per 200,000 messages. Nothing the
        write itself reads needs them (duplicates are found through the id's UNIQUE index, which
        stays). If the process dies before the end, the next open of the case builds them (they
        are in SCHEMA, created if missing): nothing is lost, only that run's speed.
        """
        if self.db.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is not None:
            yield
            return
        marks = ",".join("?" * len(DEFERRABLE_INDEXES))
        statements = self.db.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' "
            f"AND name IN ({marks}) AND sql IS NOT NULL", DEFERRABLE_INDEXES,
        ).fetchall()
        with self.transaction() as db:
            for name, _ in statements:
                db.execute(f'DROP INDEX IF EXISTS "{name}"')
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            try:
                with self.transaction() as db:
                    for name, sql in statements:
                        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                                      (name,)).fetchone() is None:
                            db.execute(sql)
            except Exception:
                if not failed:
                    raise
                # the write's own error is the one to see; the next open of the case builds them

    def engine(self) -> Any:
        """The case's full-text engine, opened once and reused (its searcher is cached)."""
        if self._engine is None:
            from discovery.engines import open_engine

            self._engine = open_engine(self)
        return self._engine

    def close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def close(self) -> None:
        self.close_engine()
        self.db.close()

    # ---- reading -------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        def count(sql: str) -> int:
            return int(self.db.execute(sql).fetchone()[0])

        return {
            "messages": count("SELECT COUNT(*) FROM messages"),
            "conversations": count("SELECT COUNT(*) FROM conversations"),
            "participants": count("SELECT COUNT(*) FROM participants"),
            "sources": count("SELECT COUNT(*) FROM sources"),
            "exceptions": count("SELECT COUNT(*) FROM exceptions"),
            "duplicates": count("SELECT COUNT(*) FROM duplicates"),
            "ingest_runs": count("SELECT COUNT(*) FROM ingest_runs"),
        }

    def messages_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Full message records (the JSON contract's M) for IDS, keyed by id."""
        return {row["id"]: message_record(row) for row in rows_in(self.db, f"{MESSAGE_SELECT} WHERE m.id IN", ids)}

    def message(self, message_id: str) -> dict[str, Any] | None:
        return self.messages_by_id([message_id]).get(message_id)

    def window(self, message_id: str, before: int, after: int) -> list[dict[str, Any]]:
        """The message with up to BEFORE/AFTER neighbours in its stream, in time order."""
        return self.windows([message_id], before, after).get(message_id, [])

    def windows(
        self, ids: list[str], before: int, after: int, known: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """``window(id, before, after)`` for each of IDS, keyed by id, in a few statements for a whole page.

        Window members come from the stream index alone, then each record is read once by rowid (or
        taken from KNOWN, untouched records the caller already read). No two windows, nor a window and
        KNOWN, share a dict or list: callers mark window entries (search sets ``hit``) and windows overlap.
        """
        known = known or {}
        members = self._window_members(ids, before, after)
        missing = list({seq for window in members.values() for m, seq in window if m not in known})
        return _window_entries(ids, members, self._records_by_seq(missing), known)

    def _window_members(self, ids: list[str], before: int, after: int) -> dict[str, list[tuple[str, int]]]:
        """(id, seq) of each found message's window members in (sent_at_us, id) order, one statement per chunk."""
        anchors = list(self._anchors(ids).items())
        out: dict[str, list[tuple[str, int]]] = {}
        for start in range(0, len(anchors), WINDOW_CHUNK):
            chunk = anchors[start : start + WINDOW_CHUNK]
            cursor = self.db.cursor()
            cursor.row_factory = None  # plain tuples: sorted here, cheaper than an ORDER BY over the arms
            for k, _, member, seq in sorted(cursor.execute(*_window_statement(chunk, before, after))):
                out.setdefault(chunk[k][0], []).append((member, seq))
        return out

    def _records_by_seq(self, seqs: list[int]) -> dict[str, dict[str, Any]]:
        """Full records keyed by id, read by rowid (no walk down the id index, as messages_by_id needs)."""
        return {row["id"]: message_record(row) for row in rows_in(self.db, f"{MESSAGE_SELECT} WHERE m.seq IN", seqs)}

    def _anchors(self, ids: list[str]) -> dict[str, tuple[str, int]]:
        """(stream, sent_at_us) of each of IDS that case.db holds."""
        rows = rows_in(self.db, "SELECT id, stream, sent_at_us FROM messages WHERE id IN", ids)
        return {row[0]: (row[1], row[2]) for row in rows}

    def exceptions(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, run_id, path, member, locator, error, raw, created_at FROM exceptions ORDER BY id"
        )
        return [dict(row) for row in rows]


# Window members by the covering index messages_stream(stream, sent_at_us, id) (seq is its rowid),
# one UNION ALL per chunk of hits; an arm may not carry its own ORDER BY/LIMIT, hence SELECT * FROM.
# An arm binds 5 parameters, so 50 hits (<= 100 arms, 500 parameters) keep well inside SQLite's limits
# (500 arms; 999 parameters in old versions).
WINDOW_CHUNK = 50
_EARLIER = (
    "SELECT * FROM (SELECT ? AS k, sent_at_us, id, seq FROM messages WHERE stream = ? AND (sent_at_us, id) < (?, ?) "
    "ORDER BY sent_at_us DESC, id DESC LIMIT ?)"
)
_LATER = (
    "SELECT * FROM (SELECT ? AS k, sent_at_us, id, seq FROM messages WHERE stream = ? AND (sent_at_us, id) >= (?, ?) "
    "ORDER BY sent_at_us, id LIMIT ?)"
)


def _window_statement(chunk: list[tuple[str, tuple[str, int]]], before: int, after: int) -> tuple[str, list[Any]]:
    """SQL and parameters for the (k, sent_at_us, id, seq) rows of the windows of CHUNK's (id, anchor)s,
    k being the position in CHUNK; the window of a message starts with it when BEFORE is 0."""
    parts: list[str] = []
    args: list[Any] = []
    for k, (message_id, (stream, at)) in enumerate(chunk):
        if before:
            parts.append(_EARLIER)
            args += [k, stream, at, message_id, before]
        parts.append(_LATER)
        args += [k, stream, at, message_id, after + 1]
    return " UNION ALL ".join(parts), args


def rows_in(db: sqlite3.Connection, sql: str, values: list[Any], size: int = 500) -> Iterator[Any]:
    """The rows of SQL (ending in "... IN") for VALUES, asked SIZE at a time: SQLite caps the
    parameters of one statement (999 in older builds)."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield from db.execute(f"{sql} ({','.join('?' * len(chunk))})", chunk)


MESSAGE_SELECT = """
SELECT m.*, c.name AS conversation_name, c.type AS conversation_type,
       COALESCE(m.sender_name, p.name) AS resolved_sender_name,
       s.path AS source_path, s.member AS source_member, s.sha256 AS source_sha256,
       s.container_sha256 AS source_container_sha256
FROM messages m
LEFT JOIN conversations c ON c.id = m.conversation_id
LEFT JOIN participants p ON p.id = m.sender_id
JOIN sources s ON s.id = m.source_id
"""


def _json_list(text: str) -> list[Any]:
    """A JSON list column; most are empty, and a page reads hundreds of rows with three each."""
    return [] if text == "[]" else json.loads(text)


def message_record(row: sqlite3.Row) -> dict[str, Any]:
    """One row of MESSAGE_SELECT as the message model's JSON shape (the search contract's M)."""
    row = dict(zip(row.keys(), row, strict=True))  # a name lookup on sqlite3.Row scans its columns
    return {
        "id": row["id"],
        "native_id": row["native_id"],
        "source_format": row["source_format"],
        "conversation_id": row["conversation_id"],
        "conversation_name": row["conversation_name"] or row["conversation_id"],
        "conversation_type": row["conversation_type"],
        "thread_id": row["thread_id"],
        "reply_to": row["reply_to"],
        "bundle_id": row["bundle_id"],
        "sender_id": row["sender_id"],
        "sender_name": row["resolved_sender_name"] or row["sender_id"],
        "sender_kind": row["sender_kind"],
        "sent_at": row["sent_at"],
        "sent_at_raw": row["sent_at_raw"],
        "tz_assumption": row["tz_assumption"],
        "edited": bool(row["edited"]),
        "edited_at": row["edited_at"],
        "deleted": bool(row["deleted"]),
        "kind": row["kind"],
        "text": row["text"],
        "mentions": _json_list(row["mentions"]),
        "attachments": _json_list(row["attachments"]),
        "reactions": _json_list(row["reactions"]),
        "custodian": row["custodian"],
        "source": {
            "sha256": row["source_sha256"],
            "path": row["source_path"],
            "member": row["source_member"],
            "container_sha256": row["source_container_sha256"],
            "locator": row["locator"],
        },
        "raw": row["raw"],
    }


def _window_entries(
    ids: list[str], members: dict[str, list[tuple[str, int]]], fresh: dict[str, dict[str, Any]],
    known: dict[str, dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """Each window of IDS as records, none shared: a FRESH record (read for this call) goes uncopied to
    the first window that has it; other uses, and KNOWN records (the caller keeps those), get copies."""
    shared = dict(known)
    out: dict[str, list[dict[str, Any]]] = {}
    for message_id in ids:
        entries = []
        for member, _ in members.get(message_id, ()):
            record = fresh.pop(member, None)
            if record is not None:
                shared[member] = record
            elif member in shared:
                record = _window_copy(shared[member])
            else:
                continue  # in messages but not in MESSAGE_SELECT's join, as in a full-row window query
            entries.append(record)
        out[message_id] = entries
    return out


def _window_copy(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of a message_record sharing no dict or list with it, as a fresh message_record would be;
    several times cheaper than building one from its row again."""
    out = dict(record)
    out["source"] = dict(record["source"])
    for key in ("mentions", "attachments", "reactions"):
        out[key] = _json_copy(record[key]) if record[key] else []
    return out


def _json_copy(value: Any) -> Any:
    """A JSON value (dicts, lists, scalars) with every dict and list copied (cheaper than deepcopy)."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value
