"""Ingest: source files in, messages into case.db and the index, every problem recorded.

The flow per run: expand each path into source files (folders, zips), hash each file over its
exact bytes, keep a read-only copy by hash, let the content-sniffing auction pick an adapter per
file, stream the adapters' messages into case.db in batches (deduplicated by stable id), and
index each batch. A bad record or file becomes a row in `exceptions` naming the file and the
record; the rest still goes in. Nothing is dropped silently: the report counts everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import sqlite3
import stat
import sys
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from discovery import __version__, audit, index_state
from discovery.analysis import carry_tokens, remembering_tokens
from discovery.case import Case, now_utc, rows_in
from discovery.engine import IndexDoc
from discovery.model import Message, SourceError, iso_utc
from discovery.processes import may_fork
from discovery.sources import adapters, detect, get_adapter
from discovery.sources.base import Adapter, ParseOptions
from discovery.sources.files import HASH_CHUNK, SourceFile, close_archives, expand, sha256_file
from discovery.storage import is_disk_full, is_inside, printable

BATCH = 2000
# Messages per case.db transaction. Each batch is still all-or-nothing (a savepoint), but committing
# every batch rewrote every page of the id-keyed indexes a batch touched, through the WAL and again
# at the checkpoint: 3 GB written for a 260 MB case.db at 200,000 messages.
COMMIT_EVERY = 20_000


@dataclass
class IngestReport:
    run_id: int
    files: int = 0
    unrecognized_files: int = 0
    messages_added: int = 0
    duplicates: int = 0
    exceptions: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, for the summary
    index_caught_up: int = 0  # messages an earlier run committed but died before indexing, indexed first

    @property
    def exit_code(self) -> int:
        return 3 if self.exceptions else 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


ProgressCallback = Callable[[int], None]


class IngestRefused(ValueError):
    """Ingest was not started: what it was pointed at cannot be ingested (nothing was written)."""


@dataclass
class EndedRun:
    """What an ingest that could not finish left: its report (counts as case.db holds them) and why.

    Attached as ``ingest_run`` to the exception ``ingest`` raises then (see ``ended_run``)."""

    report: IngestReport
    reason: str
    interrupted: bool  # by the user or the system (Ctrl-C, SIGTERM), not by an error

    def summary(self) -> str:
        how = f"interrupted ({self.reason}):" if self.interrupted else f"stopped: {self.reason};"
        return (f"ingest run {self.report.run_id} {how} {self.report.messages_added} messages stored; run "
                "`discovery ingest` again to finish indexing them (and to read what was not)")


def ended_run(error: BaseException) -> EndedRun | None:
    """The run an exception raised by ``ingest`` ended (None if it was not raised so)."""
    return getattr(error, "ingest_run", None)


class IngestInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C, SIGTERM): recorded as 'interrupted', what it stored kept."""

    def __init__(self, ended: EndedRun):
        super().__init__(ended.reason)
        self.ingest_run = ended


