"""Ingest: source files in, messages into case.db and the index, every problem recorded.

The flow per run: expand each path into source files (folders, zips), hash each file over its
exact bytes, keep a read-only copy by hash, let the content-sniffing auction pick an adapter per
file, stream the adapters' messages into case.db in batches (deduplicated by stable id), and
index each batch. A bad record or file becomes a row in `exceptions` naming the file and the
record; the rest still goes in. Nothing is dropped silently: the report counts everything.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import sys
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from discovery import __version__, audit
from discovery.case import Case, now_utc
from discovery.engine import IndexDoc
from discovery.model import Message, SourceError, iso_utc
from discovery.sources import detect, get_adapter
from discovery.sources.base import Adapter, ParseOptions
from discovery.sources.files import SourceFile, close_archives, expand

BATCH = 2000


@dataclass
class IngestReport:
    run_id: int
    files: int = 0
    unrecognized_files: int = 0
    messages_added: int = 0
    duplicates: int = 0
    exceptions: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, for the summary

    @property
    def exit_code(self) -> int:
        return 3 if self.exceptions else 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


ProgressCallback = Callable[[int], None]


def ingest(
    case: Case,
    paths: Iterable[str],
    *,
    custodian: str | None = None,
    format: str = "auto",
    copy_originals: bool = True,
    options: ParseOptions | None = None,
    progress: ProgressCallback | None = None,
    actor: str | None = None,
) -> IngestReport:
    """Ingest every file under PATHS into CASE; see the module docstring. ACTOR goes on the audit trail."""
    paths = list(paths)
    forced = None if format == "auto" else get_adapter(format)
    run_id = _start_run(case, paths, custodian, format, copy_originals, options)
    with case.transaction():
        case.set_meta("index_state", f"building (ingest run {run_id})")
    report = IngestReport(run_id=run_id)
    writer = _MessageWriter(case, run_id, custodian, report)
    for path in paths:
        groups: dict[str, tuple[Adapter, list[SourceFile]]] = {}
        for item in expand(path):
            if isinstance(item, SourceError):
                writer.exception(item.path or path, item.locator or None, "", str(item))
                continue
            if _inside(item.path, case.folder):
                writer.exception(item.path, item.member, "", "this file belongs to the case folder itself; "
                                 "it was not ingested (point ingest at the export, not at the case)")
                continue
            report.files += 1
            try:
                item.hash()
            except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as error:
                writer.exception(item.path, item.member, "", f"cannot read this file's bytes: {error}")
                continue
            adapter = forced or detect(item)[0]
            source_id = writer.add_source(item, adapter, copy_originals)
            if adapter is None:
                report.unrecognized_files += 1
                writer.exception(
                    item.path, item.member, "", "no adapter recognised this file's content; it was kept as a "
                    "source but no messages were read from it (use --format to force one)", source_id=source_id,
                )
                continue
            groups.setdefault(adapter.name, (adapter, []))[1].append(item)
            if progress:
                progress(item.size)
        for adapter, files in groups.values():
            _parse_group(adapter, files, writer, options or ParseOptions())
    writer.flush()
    close_archives()
    case.engine().commit()
    _finish_run(case, report)
    audit.record(case, "ingest", {"paths": paths, "custodian": custodian, **report.to_dict()}, actor=actor,
                 outcome="partial" if report.exceptions else "ok")
    return report


def _name_direct_messages(db: sqlite3.Connection) -> None:
    """A DM has no name in most exports: call it after the people in it, "DM: A ↔ B"."""
    db.execute(
        "UPDATE conversations SET name = (SELECT 'DM: ' || group_concat(who, ' ↔ ') FROM ("
        "  SELECT COALESCE(p.name, p.id) AS who FROM conversation_members cm JOIN participants p"
        "  ON p.id = cm.participant_id WHERE cm.conversation_id = conversations.id ORDER BY who)) "
        "WHERE type = 'dm' AND (name IS NULL OR name = '')"
    )


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def _parse_group(adapter: Adapter, files: list[SourceFile], writer: _MessageWriter, options: ParseOptions) -> None:
    """Feed one adapter's files through; an adapter bug is recorded, never allowed to stop the run."""
    current: SourceFile | None = None
    try:
        for file, parsed in adapter.parse(files, options):
            current = file
            if isinstance(parsed, SourceError):
                writer.exception(file.path, file.member, parsed.locator, str(parsed), parsed.raw,
                                 source_id=writer.source_ids[id(file)])
            else:
                writer.add(file, parsed)
    except Exception as error:  # noqa: BLE001 - recorded with its type; the run goes on
        where = current or files[0]
        writer.exception(where.path, where.member, "",
                         f"the {adapter.name} adapter failed ({type(error).__name__}: {error}); messages "
                         "after this point in these files were not read: please report this as a bug")


