"""Whether the index holds every message of case.db, and how it is brought back after a run died.

Ingest commits messages to case.db as it goes and the engine commits its index at the end of the
run. A run that dies midway (killed, out of memory, a power cut) leaves case.db ahead of the index:
those messages are in the case but no search finds them, and ingesting the same files again finds
them in case.db already (duplicates) and indexes nothing. So:

- meta ``index_state`` is "ok" only while the index holds every message; a run that writes sets
  "building (...)" first and "ok" when it has committed both;
- meta ``indexed_through_seq``: every message with a ``seq`` up to it was in the index when the
  running ingest began (reindex removes it: it starts from an empty index);
- one writer per case at a time (an exclusive lock on ``<case>/write.lock``, released by the
  system if the process dies), so "building" with the lock free means a run died;
- the next ingest (or ``catch_up``) first indexes every message past the mark, replacing any copy
  the dead run's engine may have committed, or rebuilds the whole index when there is no mark;
- it also closes the record of every ingest run a hard kill left 'running': marked 'interrupted',
  with the messages case.db holds from it, and an entry on the audit trail saying so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator

from discovery.case import Case

OK = "ok"
STATE = "index_state"
MARK = "indexed_through_seq"
LOCK_FILE = "write.lock"
LOCK_WAIT_SECONDS = 10.0  # workers of a run just killed may hold the lock a moment longer


class CaseBusyError(RuntimeError):
    """Another ingest or reindex is writing this case."""


def is_complete(case: Case) -> bool:
    """Whether the index holds every message (a new case, which has no state yet, does)."""
    return case.get_meta(STATE) in (None, OK)


WaitCallback = Callable[[str], None]


@contextlib.contextmanager
def writing(case: Case, waiting: WaitCallback | None = None) -> Iterator[None]:
    """Hold CASE's write lock for the length of an ingest or reindex (re-entrant for one Case).

    WAITING, if given, is called once (with the holder's process id, or "another process") when
    the lock is held by someone else and this waits for it."""
    held = getattr(case, "_write_lock", None)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    path = case.folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, waiting)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        case._write_lock = [fd, 1]  # type: ignore[attr-defined]
        try:
            yield
        finally:
            del case._write_lock  # type: ignore[attr-defined]
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, path: os.PathLike[str] | str, waiting: WaitCallback | None = None) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            if waiting is not None:
                waiting(holder)
                waiting = None  # once
            if time.monotonic() >= deadline:
                raise CaseBusyError(
                    f"another ingest or reindex (process {holder}) is writing this case ({path} is locked); "
                    "wait for it to finish, then try again"
                ) from None
            time.sleep(0.2)


def begin(case: Case, what: str) -> None:
    """Mark the index as being written by WHAT, remembering that it holds every message so far.

    Call with the write lock held and the index complete (``catch_up`` first)."""
    top = case.db.execute("SELECT MAX(seq) FROM messages").fetchone()[0]
    with case.transaction():
        case.set_meta(MARK, str(top or 0))
        case.set_meta(STATE, f"building ({what})")


def begin_rebuild(case: Case) -> None:
    """Mark the index as being rebuilt from nothing: if this dies, only a full rebuild recovers."""
    with case.transaction():
        case.db.execute("DELETE FROM meta WHERE key = ?", (MARK,))
        case.set_meta(STATE, "building (reindex)")


def finish(case: Case) -> None:
    """The index holds every message again (call in the transaction that ends the run)."""
    case.set_meta(STATE, OK)


def catch_up(case: Case, batch: int = 2000, *, current_run: int | None = None, actor: str | None = None) -> int:
    """Bring the index up to case.db after a run that died; returns how many messages were indexed.

    Call with the write lock held. First closes the record of every run a hard kill left 'running'
    (CURRENT_RUN excepted; see ``close_dead_runs``). Nothing more to do when the index is complete."""
    close_dead_runs(case, current_run=current_run, actor=actor)
    if is_complete(case):
        return 0
    mark = case.get_meta(MARK)
    if mark is None:
        from discovery.ingest import reindex

        return reindex(case)
    from discovery.ingest import index_docs

    ids = [row[0] for row in case.db.execute("SELECT id FROM messages WHERE seq > ? ORDER BY seq", (int(mark),))]
    engine = case.engine()
    for start in range(0, len(ids), batch):
        engine.add(list(index_docs(case, ids[start : start + batch])))  # replaces any committed copy
    engine.commit()
    with case.transaction():
        finish(case)
    return len(ids)


INTERRUPTED = "interrupted"
DEAD_RUN_REASON = ("the run ended without finishing (killed, out of memory or a power cut) and left no "
                   "record of its own; found by a later ingest")


def stored_by_run(case: Case, run_id: int) -> tuple[int, int, int]:
    """(messages, sources, exceptions) case.db holds from ingest run RUN_ID."""
    messages = case.db.execute(
        "SELECT COUNT(*) FROM messages WHERE source_id IN (SELECT id FROM sources WHERE run_id = ?)", (run_id,),
    ).fetchone()[0]
    sources = case.db.execute("SELECT COUNT(*) FROM sources WHERE run_id = ?", (run_id,)).fetchone()[0]
    exceptions = case.db.execute("SELECT COUNT(*) FROM exceptions WHERE run_id = ?", (run_id,)).fetchone()[0]
    return int(messages), int(sources), int(exceptions)


def close_dead_runs(case: Case, *, current_run: int | None = None, actor: str | None = None) -> list[int]:
    """Mark every ingest run still 'running' (but CURRENT_RUN) as 'interrupted', with what case.db
    holds from it, and put each on the audit trail. Call with the write lock held: then no run but
    the current one can be alive. Returns the runs closed."""
    from discovery import audit
    from discovery.case import now_utc

    rows = case.db.execute(
        "SELECT id, started_at FROM ingest_runs WHERE status = 'running' AND id IS NOT ? ORDER BY id", (current_run,),
    ).fetchall()
    closed = []
    for run_id, started_at in rows:
        messages, sources, exceptions = stored_by_run(case, run_id)
        with case.transaction() as db:
            db.execute(
                "UPDATE ingest_runs SET status = ?, messages_added = ?, files = ?, exceptions = ? "
                "WHERE id = ? AND status = 'running'",
                (INTERRUPTED, messages, sources, exceptions, run_id),
            )
        audit.record(case, "ingest", {
            "run_id": run_id, "started_at": started_at, "status": INTERRUPTED, "messages_added": messages,
            "files": sources, "exceptions": exceptions, "reason": DEAD_RUN_REASON, "recorded_at": now_utc(),
        }, actor=actor, outcome="error")
        closed.append(run_id)
    return closed