def check_paths(case_folder: str | os.PathLike[str], paths: Iterable[str]) -> None:
    """Refuse (IngestRefused) a path that is the case folder, is inside it, or holds it."""
    case = Path(case_folder).resolve()
    for path in paths:
        if is_inside(path, case):
            raise IngestRefused(f"{printable(path)} is inside the case folder {printable(case)}: point ingest at "
                                "the export, not at the case")
        if is_inside(case, path):
            raise IngestRefused(f"{printable(path)} holds the case folder {printable(case)}: ingesting it would "
                                "read the case itself; point ingest at the export, or keep the case elsewhere")


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
    waiting: index_state.WaitCallback | None = None,
) -> IngestReport:
    """Ingest every file under PATHS into CASE; see the module docstring. ACTOR goes on the audit trail.

    A path that is (or is in, or holds) the case folder is refused first (IngestRefused). WAITING is
    called once if another ingest or reindex holds the case (see ``index_state.writing``).

    A run that cannot finish keeps what it wrote whole to case.db, leaves the index marked incomplete
    (the next ingest indexes it), is recorded as 'interrupted' with what case.db holds from it and put
    on the audit trail; then it raises IngestInterrupted (on KeyboardInterrupt; a KeyboardInterrupt
    itself) or the error itself (a full disk: sqlite3.Error, OSError), ``ended_run(error)`` giving
    that report. It never waits on the engine (its workers may be dead).
    """
    paths = list(paths)
    check_paths(case.folder, paths)
    forced = None if format == "auto" else get_adapter(format)
    with index_state.writing(case, waiting):
        # A run that died left messages unindexed (and maybe its record open): index them first.
        recovered = index_state.catch_up(case, actor=actor)
        run_id = _start_run(case, paths, custodian, format, copy_originals, options)
        report = IngestReport(run_id=run_id, index_caught_up=recovered)
        try:
            index_state.begin(case, f"ingest run {run_id}")
            # Parsing workers tokenize messages ahead for an engine that takes tokens computed before.
            pretokenize = bool(getattr(case.engine(), "remembers_tokens", False))
            with case.bulk_writes(), case.deferred_message_indexes(), remembering_tokens(pretokenize):
                writer = _MessageWriter(case, run_id, custodian, report)
                try:
                    _ingest_paths(case, paths, forced, copy_originals, options, progress, writer)
                except BaseException:
                    writer.salvage()
                    raise
            close_archives()
            case.engine().commit()
            _finish_run(case, report)
        except BaseException as error:
            _run_failed(case, report, paths, custodian, actor, error)  # raises
    audit.record(case, "ingest", {"paths": [printable(p) for p in paths], "custodian": custodian,
                                  **report.to_dict()}, actor=actor, outcome="partial" if report.exceptions else "ok")
    return report


