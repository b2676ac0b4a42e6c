"""Half of an export's writing done in a worker process, for a large export.

Building the RSMF files (manifest JSON, inner zip, MIME message, three hashes) and writing
messages.jsonl and transcript.html is over half of an export's work, and needs nothing but the
documents, in order, and a few directory facts. So for an export of at least PARALLEL_FROM messages,
each document goes to one worker process, which writes those files, while this process reads
case.db, numbers the documents and writes messages.csv and loadfile.dat; with a second core (or a
share of one, on a busy machine) that cuts the export's time by about a third. Smaller exports do all
of it here: starting a process would cost more than it saves.

The worker is forked (where the platform can): ``spawn`` and ``forkserver`` would run the calling
script's top level again in the child, which breaks any script that exports without an
``if __name__ == "__main__"`` guard. The child inherits the open case.db connection but never uses
it (SQLite's rule for fork): everything it needs arrives with each document, and it only computes
and writes files under the staging folder. Only the main thread forks
(:func:`discovery.processes.may_fork`): web exports, made on a server thread, stay in one process.

Same files either way (a test compares the two): the worker runs the same
:func:`discovery.export.rsmf.write_document`, and :class:`Directory` answers the two questions a
document asks its Selection (a conversation's members, the participants' directory entries) from a
copy made here, in the selection's snapshot. Memory stays bounded: at most IN_FLIGHT documents are
with the worker at once, and load-file rows are written in document order as each one comes back.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from discovery.export.html import HtmlWriter
from discovery.export.jsonl import JsonlWriter
from discovery.export.rsmf import write_document
from discovery.export.select import Selection
from discovery.export.slices import Document, zone
from discovery.processes import may_fork

PARALLEL_FROM = 20_000  # messages
IN_FLIGHT = 2  # documents handed to the worker and not yet written back


class Directory:
    """A document's members and participant entries, copied from the Selection (picklable)."""

    def __init__(self, conversation_id: str, members: list[str], entries: dict[str, dict[str, Any]]):
        self.conversation_id = conversation_id
        self._members = members
        self._entries = entries

    @classmethod
    def of(cls, doc: Document, selection: Selection) -> Directory:
        """Every directory fact building DOC can ask for: its members, senders and reacting users."""
        members = selection.members(doc.conversation_id)
        ids = set(members)
        for message in doc.messages:
            if message["sender_id"]:
                ids.add(message["sender_id"])
            for reaction in message["reactions"]:
                ids.update(str(user) for user in reaction.get("users") or [] if user)
        return cls(doc.conversation_id, members, selection.participants(ids))

    def members(self, conversation_id: str) -> list[str]:
        assert conversation_id == self.conversation_id
        return list(self._members)

    def participants(self, ids: Any) -> dict[str, dict[str, Any]]:
        return {pid: dict(self._entries[pid]) for pid in sorted(set(ids)) if pid in self._entries}


class DocumentWriter:
    """For each document, in order: its messages' lines of messages.jsonl and transcript.html, then its
    RSMF files. Lives in the worker process when there is one (so those files are written there)."""

    def __init__(self, folder: Path, about: dict[str, Any], conversations: list[Any], tz: ZoneInfo):
        self.folder = folder
        self.tz = tz
        self.streams = [JsonlWriter(folder), HtmlWriter(folder, about, conversations, tz)]

    def write(self, doc: Document, directory: Any) -> dict[str, Any]:
        for message in doc.messages:
            for stream in self.streams:
                stream.add(message)
        return write_document(self.folder, doc, directory, self.tz)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()


_worker: DocumentWriter | None = None  # the worker process's own DocumentWriter


def _open_in_worker(folder: str, about: dict[str, Any], conversations: list[Any], tz_name: str) -> None:
    global _worker
    _worker = DocumentWriter(Path(folder), about, conversations, zone(tz_name))


def _write_in_worker(doc: Document, directory: Directory) -> dict[str, Any]:
    assert _worker is not None
    return _worker.write(doc, directory)


def _close_in_worker() -> None:
    assert _worker is not None
    _worker.close()


class Documents:
    """Hands each document to a DocumentWriter, here or in the worker (see the module docstring).

    :meth:`add` takes documents in order and returns those finished so far, in the same order, each
    with what the DAT needs; :meth:`finish` returns the rest and closes the files. Use as a context
    manager (on an error, documents not yet started are dropped and the worker is stopped).
    """

    def __init__(self, folder: Path, selection: Selection, about: dict[str, Any], conversations: list[Any],
                 tz: ZoneInfo):
        (folder / "rsmf").mkdir()
        (folder / "text").mkdir()
        self.selection = selection
        self.files = 0
        self.attachments = 0
        self.pending: deque[tuple[Document, Future[dict[str, Any]]]] = deque()
        self.here: DocumentWriter | None = None
        self.pool: ProcessPoolExecutor | None = None
        if about["counts"]["messages"] >= PARALLEL_FROM and may_fork():
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                            initializer=_open_in_worker,
                                            initargs=(str(folder), about, conversations, tz.key))
        else:
            self.here = DocumentWriter(folder, about, conversations, tz)

    def __enter__(self) -> Documents:
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=kind is not None)  # the worker's files close as it exits
        elif self.here is not None and kind is not None:
            self.here.close()

    def add(self, doc: Document) -> list[tuple[Document, dict[str, Any]]]:
        if self.pool is None:
            assert self.here is not None
            return [(doc, self._count(self.here.write(doc, self.selection)))]
        self.pending.append((doc, self.pool.submit(_write_in_worker, doc, Directory.of(doc, self.selection))))
        return list(self._collect(lambda: len(self.pending) > IN_FLIGHT or self.pending[0][1].done()))

    def finish(self) -> list[tuple[Document, dict[str, Any]]]:
        done = list(self._collect(lambda: True))
        if self.pool is not None:
            self.pool.submit(_close_in_worker).result()
        elif self.here is not None:
            self.here.close()
        return done

    def _collect(self, ready: Any) -> Iterator[tuple[Document, dict[str, Any]]]:
        while self.pending and ready():
            doc, future = self.pending.popleft()
            yield doc, self._count(future.result())

    def _count(self, native: dict[str, Any]) -> dict[str, Any]:
        self.files += 1
        self.attachments += native["attachments"]
        return native