def _start_run(case: Case, paths: list[str], custodian: str | None, fmt: str, copy: bool,
               options: ParseOptions | None) -> int:
    arguments = {"paths": paths, "custodian": custodian, "format": fmt, "copy_originals": copy,
                 "timezone": options.timezone if options else None,
                 "column_map": options.column_map if options else {}}
    with case.transaction() as db:
        cursor = db.execute(
            "INSERT INTO ingest_runs(started_at, tool_version, arguments, custodian) VALUES (?, ?, ?, ?)",
            (now_utc(), __version__, json.dumps(arguments, ensure_ascii=False), custodian),
        )
    return int(cursor.lastrowid or 0)


def _finish_run(case: Case, report: IngestReport) -> None:
    status = "partial" if report.exceptions else "complete"
    with case.transaction() as db:
        _name_direct_messages(db)
        case.set_meta("index_state", "ok")
        db.execute(
            "UPDATE ingest_runs SET finished_at=?, files=?, messages_added=?, duplicates=?, exceptions=?, "
            "status=? WHERE id=?",
            (now_utc(), report.files, report.messages_added, report.duplicates, report.exceptions, status,
             report.run_id),
        )


class _MessageWriter:
    """Buffers parsed messages and writes them to case.db and the engine a batch at a time."""

    def __init__(self, case: Case, run_id: int, custodian: str | None, report: IngestReport):
        self.case = case
        self.run_id = run_id
        self.custodian = custodian
        self.report = report
        self.engine = case.engine()
        self.pending: list[tuple[int, Message]] = []
        self.source_ids: dict[int, int] = {}  # id(SourceFile) -> sources.id
        self.source_counts: dict[int, int] = defaultdict(int)

    def add_source(self, file: SourceFile, adapter: Adapter | None, copy: bool) -> int:
        original = _keep_original(self.case, file) if copy else None
        with self.case.transaction() as db:
            cursor = db.execute(
                "INSERT INTO sources(run_id, path, member, size, sha256, container_sha256, format, custodian, "
                "limits, original, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (self.run_id, file.path, file.member, file.size, file.sha256, file.container_sha256,
                 adapter.name if adapter else None, self.custodian, adapter.limits if adapter else None,
                 original, now_utc()),
            )
        source_id = int(cursor.lastrowid or 0)
        self.source_ids[id(file)] = source_id
        return source_id

    def exception(self, path: str, member: str | None, locator: str, error: str, raw: str | None = None,
                  source_id: int | None = None) -> None:
        self.report.exceptions += 1
        where = f"{path}!{member}" if member else path
        message = f"{where}{' at ' + locator if locator else ''}: {error}"
        if len(self.report.errors) < 20:
            self.report.errors.append(message)
        self.case.db.execute(
            "INSERT INTO exceptions(run_id, source_id, path, member, locator, error, raw, created_at) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (self.run_id, source_id, path, member, locator or "", error, raw, now_utc()),
        )

    def add(self, file: SourceFile, message: Message) -> None:
        self.pending.append((self.source_ids[id(file)], message))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        with self.case.transaction() as db:
            fresh = self._write_batch(db, batch)
            for source_id, count in self.source_counts.items():
                db.execute("UPDATE sources SET messages = messages + ? WHERE id = ?", (count, source_id))
            self.source_counts.clear()
        if fresh:
            self.engine.add(index_docs(self.case, [m.key() for _, m in fresh]))

    def _write_batch(self, db, batch: list[tuple[int, Message]]) -> list[tuple[int, Message]]:
        keys = [message.key() for _, message in batch]
        existing = _existing(db, keys)
        fresh: list[tuple[int, Message]] = []
        for (source_id, message), key in zip(batch, keys, strict=False):
            if key in existing:
                self._record_duplicate(db, key, source_id, message, existing[key])
                continue
            existing[key] = (source_id, message.locator, message.raw)
            fresh.append((source_id, message))
            self.source_counts[source_id] += 1
        for _source_id, message in fresh:
            _upsert_directory(db, message)
        db.executemany(INSERT_MESSAGE, [_message_row(m, s, self.custodian) for s, m in fresh])
        self.report.messages_added += len(fresh)
        return fresh

    def _record_duplicate(self, db, key: str, source_id: int, message: Message,
                          kept: tuple[int, str, str]) -> None:
        kept_source, kept_locator, kept_raw = kept
        if _same_bytes_again(db, kept_source, source_id) and kept_locator == message.locator:
            # The very same file ingested again: not a new occurrence, nothing to record.
            self.report.duplicates += 1
            return
        identical = message.raw == kept_raw
        db.execute(
            "INSERT INTO duplicates(message_id, source_id, locator, identical, raw) VALUES (?,?,?,?,?)",
            (key, source_id, message.locator, int(identical), None if identical else message.raw),
        )
        self.report.duplicates += 1



