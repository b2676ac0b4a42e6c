"""The Whoosh engine under failure: a writer whose worker processes die (killed, a full disk) or
whose process is interrupted never hangs and never commits part of its work; an index rebuilt
underneath a running server is answered again (503 while it is missing, never a stale searcher).

Every write scenario runs in a forked child under a timeout, so a hang fails the test instead of
blocking the run."""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from discovery.engine import IndexDoc
from discovery.engine.whoosh_engine import (
    IndexRebuildingError,
    IndexWriteError,
    WhooshEngine,
    _RollingMpWriter,
    _RollingSubWriter,
)
from discovery.query import parse
from tests.conftest import FIXTURES, WEB_USERS, ingest_folder, login, make_app

CHILD_SECONDS = 60  # a scenario that takes longer than this hangs


def _docs(prefix: str, word: str, n: int, start: int = 0) -> list[IndexDoc]:
    return [
        IndexDoc(id=f"{prefix}{i:06d}", text=f"{word} item number {i} of the run", conversation_id="c1",
                 conversation_name="Ops", conversation_type="group", sender_id="u1", sender_name="Han",
                 source_format="lark_api", custodian="alice", kind="message", sent_at_us=i * 1000, day=0)
        for i in range(start, start + n)
    ]


def _run_in_child(scenario: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """SCENARIO(*ARGS) in a forked child; its result, or a failure if it raised or did not end in time."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def target() -> None:
        try:
            send.send(("ok", scenario(*args)))
        except BaseException as error:  # noqa: BLE001 - reported to the test
            send.send(("error", f"{type(error).__name__}: {error}"))

    child = ctx.Process(target=target)
    child.start()
    try:
        if not receive.poll(CHILD_SECONDS):
            pytest.fail(f"the scenario did not end within {CHILD_SECONDS} s (it hangs)")
        kind, value = receive.recv()
        child.join(CHILD_SECONDS)
        assert child.exitcode == 0, f"the child did not exit cleanly: {child.exitcode}"
    finally:
        if child.is_alive():
            child.kill()
            child.join(5)
    assert kind == "ok", value
    return value


def _bulk_engine(path: Path) -> WhooshEngine:
    return WhooshEngine(path, procs=2, bulk_threshold=100, batch_size=50)


def _start_bulk(engine: WhooshEngine, n: int = 600) -> _RollingMpWriter:
    """A bulk write whose two sub-writers run (a job is 256 documents)."""
    engine.add_new(_docs("bulk", "bulky", n))
    writer = engine._writer
    assert isinstance(writer, _RollingMpWriter) and len(writer.tasks) == 2
    return writer


def _baseline(path: Path) -> None:
    """50 committed documents ('kept') before the failing write."""
    engine = WhooshEngine(path, procs=1)
    engine.add(_docs("kept", "kept", 50))
    engine.commit()
    engine.close()


def _after(path: Path) -> dict[str, Any]:
    """What a fresh engine finds, and whether it can write (the index's lock was released)."""
    engine = WhooshEngine(path, procs=1)
    found = engine.doc_count()
    bulky = engine.search(parse("bulky"), limit=0).total
    engine.add(_docs("later", "later", 5))
    engine.commit()
    total = engine.doc_count()
    engine.close()
    return {"found": found, "bulky": bulky, "after_write": total}


def _killed_sub_writers(path: str, when: str) -> dict[str, Any]:
    index = Path(path)
    _baseline(index)
    engine = _bulk_engine(index)
    writer = _start_bulk(engine)
    pids = [task.pid for task in writer.tasks]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    raised = []
    try:
        if when == "adding":  # enough jobs to fill the job queue nobody reads any more
            engine.add_new(_docs("more", "bulky", 3000, start=10_000))
        engine.commit()
    except IndexWriteError as error:
        raised.append(str(error))
    seconds = time.monotonic() - started
    try:  # and again: the lost documents are not forgotten by a second commit
        engine.commit()
        again = "committed"
    except IndexWriteError:
        again = "refused"
    started = time.monotonic()
    engine.close()
    return {"raised": raised, "seconds": seconds, "again": again, "close_seconds": time.monotonic() - started,
            "workers_left": [task.pid for task in writer.tasks if task.is_alive()], **_after(index)}


@pytest.mark.parametrize("when", ["adding", "committing"])
def test_dead_sub_writers_fail_the_write_instead_of_hanging(tmp_path, when):
    result = _run_in_child(_killed_sub_writers, str(tmp_path / "ix"), when)
    assert result["raised"] and "worker processes stopped" in result["raised"][0]
    assert result["seconds"] < 10 and result["close_seconds"] < 10
    assert result["again"] == "refused"
    assert result["workers_left"] == []
    # nothing of the failed write was committed, and the index's lock was released
    assert (result["found"], result["bulky"], result["after_write"]) == (50, 0, 55)


def _full_disk(path: str) -> dict[str, Any]:
    index = Path(path)
    _baseline(index)

    def no_space(self, filename, doc_count):
        raise OSError(errno.ENOSPC, "No space left on device")

    _RollingSubWriter._process_file = no_space  # type: ignore[method-assign] - forked into the sub-writers
    engine = _bulk_engine(index)
    started = time.monotonic()
    try:
        engine.add_new(_docs("bulk", "bulky", 3000))
        engine.commit()
    except OSError as error:
        raised = [error.errno, str(error)]
    else:
        raised = []
    seconds = time.monotonic() - started
    engine.close()
    return {"raised": raised, "seconds": seconds, **_after(index)}


def test_a_full_disk_in_a_sub_writer_is_raised_as_such(tmp_path):
    result = _run_in_child(_full_disk, str(tmp_path / "ix"))
    assert result["raised"][0] == errno.ENOSPC and "full-text index" in result["raised"][1]
    assert result["seconds"] < 10
    assert (result["found"], result["bulky"], result["after_write"]) == (50, 0, 55)


def _interrupted(path: str) -> dict[str, Any]:
    index = Path(path)
    _baseline(index)
    engine = _bulk_engine(index)
    writer = _start_bulk(engine)
    real, calls = _RollingMpWriter._put, [0]

    def put_then_interrupt(self, item):  # Ctrl-C in the parent, while it queues a job
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        real(self, item)

    _RollingMpWriter._put = put_then_interrupt  # type: ignore[method-assign]
    try:
        engine.add_new(_docs("more", "bulky", 3000, start=10_000))
    except KeyboardInterrupt:
        interrupted = True
    else:
        interrupted = False
    finally:
        _RollingMpWriter._put = real  # type: ignore[method-assign]
    alive_after_interrupt = [task.pid for task in writer.tasks if task.is_alive()]
    started = time.monotonic()
    engine.close()  # what a caller's cleanup does: must not commit the half-written work
    return {"interrupted": interrupted, "alive": alive_after_interrupt, "close_seconds": time.monotonic() - started,
            **_after(index)}


def test_an_interrupted_write_is_discarded_and_close_commits_nothing(tmp_path):
    result = _run_in_child(_interrupted, str(tmp_path / "ix"))
    assert result["interrupted"]
    assert result["alive"] == []  # the writer was cancelled: its workers stopped
    assert result["close_seconds"] < 10
    assert (result["found"], result["bulky"], result["after_write"]) == (50, 0, 55)


def _cancelled(path: str) -> dict[str, Any]:
    index = Path(path)
    _baseline(index)
    engine = _bulk_engine(index)
    writer = _start_bulk(engine)
    started = time.monotonic()
    engine.cancel()
    seconds = time.monotonic() - started
    alive = [task.pid for task in writer.tasks if task.is_alive()]
    engine.add(_docs("again", "again", 20))  # the engine writes on afterwards
    engine.commit()
    count = engine.doc_count()
    engine.close()
    return {"seconds": seconds, "alive": alive, "count": count, **_after(index)}


def test_cancel_stops_a_bulk_writer_and_commits_nothing(tmp_path):
    result = _run_in_child(_cancelled, str(tmp_path / "ix"))
    assert result["seconds"] < 10 and result["alive"] == []
    assert result["count"] == 70
    assert (result["found"], result["bulky"], result["after_write"]) == (70, 0, 75)


def _exit_with_an_open_bulk_writer(path: str) -> dict[str, Any]:
    """A process that ends (an error it does not handle, a full disk) while its bulk writer's
    sub-writers wait for work: it exits like any multiprocessing child, through its exit handlers."""
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_bulk_then_return, args=(path,))
    child.start()
    child.join(20)
    ended = not child.is_alive()
    if not ended:
        child.kill()
        child.join(5)
    return {"ended": ended, "exitcode": child.exitcode}


def _bulk_then_return(path: str) -> None:
    engine = _bulk_engine(Path(path))
    _start_bulk(engine)  # returns with the sub-writers alive, blocked on their job queue


def test_open_sub_writers_never_hold_up_the_exit_of_their_process(tmp_path):
    result = _run_in_child(_exit_with_an_open_bulk_writer, str(tmp_path / "ix"))
    assert result == {"ended": True, "exitcode": 0}


def _sigint_to_sub_writers(path: str) -> dict[str, Any]:
    engine = _bulk_engine(Path(path))
    writer = _start_bulk(engine)
    for task in writer.tasks:  # a Ctrl-C reaches the whole process group; it is the parent's to handle
        os.kill(task.pid, signal.SIGINT)
    time.sleep(0.5)
    alive = all(task.is_alive() for task in writer.tasks)
    engine.commit()
    count = engine.doc_count()
    engine.close()
    return {"alive": alive, "count": count}


def test_sub_writers_leave_a_ctrl_c_to_their_parent(tmp_path):
    assert _run_in_child(_sigint_to_sub_writers, str(tmp_path / "ix")) == {"alive": True, "count": 600}


# ---------------------------------------------------------------------------- an index rebuilt underneath


def _rebuild(path: Path, docs: list[IndexDoc], between: Callable[[], None] = lambda: None) -> None:
    """As discovery.ingest.reindex does, from another engine object: close, delete, recreate, commit."""
    WhooshEngine(path, procs=1).close()
    shutil.rmtree(path)
    between()
    engine = WhooshEngine(path, procs=1)
    engine.add(docs)
    engine.commit()
    engine.close()


def test_searchers_answer_again_after_the_index_is_rebuilt_underneath(tmp_path):
    path = tmp_path / "ix"
    server = WhooshEngine(path, procs=1)
    server.add(_docs("old", "apple", 30))
    server.commit()  # generation 1, as the rebuilt index's will be
    threads = 4
    barrier = threading.Barrier(threads)

    def ask(word: str) -> tuple[str, int]:
        barrier.wait(10)  # every thread of the pool answers one
        try:
            return "ok", server.search(parse(word), limit=100).total
        except IndexRebuildingError as error:
            assert "being rebuilt" in str(error)
            return "rebuilding", 0

    with ThreadPoolExecutor(threads) as pool:
        assert list(pool.map(ask, ["apple"] * threads)) == [("ok", 30)] * threads

        def during() -> None:
            assert list(pool.map(ask, ["apple"] * threads)) == [("rebuilding", 0)] * threads

        _rebuild(path, _docs("new", "banana", 40), during)
        for _ in range(3):
            assert list(pool.map(ask, ["banana"] * threads)) == [("ok", 40)] * threads
            assert list(pool.map(ask, ["apple"] * threads)) == [("ok", 0)] * threads
        # rebuilt again, with no search while it was missing (the same generation number again)
        _rebuild(path, _docs("third", "cherry", 7))
        assert list(pool.map(ask, ["cherry"] * threads)) == [("ok", 7)] * threads
        assert list(pool.map(ask, ["banana"] * threads)) == [("ok", 0)] * threads
    assert server.doc_count() == 7
    server.close()


def test_a_searcher_that_fails_to_close_is_replaced(tmp_path, monkeypatch):
    path = tmp_path / "ix"
    server = WhooshEngine(path, procs=1)
    server.add(_docs("old", "apple", 3))
    server.commit()
    stale = server._searcher()

    def broken_close() -> None:
        raise RuntimeError("Reader already closed")

    monkeypatch.setattr(stale, "close", broken_close)
    other = WhooshEngine(path, procs=1)
    other.add(_docs("new", "apple", 2))
    other.commit()
    other.close()
    assert server.search(parse("apple")).total == 5
    assert server._searcher() is not stale
    server.close()


def test_the_web_answers_503_while_the_index_is_rebuilt(tmp_path):
    case_dir = ingest_folder(FIXTURES / "lark", tmp_path / "case")
    app = make_app(case_dir)
    try:
        client = app.test_client()
        assert login(client, *WEB_USERS["investigator"]).status_code == 302
        assert client.get("/search.json?q=whitewash").status_code == 200
        saved = tmp_path / "saved-index"
        shutil.move(case_dir / "index", saved)  # mid-rebuild: the folder is gone
        twin = client.get("/search.json?q=whitewash")
        assert twin.status_code == 503 and twin.headers["Retry-After"] == "2"
        assert twin.get_json()["error"] == "The search index is being rebuilt; try again in a moment."
        page = client.get("/search?q=whitewash")
        assert page.status_code == 503 and "being rebuilt" in page.get_data(as_text=True)
        shutil.move(saved, case_dir / "index")
        assert client.get("/search.json?q=whitewash").status_code == 200
    finally:
        app.extensions["discovery_cases"].close()
