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
  the dead run's engine may have committed, or rebuilds the whole index when there is no mark.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

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


@contextlib.contextmanager
def writing(case: Case) -> Iterator[None]:
    """Hold CASE's write lock for the length of an ingest or reindex (re-entrant for one Case)."""
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
        _acquire(fd, path)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        case._write_lock = [fd, 1]  # type: ignore[attr-defined]
        try:
            yield
        finally:
            del case._write_lock  # type: ignore[attr-defined]
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, path: os.PathLike[str] | str) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
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


def catch_up(case: Case, batch: int = 2000) -> int:
    """Bring the index up to case.db after a run that died; returns how many messages were indexed.

    Call with the write lock held. Nothing to do when the index is complete."""
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