def _reason(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return str(error) or "Ctrl-C"
    if isinstance(error, SystemExit):
        return f"the process was told to exit ({error.code})"
    text = f"{type(error).__name__}: {error}"
    if is_disk_full(error):
        text += " (is the disk full?)"
    return text


def _run_failed(case: Case, report: IngestReport, paths: list[str], custodian: str | None, actor: str | None,
                error: BaseException) -> None:
    """The run cannot finish (ERROR): salvage() has committed what was written whole. Drop the engine's
    uncommitted work without waiting on it, record the run as 'interrupted' with what case.db holds
    from it, put it on the audit trail, and raise IngestInterrupted (from a KeyboardInterrupt) or ERROR,
    with the EndedRun as its ``ingest_run``.
    Each step is best effort: the one that fails (a full disk, another Ctrl-C) leaves the rest."""
    reason = _reason(error)
    for step in (close_archives, lambda: _abandon_engine(case),
                 lambda: _record_interrupted(case, report, reason),
                 lambda: audit.record(case, "ingest", {
                     "paths": [printable(p) for p in paths], "custodian": custodian, **report.to_dict(),
                     "status": index_state.INTERRUPTED, "reason": reason}, actor=actor, outcome="error")):
        try:
            step()
        except BaseException:  # noqa: BLE001, S112 - ERROR is what the caller must see; the next ingest closes the run
            continue
    ended = EndedRun(report, reason, interrupted=isinstance(error, KeyboardInterrupt))
    if isinstance(error, KeyboardInterrupt) and not isinstance(error, IngestInterrupted):
        raise IngestInterrupted(ended) from error
    with contextlib.suppress(AttributeError, TypeError):  # (an exception type without a __dict__)
        error.ingest_run = ended  # type: ignore[attr-defined]
    raise error


def _record_interrupted(case: Case, report: IngestReport, reason: str) -> None:
    if case.db.in_transaction:
        case.db.rollback()  # salvage() committed what was whole; the rest never happened
    report.messages_added, report.files, report.exceptions = index_state.stored_by_run(case, report.run_id)
    with case.transaction() as db:
        db.execute(
            "UPDATE ingest_runs SET finished_at=?, files=?, messages_added=?, duplicates=?, exceptions=?, "
            "status=? WHERE id=?",
            (now_utc(), report.files, report.messages_added, report.duplicates, report.exceptions,
             index_state.INTERRUPTED, report.run_id),
        )


def _abandon_engine(case: Case) -> None:
    """Forget the engine's uncommitted writes without committing or waiting on them: its worker
    processes may be dead (Ctrl-C reaches the whole process group) or alive and waiting for work
    that will never come. The index stays marked incomplete; the next ingest catches it up."""
    engine, case._engine = case._engine, None
    if engine is not None:
        engine.cancel()  # discards, stops its workers and releases its lock without waiting on them


def _ingest_paths(case: Case, paths: list[str], forced: Adapter | None, copy_originals: bool,
                  options: ParseOptions | None, progress: ProgressCallback | None, writer: _MessageWriter) -> None:
    report = writer.report
    for path in paths:
        groups: dict[str, tuple[Adapter, list[SourceFile]]] = {}
        items = list(expand(path))
        sniffed = {} if forced else _sniff_ahead(items)
        for index, item in enumerate(items):
            if isinstance(item, SourceError):
                writer.exception(item.path or path, item.locator or None, "", str(item))
                continue
            if is_inside(item.path, case.folder):
                writer.exception(item.path, item.member, "", "this file belongs to the case folder itself; "
                                 "it was not ingested (point ingest at the export, not at the case)")
                continue
            report.files += 1
            try:
                writer.stats[id(item)] = _stat(item.path)  # before hashing: a change while hashing shows
                item.hash()
            except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as error:
                writer.exception(item.path, item.member, "", f"cannot read this file's bytes: {error}")
                continue
            adapter = forced or (sniffed[index] if index in sniffed else detect(item)[0])
            source_id = writer.add_source(item, adapter, copy_originals)
            if source_id in writer.changed:
                continue  # recorded: it changed between hashing and copying, and is not parsed
            if adapter is None:
                report.unrecognized_files += 1
                writer.exception(
                    item.path, item.member, "", f"{item.note + ': ' if item.note else ''}no adapter recognised "
                    "this file's content; it was kept as a source but no messages were read from it (use "
                    "--format to force one)", source_id=source_id,
                )
                continue
            groups.setdefault(adapter.name, (adapter, []))[1].append(item)
            if progress:
                progress(item.size)
        for adapter, files in groups.values():
            _parse_group(adapter, files, writer, options or ParseOptions())
            _check_unchanged(files, writer)
    writer.flush(final=True)


def _stat(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


def _check_unchanged(files: list[SourceFile], writer: _MessageWriter) -> None:
    """After FILES were parsed: a file (a zip, for members) whose size or mtime is not what it was
    when it was hashed is hashed again; if its bytes differ, its messages were read from bytes the
    recorded SHA-256 does not cover, and an exception says so (one stat per file otherwise)."""
    now: dict[str, tuple[int, int] | OSError] = {}
    verdict: dict[str, str | None] = {}
    for file in files:
        before = writer.stats.get(id(file))
        if before is None:
            continue
        if file.path not in now:
            try:
                now[file.path] = _stat(file.path)
            except OSError as error:
                now[file.path] = error
        after = now[file.path]
        if after == before:
            continue
        if file.path not in verdict:
            verdict[file.path] = _changed(file, after)
        problem = verdict[file.path]
        if problem:
            writer.exception(file.path, file.member, "", problem, source_id=writer.source_ids.get(id(file)))


def _changed(file: SourceFile, after: tuple[int, int] | OSError) -> str | None:
    """Why FILE's messages cannot be trusted to come from the bytes recorded, or None if they can."""
    recorded = file.container_sha256 or file.sha256
    what = "the zip holding this file" if file.container_sha256 else "this file"
    if isinstance(after, OSError):
        return (f"{what} was removed or became unreadable while it was being ingested ({after}): it cannot be "
                f"checked that its messages were read from the bytes of the recorded SHA-256 {recorded}; "
                "re-ingest it from a copy that does not change")
    try:
        current = sha256_file(file.path)
    except OSError as error:
        return _changed(file, error)
    if current == recorded:
        return None  # touched, but the same bytes
    return (f"{what} changed while it was being ingested: its messages were read from bytes that differ from "
            f"the recorded SHA-256 {recorded} (now {current}); they must be re-ingested from a copy that does "
            "not change")


# Sniffing a file runs every adapter's sniffer over its first 64 KiB (milliseconds a file), before
# anything else can start; with this many files or more, they are sniffed by a pool of processes.
SNIFF_POOL_MIN_FILES = 64


def _sniff_ahead(items: list[SourceFile | SourceError]) -> dict[int, Adapter | None]:
    """``detect(item)[0]`` for the source files among ITEMS (by index), sniffed in parallel.

    Sniffing reads the file and nothing else, so a worker gets the same answer; a file a worker
    could not sniff is left out, and ingest sniffs it itself (and meets the same error there). If
    a worker dies (killed, out of memory), nothing is sniffed ahead: ingest sniffs every file itself.
    """
    files = [(index, item) for index, item in enumerate(items) if isinstance(item, SourceFile)]
    workers = min(os.cpu_count() or 1, 4)
    if len(files) < SNIFF_POOL_MIN_FILES or workers < 2 or not may_fork():
        return {}
    by_name = {adapter.name: adapter for adapter in adapters()}
    # Each worker starts with no zip open (forked, it would share this process's file offsets).
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=close_archives) as pool:
            answers = list(pool.map(_sniff_one, [item for _, item in files], chunksize=16))
    except BrokenProcessPool:
        return {}
    found = {}
    for (index, item), (ok, name, note) in zip(files, answers, strict=True):
        if ok:
            found[index] = by_name[name] if name else None
            item.note = item.note or note  # what the worker's sniffing noted about the file (SourceFile.note)
    return found


def _sniff_one(item: SourceFile) -> tuple[bool, str | None, str | None]:
    try:
        adapter = detect(item)[0]
    except Exception:  # noqa: BLE001 - ingest sniffs this one again itself, and records what happens
        return False, None, None
    return True, adapter.name if adapter else None, item.note


def _name_direct_messages(db: sqlite3.Connection) -> None:
    """A DM has no name in most exports: call it after the people in it, "DM: A ↔ B"."""
    db.execute(
        "UPDATE conversations SET name = (SELECT 'DM: ' || group_concat(who, ' ↔ ') FROM ("
        "  SELECT COALESCE(p.name, p.id) AS who FROM conversation_members cm JOIN participants p"
        "  ON p.id = cm.participant_id WHERE cm.conversation_id = conversations.id ORDER BY who)) "
        "WHERE type = 'dm' AND (name IS NULL OR name = '')"
    )


def _parse_group(adapter: Adapter, files: list[SourceFile], writer: _MessageWriter, options: ParseOptions) -> None:
    """Feed one adapter's files through; an adapter bug is recorded, never allowed to stop the run.

    Only what the adapter raises is recorded so: an error writing what it read (case.db, originals/,
    the index: a full disk) ends the run (see ``ingest``)."""
    current: SourceFile | None = None
    parsed_items = iter(adapter.parse(files, options))
    while True:
        try:
            file, parsed = next(parsed_items)
        except StopIteration:
            return
        except OSError as error:  # reading the export failed (removed, unreadable, an I/O error)
            named = os.fsdecode(error.filename) if error.filename is not None else None
            where = next((f for f in files if f.path == named), None) or current or files[0]
            writer.exception(where.path, where.member, "",
                             f"the {adapter.name} adapter could not read its files ({type(error).__name__}: "
                             f"{error}); messages after this point in them (these {len(files)} files) were not "
                             "read", source_id=writer.source_ids.get(id(where)))
            return
        except Exception as error:  # noqa: BLE001 - recorded with its type; the run goes on
            where = current or files[0]
            writer.exception(where.path, where.member, "",
                             f"the {adapter.name} adapter failed ({type(error).__name__}: {error}); messages "
                             "after this point in these files were not read: please report this as a bug",
                             source_id=writer.source_ids.get(id(where)))
            return
        current = file
        if isinstance(parsed, SourceError):
            writer.exception(file.path, file.member, parsed.locator, str(parsed), parsed.raw,
                             source_id=writer.source_ids[id(file)])
        else:
            writer.add(file, parsed)


def _start_run(case: Case, paths: list[str], custodian: str | None, fmt: str, copy: bool,
               options: ParseOptions | None) -> int:
    arguments = {"paths": [printable(path) for path in paths], "custodian": custodian, "format": fmt,
                 "copy_originals": copy, "timezone": options.timezone if options else None,
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
        index_state.finish(case)
        db.execute(
            "UPDATE ingest_runs SET finished_at=?, files=?, messages_added=?, duplicates=?, exceptions=?, "
            "status=? WHERE id=?",
            (now_utc(), report.files, report.messages_added, report.duplicates, report.exceptions, status,
             report.run_id),
        )


class _MessageWriter:
    """Buffers parsed messages and writes them to case.db and the engine a batch at a time.

    A batch is written inside a savepoint (all of it or none of it, as a transaction of its own
    would be), and case.db commits every COMMIT_EVERY messages. The engine is given a batch's
    documents (as reading them back from case.db when the batch is written would give them: see
    ``_batch_docs``) only once they are committed, so the index can never hold a message case.db
    does not.
    """

    def __init__(self, case: Case, run_id: int, custodian: str | None, report: IngestReport):
        self.case = case
        self.run_id = run_id
        self.custodian = custodian
        self.report = report
        self.engine = case.engine()
        self.pending: list[tuple[int, Message]] = []
        self.source_ids: dict[int, int] = {}  # id(SourceFile) -> sources.id
        self.source_counts: dict[int, int] = defaultdict(int)
        self.uncommitted = 0  # messages written since the last commit
        self.unindexed: list[IndexDoc] = []  # their documents, for the engine once committed
        self.stats: dict[int, tuple[int, int]] = {}  # id(SourceFile) -> (size, mtime_ns) when hashed
        self.changed: set[int] = set()  # sources.id of files that changed before they were copied
        self.source_files: dict[int, SourceFile] = {}  # sources.id -> its file

    def add_source(self, file: SourceFile, adapter: Adapter | None, copy: bool) -> int:
        """Record FILE as a source (and keep its original); a file whose copy is not the bytes hashed
        is recorded with an exception, its id put in ``changed``, and must not be parsed."""
        # Written in the run's open transaction, not committed one by one (a commit per file cost
        # ~1 ms: 4,000 files, 4 s): if copying the original fails, ingest's salvage() still commits
        # what was written before it, as the commit per file did.
        original, problem = None, None
        if copy:
            try:
                original = _keep_original(self.case, file)
            except _ChangedError as error:
                problem = str(error)
        cursor = self.case.db.execute(
            "INSERT INTO sources(run_id, path, member, size, sha256, container_sha256, format, custodian, "
            "limits, original, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (self.run_id, printable(file.path), file.member, file.size, file.sha256, file.container_sha256,
             adapter.name if adapter else None, self.custodian, adapter.limits if adapter else None,
             original, now_utc()),
        )
        source_id = int(cursor.lastrowid or 0)
        self.source_ids[id(file)] = source_id
        self.source_files[source_id] = file
        if problem:
            self.changed.add(source_id)
            self.exception(file.path, file.member, "", problem, source_id=source_id)
        return source_id

    def exception(self, path: str, member: str | None, locator: str, error: str, raw: str | None = None,
                  source_id: int | None = None) -> None:
        self.report.exceptions += 1
        path, member, locator, error, raw = (_storable(text) for text in (path, member, locator, error, raw))
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

    def flush(self, final: bool = False) -> None:
        """Write the pending batch (all or nothing); commit every COMMIT_EVERY messages, or if FINAL.

        A batch holding a record that cannot be stored (text SQLite refuses, such as a lone UTF-16
        surrogate a JSON escape produced) is written again a message at a time: each such record
        becomes an exception naming its file and locator, and the rest go in. An error of the case
        itself (sqlite3.OperationalError: a full disk) is raised: it ends the run."""
        batch, self.pending = self.pending, []
        if batch:
            try:
                self._write(batch)
            except UNSTORABLE:
                for one in batch:
                    try:
                        self._write([one])
                    except UNSTORABLE as error:
                        self._unstorable(*one, error)
        if final or self.uncommitted >= COMMIT_EVERY:
            self.commit()

    def _write(self, batch: list[tuple[int, Message]]) -> None:
        db = self.case.db
        if not db.in_transaction:
            db.execute("BEGIN")
        db.execute("SAVEPOINT ingest_batch")
        counted = self.report.messages_added, self.report.duplicates
        try:
            rows, fresh = self._write_batch(db, batch)
            for source_id, count in self.source_counts.items():
                db.execute("UPDATE sources SET messages = messages + ? WHERE id = ?", (count, source_id))
            docs = _batch_docs(db, rows, fresh)
        except BaseException:
            self.report.messages_added, self.report.duplicates = counted  # none of it was written
            db.execute("ROLLBACK TO ingest_batch")
            db.execute("RELEASE ingest_batch")
            raise
        finally:
            self.source_counts.clear()
        db.execute("RELEASE ingest_batch")
        self.unindexed.extend(docs)
        self.uncommitted += len(batch)

    def _unstorable(self, source_id: int, message: Message, error: BaseException) -> None:
        file = self.source_files[source_id]
        self.exception(file.path, file.member, message.locator,
                       f"this record could not be stored ({type(error).__name__}: {error}); it was not ingested",
                       message.raw, source_id=source_id)

    def salvage(self) -> None:
        """The run is failing: commit to case.db the batches written whole so far, as a commit per
        batch would have. Nothing is given to the engine (its workers may be dead: after Ctrl-C or a
        full disk, waiting on them could hang forever): the index stays marked incomplete, and the
        next ingest catches it up (see discovery.index_state)."""
        self.pending, self.unindexed = [], []
        with contextlib.suppress(Exception):  # the failure itself is what the caller must see
            if self.case.db.in_transaction:
                self.case.db.commit()

    def commit(self) -> None:
        """Commit case.db, then give the engine the documents just committed."""
        if self.case.db.in_transaction:
            self.case.db.commit()
        self.uncommitted = 0
        docs, self.unindexed = self.unindexed, []
        if docs:
            # Every id here is new to case.db, so new to the index too (written after case.db):
            # an engine that can skip looking for copies to replace is told so.
            add = getattr(self.engine, "add_new", self.engine.add)
            add(docs)

    def _write_batch(self, db, batch: list[tuple[int, Message]]) -> tuple[list[tuple], list[Message]]:
        """Write BATCH's new messages (and what they say about conversations and people); returns
        the rows written and their messages, in the same order."""
        keys = [message.key() for _, message in batch]
        existing = _existing(db, keys)
        fresh: list[tuple[str, int, Message]] = []
        for (source_id, message), key in zip(batch, keys, strict=False):
            if key in existing:
                self._record_duplicate(db, key, source_id, message, existing[key])
                continue
            existing[key] = (source_id, message.locator, message.raw)
            fresh.append((key, source_id, message))
            self.source_counts[source_id] += 1
        messages = [message for _, _, message in fresh]
        _upsert_directory(db, messages)
        custodian = self.custodian
        rows = [_message_row(m, s, custodian, k) for k, s, m in fresh]
        db.executemany(INSERT_MESSAGE, rows)
        self.report.messages_added += len(fresh)
        return rows, messages

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



# What a record that cannot be stored raises (not the case: sqlite3.OperationalError is a full disk).
UNSTORABLE = (ValueError, TypeError, OverflowError, sqlite3.IntegrityError, sqlite3.InterfaceError,
              sqlite3.DataError)


def _storable(text: str | None) -> str | None:
    """TEXT as SQLite can store it (UTF-8): see ``printable``."""
    return None if text is None else printable(text)


def _existing(db, keys: list[str]) -> dict[str, tuple[int, str, str]]:
    rows = rows_in(db, "SELECT id, source_id, locator, raw FROM messages WHERE id IN", list(dict.fromkeys(keys)))
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _same_bytes_again(db, kept_source: int, source_id: int) -> bool:
    if kept_source == source_id:
        return False  # a record repeated inside one file is a real second occurrence
    rows = db.execute(
        "SELECT sha256, member FROM sources WHERE id IN (?, ?)", (kept_source, source_id)
    ).fetchall()
    return len(rows) == 2 and rows[0][0] == rows[1][0]


def _upsert_directory(db, messages: list[Message]) -> None:
    """What MESSAGES say about their conversations and people, as one statement per table.

    Folded in memory first, with the same rules the upserts apply one message at a time, so the
    rows end exactly as they would have after one upsert per message: a conversation takes the
    last non-NULL name and type given; a person keeps the first name, and a kind that is NULL or
    'unknown' takes the first later one that is not NULL.
    """
    conversations: dict[str, list] = {}
    people: dict[str, list] = {}
    members: dict[tuple[str, str], None] = {}
    for message in messages:
        conversation_id = message.conversation_id
        row = conversations.get(conversation_id)
        if row is None:
            conversations[conversation_id] = [conversation_id, message.source_format,
                                              message.conversation_name, message.conversation_type]
        else:
            if message.conversation_name is not None:
                row[2] = message.conversation_name
            if message.conversation_type is not None:
                row[3] = message.conversation_type
        sender_id = message.sender_id
        if sender_id:
            _fold_person(people, sender_id, message.sender_name, message.sender_kind)
            members[(conversation_id, sender_id)] = None
        for mention in message.mentions:
            if mention.id:
                _fold_person(people, mention.id, mention.name, None)
                members[(conversation_id, mention.id)] = None
    if conversations:
        db.executemany(
            "INSERT INTO conversations(id, source_format, name, type) VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE "
            "SET name = COALESCE(excluded.name, name), type = COALESCE(excluded.type, type)",
            list(conversations.values()),
        )
    if people:
        db.executemany(
            "INSERT INTO participants(id, name, kind) VALUES (?,?,?) ON CONFLICT(id) DO UPDATE SET "
            "name = COALESCE(name, excluded.name), "
            "kind = CASE WHEN kind IS NULL OR kind = 'unknown' THEN COALESCE(excluded.kind, kind) ELSE kind END",
            list(people.values()),
        )
    if members:
        db.executemany("INSERT OR IGNORE INTO conversation_members(conversation_id, participant_id) VALUES (?,?)",
                       list(members))


def _fold_person(people: dict[str, list], person_id: str, name: str | None, kind: str | None) -> None:
    """Fold one more (name, kind) sighting of a person into the batch's row for them (see above)."""
    row = people.get(person_id)
    if row is None:
        people[person_id] = [person_id, name, kind]
        return
    if row[1] is None:
        row[1] = name
    if kind is not None and (row[2] is None or row[2] == "unknown"):
        row[2] = kind


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


def _message_row(message: Message, source_id: int, custodian: str | None, key: str) -> tuple[object, ...]:
    sent = message.sent_at.astimezone(UTC)
    return (
        key, message.native_id, message.source_format, message.conversation_id, stream_of(message),
        message.thread_id, message.reply_to, message.bundle_id, message.sender_id, message.sender_name,
        message.sender_kind, iso_utc(sent), _epoch_us(sent), message.sent_at_raw, message.tz_assumption,
        int(message.edited), iso_utc(message.edited_at) if message.edited_at else None, int(message.deleted),
        message.kind, message.text, _json_list(message.mentions), _json_list(message.attachments),
        _json_list(message.reactions), custodian, source_id, message.locator, message.raw,
    )


def _json_list(items: list) -> str:
    """``json.dumps`` of a list of dataclasses as ``Message.to_dict`` has it (without copying the message)."""
    if not items:
        return "[]"
    return json.dumps([asdict(item) for item in items], ensure_ascii=False)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_MICROSECOND = timedelta(microseconds=1)


def _epoch_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _batch_docs(db, rows: list[tuple], messages: list[Message]) -> list[IndexDoc]:
    """The engine's documents for the message ROWS just written (MESSAGES: theirs, in order).

    Exactly what ``index_docs`` would read back from case.db at this point, without reading the
    messages back: their columns are the values just bound (and SQLite returns text and integers
    as bound), and what the joins add comes from the conversations and participants as they
    stand now, asked for once per conversation and person of the batch.
    """
    conversations: dict[str, tuple[str | None, str | None]] = {
        conversation_id: (name, kind) for conversation_id, name, kind in rows_in(
            db, "SELECT id, name, type FROM conversations WHERE id IN", list(dict.fromkeys(row[3] for row in rows)))
    }
    wanted = dict.fromkeys(row[8] for row in rows if row[9] is None and row[8] is not None)
    people: dict[str, str | None] = dict(rows_in(db, "SELECT id, name FROM participants WHERE id IN", list(wanted)))
    docs = []
    nothing = (None, None)
    for row, message in zip(rows, messages, strict=True):
        conversation_name, conversation_type = conversations.get(row[3], nothing)
        sender_name = row[9] if row[9] is not None else people.get(row[8])
        attachments = message.attachments
        doc = IndexDoc(
            id=row[0], text=row[19], conversation_id=row[3], conversation_name=conversation_name or "",
            conversation_type=conversation_type or "", sender_id=row[8] or "", sender_name=sender_name or "",
            source_format=row[2], custodian=row[23] or "", kind=row[18], sent_at_us=row[12],
            day=row[12] // 86_400_000_000, has_attachment=bool(attachments), edited=bool(row[15]),
            deleted=bool(row[17]), attachment_names=[a.name for a in attachments if a.name],
        )
        carry_tokens(message, doc)  # tokens a parsing worker computed already, if it did
        docs.append(doc)
    return docs


# What an index document is built from (_index_doc): a message with its conversation's and sender's names.
INDEX_DOC_SELECT = (
    "SELECT m.id, m.text, m.conversation_id, c.name, c.type, m.sender_id, "
    "COALESCE(m.sender_name, p.name), m.source_format, m.custodian, m.kind, m.sent_at_us, m.attachments, "
    "m.edited, m.deleted FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id "
    "LEFT JOIN participants p ON p.id = m.sender_id"
)


def index_docs(case: Case, ids: list[str]) -> Iterator[IndexDoc]:
    """Build the engine's documents from case.db, the single source of truth (reindex uses this too)."""
    for row in rows_in(case.db, f"{INDEX_DOC_SELECT} WHERE m.id IN", ids):
        yield _index_doc(row)


def reindex(case: Case, batch: int = BATCH) -> int:
    """Rebuild the index from case.db alone: the index is derived data."""
    from discovery.engines import open_engine

    with index_state.writing(case):
        case.close_engine()
        index_state.begin_rebuild(case)
        shutil.rmtree(case.index_dir, ignore_errors=True)
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
            index_state.finish(case)
    return count


def all_index_docs(case: Case) -> Iterator[IndexDoc]:
    for row in case.db.execute(f"{INDEX_DOC_SELECT} ORDER BY m.seq"):
        yield _index_doc(row)



def _index_doc(row) -> IndexDoc:
    attachments = [] if row[11] == "[]" else json.loads(row[11])
    names = [a["name"] for a in attachments if a.get("name")]
    return IndexDoc(
        id=row[0], text=row[1], conversation_id=row[2], conversation_name=row[3] or "",
        conversation_type=row[4] or "", sender_id=row[5] or "", sender_name=row[6] or "",
        source_format=row[7], custodian=row[8] or "", kind=row[9], sent_at_us=row[10],
        day=row[10] // 86_400_000_000, has_attachment=bool(attachments), edited=bool(row[12]),
        deleted=bool(row[13]), attachment_names=names,
    )


class _ChangedError(Exception):
    """A source's bytes are not those hashed: it changed while it was being ingested."""


def _keep_original(case: Case, file: SourceFile) -> str:
    """Copy the source's bytes (the whole zip for a member) under originals/<sha256>, read-only,
    hashing what is copied: bytes that are not those hashed before raise _ChangedError (no copy kept)."""
    digest = file.container_sha256 or file.sha256
    target = case.originals_dir / digest[:2] / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        copied = hashlib.sha256()
        what = "the zip holding this file" if file.container_sha256 else "this file"
        try:
            with open(partial, "wb") as out:  # an error writing the case ends the run (not this file's fault)
                try:
                    source = open(file.path, "rb")  # noqa: SIM115 - closed below
                except OSError as error:
                    raise _ChangedError(f"{what} was removed or became unreadable after it was hashed ({error}); "
                                        "it was not parsed (no messages read from it)") from error
                with source:
                    while True:
                        try:
                            chunk = source.read(HASH_CHUNK)
                        except OSError as error:
                            raise _ChangedError(f"{what} could not be read again after it was hashed ({error}); "
                                                "it was not parsed (no messages read from it)") from error
                        if not chunk:
                            break
                        copied.update(chunk)
                        out.write(chunk)
            if copied.hexdigest() != digest:
                raise _ChangedError(
                    f"{what} changed while it was being ingested: it was hashed as SHA-256 {digest}, then read "
                    f"as {copied.hexdigest()}; it was not parsed (no messages read from it): ingest it again "
                    "from a copy that does not change")
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
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
    if report.index_caught_up:
        print(f"  first indexed {report.index_caught_up} messages an interrupted earlier run had stored "
              "but not indexed", file=out)
    for line in report.errors:
        print(f"  exception: {line}", file=out)
    if report.exceptions > len(report.errors):
        print(f"  ... and {report.exceptions - len(report.errors)} more: see `discovery exceptions`", file=out)