def _existing(db, keys: list[str]) -> dict[str, tuple[int, str, str]]:
    found: dict[str, tuple[int, str, str]] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(f"SELECT id, source_id, locator, raw FROM messages WHERE id IN ({marks})", chunk):
            found[row[0]] = (row[1], row[2], row[3])
    return found


def _same_bytes_again(db, kept_source: int, source_id: int) -> bool:
    if kept_source == source_id:
        return False  # a record repeated inside one file is a real second occurrence
    rows = db.execute(
        "SELECT sha256, member FROM sources WHERE id IN (?, ?)", (kept_source, source_id)
    ).fetchall()
    return len(rows) == 2 and rows[0][0] == rows[1][0]


def _upsert_directory(db, message: Message) -> None:
    db.execute(
        "INSERT INTO conversations(id, source_format, name, type) VALUES (?,?,?,?) "
        "ON CONFLICT(id) DO UPDATE SET name = COALESCE(excluded.name, name), type = COALESCE(excluded.type, type)",
        (message.conversation_id, message.source_format, message.conversation_name, message.conversation_type),
    )
    people = [(message.sender_id, message.sender_name, message.sender_kind)]
    people += [(m.id, m.name, None) for m in message.mentions if m.id]
    for person_id, name, kind in people:
        if not person_id:
            continue
        db.execute(
            "INSERT INTO participants(id, name, kind) VALUES (?,?,?) ON CONFLICT(id) DO UPDATE SET "
            "name = COALESCE(name, excluded.name), "
            "kind = CASE WHEN kind IS NULL OR kind = 'unknown' THEN COALESCE(excluded.kind, kind) ELSE kind END",
            (person_id, name, kind),
        )
        db.execute(
            "INSERT OR IGNORE INTO conversation_members(conversation_id, participant_id) VALUES (?,?)",
            (message.conversation_id, person_id),
        )


