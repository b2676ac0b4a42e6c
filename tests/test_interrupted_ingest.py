"""A run that dies midway (killed, out of memory) loses nothing: the next ingest indexes what it
stored, one writer at a time holds a case, and worker processes end with the process that forked them."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from discovery import index_state, ingest
from discovery.bench import generate
from discovery.case import Case
from discovery.cli import cli
from discovery.engines import use_engine
from discovery.search import search

MESSAGES = 1200
ENGINES = ["whoosh", pytest.param("tantivy", marks=pytest.mark.skipif(
    not __import__("importlib").util.find_spec("tantivy"), reason="the tantivy extra is not installed"))]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    generate(folder, MESSAGES)
    return folder


def _die_after_commits(case_dir: str, corpus: str, engine: str, commits: int) -> None:
    """In a forked child: ingest CORPUS, and die like a killed process (no cleanup) after COMMITS
    case.db commits, with the engine's part of them given to it but never committed."""
    ingest.BATCH, ingest.COMMIT_EVERY = 50, 200
    original = ingest._MessageWriter.commit
    done = [0]

    def commit_then_die(self: ingest._MessageWriter) -> None:
        original(self)
        done[0] += 1
        if done[0] == commits:
            os._exit(9)

    ingest._MessageWriter.commit = commit_then_die  # type: ignore[method-assign]
    case = Case(Path(case_dir), create=True)
    use_engine(case, engine)
    ingest.ingest(case, [corpus], copy_originals=False)
    os._exit(0)  # not reached


def _killed_run(case_dir: Path, corpus: Path, engine: str, commits: int = 2) -> None:
    child = multiprocessing.get_context("fork").Process(
        target=_die_after_commits, args=(str(case_dir), str(corpus), engine, commits))
    child.start()
    child.join(120)
    assert child.exitcode == 9


def _counts(case: Case) -> tuple[int, int]:
    return case.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0], case.engine().doc_count()


@pytest.mark.parametrize("engine", ENGINES)
def test_the_next_ingest_indexes_what_a_killed_run_stored(tmp_path, corpus, engine):
    _killed_run(tmp_path / "case", corpus, engine)
    case = Case(tmp_path / "case")
    stored, indexed = _counts(case)
    assert stored == 400 and indexed == 0  # two commits of case.db; the engine never committed
    assert not index_state.is_complete(case)
    before = search(case, "NOT zzzz", context=0, limit=1)
    assert before.index_complete is False and before.to_dict()["index_complete"] is False

    report = ingest.ingest(case, [str(corpus)], copy_originals=False)  # the same export again
    assert report.index_caught_up == 400
    assert report.messages_added == MESSAGES - 400 and report.duplicates == 400
    assert _counts(case) == (MESSAGES, MESSAGES)
    after = search(case, "NOT zzzz", context=0, limit=1)
    assert after.total == MESSAGES and after.index_complete
    case.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_killed_reindex_is_rebuilt_whole_by_the_next_ingest(tmp_path, corpus, engine):
    case = Case(tmp_path / "case", create=True)
    use_engine(case, engine)
    ingest.ingest(case, [str(corpus)], copy_originals=False)
    index_state.begin_rebuild(case)  # as a reindex does first; then it dies with the index half-built
    case.close_engine()
    import shutil

    shutil.rmtree(case.index_dir)
    assert case.engine().doc_count() == 0
    report = ingest.ingest(case, [str(corpus)], copy_originals=False)
    assert report.index_caught_up == MESSAGES and report.messages_added == 0
    assert _counts(case) == (MESSAGES, MESSAGES) and index_state.is_complete(case)
    case.close()


def test_one_writer_at_a_time(tmp_path, corpus, monkeypatch):
    case = Case(tmp_path / "case", create=True)
    other = Case(tmp_path / "case")
    monkeypatch.setattr(index_state, "LOCK_WAIT_SECONDS", 0.3)
    with index_state.writing(case):
        with index_state.writing(case):  # the same Case may nest (reindex inside an engine switch)
            pass
        with pytest.raises(index_state.CaseBusyError, match=rf"process {os.getpid()}\b.*write.lock"):
            ingest.ingest(other, [str(corpus)], copy_originals=False)
        result = CliRunner().invoke(cli, ["reindex", "--case", str(tmp_path / "case")])
        assert result.exit_code == 2 and "another ingest or reindex" in result.output
        assert other.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    report = ingest.ingest(other, [str(corpus)], copy_originals=False)  # released: it goes in
    assert report.messages_added == MESSAGES
    case.close()
    other.close()


def test_cli_search_warns_of_an_incomplete_index(tmp_path, corpus):
    case = Case(tmp_path / "case", create=True)
    ingest.ingest(case, [str(corpus)], copy_originals=False)
    index_state.begin(case, "ingest run 2")  # as an ingest running in another process has it
    case.close()
    result = CliRunner().invoke(cli, ["search", "NOT zzzz", "--case", str(tmp_path / "case"), "--json"])
    assert result.exit_code == 0
    assert "warning: The index does not hold every message" in result.stderr
    case = Case(tmp_path / "case")
    audited = case.db.execute("SELECT details FROM audit_log WHERE action = 'search' ORDER BY seq DESC").fetchone()[0]
    assert '"index_complete": false' in audited
    case.close()


def _fork_a_sleeping_grandchild(pid_file: str) -> None:
    """In a child: fork a worker that would sleep for a minute, tell its pid, then wait forever."""
    import discovery.processes  # noqa: F401 - installs the at-fork rule, as ingest's modules do

    worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
    worker.start()
    Path(pid_file).write_text(str(worker.pid))
    time.sleep(60)


def test_workers_end_with_the_process_that_forked_them(tmp_path):
    pid_file = tmp_path / "worker.pid"
    parent = multiprocessing.get_context("fork").Process(target=_fork_a_sleeping_grandchild, args=(str(pid_file),))
    parent.start()
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    assert _alive(worker)
    os.kill(parent.pid, signal.SIGKILL)
    parent.join(10)
    while _alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its killed parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Whether PID runs (a zombie, dead but not yet reaped by init, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