INSERT_MESSAGE = (
    "INSERT INTO messages(id, native_id, source_format, conversation_id, stream, thread_id, reply_to, bundle_id, "
    "sender_id, sender_name, sender_kind, sent_at, sent_at_us, sent_at_raw, tz_assumption, edited, edited_at, "
    "deleted, kind, text, mentions, attachments, reactions, custodian, source_id, locator, raw) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def stream_of(message: Message) -> str:
    """Context windows run within a conversation, or within the bundle a message was forwarded in."""
    if message.bundle_id:
        return f"{message.conversation_id}#bundle:{message.bundle_id}"
    return message.conversation_id


def _message_row(message: Message, source_id: int, custodian: str | None) -> tuple[object, ...]:
    sent = message.sent_at.astimezone(UTC)
    data = message.to_dict()
    return (
        message.key(), message.native_id, message.source_format, message.conversation_id, stream_of(message),
        message.thread_id, message.reply_to, message.bundle_id, message.sender_id, message.sender_name,
        message.sender_kind, iso_utc(sent), _epoch_us(sent), message.sent_at_raw, message.tz_assumption,
        int(message.edited), data["edited_at"], int(message.deleted), message.kind, message.text,
        json.dumps(data["mentions"], ensure_ascii=False), json.dumps(data["attachments"], ensure_ascii=False),
        json.dumps(data["reactions"], ensure_ascii=False), custodian, source_id, message.locator, message.raw,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def index_docs(case: Case, ids: list[str]) -> Iterator[IndexDoc]:
    """Build the engine's documents from case.db, the single source of truth (reindex uses this too)."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = case.db.execute(
            "SELECT m.id, m.text, m.conversation_id, c.name, c.type, m.sender_id, "
            "COALESCE(m.sender_name, p.name), m.source_format, m.custodian, m.kind, m.sent_at_us, m.attachments, "
            f"m.edited, m.deleted FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id "
            f"LEFT JOIN participants p ON p.id = m.sender_id WHERE m.id IN ({marks})",
            chunk,
        )
        for row in rows:
            yield _index_doc(row)


def reindex(case: Case, batch: int = BATCH) -> int:
    """Rebuild the index from case.db alone: the index is derived data."""
    from discovery.engines import open_engine

    case.close_engine()
    shutil.rmtree(case.index_dir, ignore_errors=True)
    with case.transaction():
        case.set_meta("index_state", "building (reindex)")
    engine = open_engine(case)
    count = 0
    docs: list[IndexDoc] = []
    for doc in all_index_docs(case):
        docs.append(doc)
        if len(docs) >= batch:
            count += engine.add(docs)
            docs = []
    count += engine.add(docs)
    engine.commit()
    engine.close()
    with case.transaction():
        case.set_meta("index_state", "ok")
    return count


def all_index_docs(case: Case) -> Iterator[IndexDoc]:
    rows = case.db.execute(
        "SELECT m.id, m.text, m.conversation_id, c.name, c.type, m.sender_id, "
        "COALESCE(m.sender_name, p.name), m.source_format, m.custodian, m.kind, m.sent_at_us, m.attachments, "
        "m.edited, m.deleted FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id "
        "LEFT JOIN participants p ON p.id = m.sender_id ORDER BY m.seq"
    )
    for row in rows:
        yield _index_doc(row)


def _index_doc(row) -> IndexDoc:
    attachments = json.loads(row[11])
    names = [a["name"] for a in attachments if a.get("name")]
    return IndexDoc(
        id=row[0], text=row[1], conversation_id=row[2], conversation_name=row[3] or "",
        conversation_type=row[4] or "", sender_id=row[5] or "", sender_name=row[6] or "",
        source_format=row[7], custodian=row[8] or "", kind=row[9], sent_at_us=row[10],
        day=row[10] // 86_400_000_000, has_attachment=bool(attachments), edited=bool(row[12]),
        deleted=bool(row[13]), attachment_names=names,
    )


def _keep_original(case: Case, file: SourceFile) -> str:
    """Copy the source's bytes (the whole zip for a member) under originals/<sha256>, read-only."""
    digest = file.container_sha256 or file.sha256
    target = case.originals_dir / digest[:2] / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        shutil.copyfile(file.path, partial)
        os.replace(partial, target)
        target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return str(target.relative_to(case.folder))


def print_summary(report: IngestReport, out: TextIO | None = None) -> None:
    out = out or sys.stderr
    print(
        f"ingest run {report.run_id}: {report.files} files ({report.unrecognized_files} unrecognised), "
        f"{report.messages_added} messages added, {report.duplicates} duplicates, "
        f"{report.exceptions} exceptions",
        file=out,
    )
    for line in report.errors:
        print(f"  exception: {line}", file=out)
    if report.exceptions > len(report.errors):
        print(f"  ... and {report.exceptions - len(report.errors)} more: see `discovery exceptions`", file=out)
