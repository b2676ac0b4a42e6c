"""An ingest that cannot finish (Ctrl-C, SIGTERM, a hard kill, a full disk, a file changed under it)
keeps what it stored, says so on the run's record and the audit trail, never waits on the engine,
and never ends in a traceback; the next ingest finishes the job."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from discovery import index_state, ingest
from discovery.bench import generate
from discovery.case import Case
from discovery.cli import cli
from discovery.search import search
from tests.lark_factory import message, write_directory, write_jsonl

MESSAGES = 1200
CHILD_SECONDS = 90


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    generate(folder, MESSAGES)
    return folder


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    write_directory(folder, {"oc_test": "Audit prep"}, {"ou_alice": "Alice Chen", "ou_bob": "Bob Wang"})
    write_jsonl(folder / "messages.jsonl", [message(n, f"message number {n}") for n in range(1, 5)])
    return folder


def _runs(case: Case) -> list[tuple]:
    return [tuple(row) for row in case.db.execute(
        "SELECT id, status, messages_added, finished_at IS NOT NULL FROM ingest_runs ORDER BY id")]


def _stored(case: Case, run_id: int) -> int:
    return case.db.execute("SELECT COUNT(*) FROM messages m JOIN sources s ON s.id = m.source_id "
                           "WHERE s.run_id = ?", (run_id,)).fetchone()[0]


def _audits(case: Case) -> list[tuple[str, dict, str]]:
    return [(row[0], json.loads(row[1]), row[2])
            for row in case.db.execute("SELECT action, details, outcome FROM audit_log ORDER BY seq")]


# ---- a run stopped from outside: the CLI in a forked child, as a user runs it ----------------------------------


def _cli_child(case_dir: str, corpus: str, out: str, stop: str, commits: int) -> None:
    """In a forked child: `discovery ingest CORPUS --case CASE_DIR`, output to OUT.{stdout,stderr},
    with small batches, a Whoosh writer with worker processes, and STOP done after COMMITS case.db
    commits: "SIGTERM"/"SIGINT" sent to this process only (the engine's workers live on, waiting for
    work), "SIGINT-group" as a terminal's Ctrl-C does it (the workers die too), "kill" a SIGKILL.
    Any use of the engine after the signal is written to OUT.engine."""
    for stream, name in ((1, "stdout"), (2, "stderr")):
        fd = os.open(f"{out}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, stream)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 - pytest captured the old ones
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    from discovery.engine import whoosh_engine

    ingest.BATCH, ingest.COMMIT_EVERY = 50, 200
    engine_class = whoosh_engine.WhooshEngine
    original_init = engine_class.__init__

    def bulk_init(self, index_dir, **kwargs):  # workers from the first 100 documents on
        original_init(self, index_dir, **{**kwargs, "bulk_threshold": 100, "procs": 2})

    engine_class.__init__ = bulk_init
    signalled = [False]
    for method in ("add", "add_new", "commit", "close"):
        def watched(self, *args, _original=getattr(engine_class, method), _name=method, **kwargs):
            if signalled[0]:
                with open(f"{out}.engine", "a") as note:
                    note.write(f"{_name}\n")
            return _original(self, *args, **kwargs)
        setattr(engine_class, method, watched)

    original_commit = ingest._MessageWriter.commit
    done = [0]

    def commit_then_stop(self: ingest._MessageWriter) -> None:
        original_commit(self)
        done[0] += 1
        if done[0] != commits:
            return
        signalled[0] = True
        if stop == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if stop == "SIGINT-group":
            for task in getattr(self.engine._writer, "tasks", ()):
                os.kill(task.pid, signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        else:
            os.kill(os.getpid(), getattr(signal, stop))

    ingest._MessageWriter.commit = commit_then_stop  # type: ignore[method-assign]
    try:
        cli.main(["ingest", corpus, "--case", case_dir, "--no-copy"], prog_name="discovery")
    except SystemExit as end:
        os._exit(end.code if isinstance(end.code, int) else 1)
    os._exit(0)


def _stopped_cli(tmp_path: Path, corpus: Path, stop: str, commits: int = 3) -> tuple[int, str]:
    out = str(tmp_path / "child")
    child = multiprocessing.get_context("fork").Process(
        target=_cli_child, args=(str(tmp_path / "case"), str(corpus), out, stop, commits))
    child.start()
    child.join(CHILD_SECONDS)
    if child.exitcode is None:
        child.kill()
        child.join()
        pytest.fail(f"the stopped ingest did not end within {CHILD_SECONDS} s (it waited on the engine?)")
    assert not Path(f"{out}.engine").exists(), "the failing run used the engine: " + Path(f"{out}.engine").read_text()
    return child.exitcode, Path(f"{out}.stderr").read_text()


@pytest.mark.parametrize(("stop", "code", "reason"), [
    ("SIGTERM", 1, "SIGTERM"),
    ("SIGINT", 130, "Ctrl-C"),
    ("SIGINT-group", 130, "Ctrl-C"),
])
def test_an_interrupted_run_is_recorded_and_the_next_one_indexes_it(tmp_path, corpus, stop, code, reason):
    exit_code, stderr = _stopped_cli(tmp_path, corpus, stop)
    assert exit_code == code, stderr
    assert "Traceback" not in stderr.split("Process ")[0]  # (a worker killed by Ctrl-C may print its own)
    case = Case(tmp_path / "case")
    stored = _stored(case, 1)
    assert stored == 600  # three commits of 200
    assert f"ingest run 1 interrupted ({reason}): {stored} messages stored; run `discovery ingest` again" in stderr
    assert _runs(case) == [(1, "interrupted", stored, 1)]
    action, details, outcome = _audits(case)[-1]
    assert (action, outcome) == ("ingest", "error")
    assert details["reason"] == reason and details["messages_added"] == stored and details["run_id"] == 1
    assert not index_state.is_complete(case)  # the engine was left alone
    assert case.engine().doc_count() == 0

    report = ingest.ingest(case, [str(corpus)], copy_originals=False)
    assert report.index_caught_up == stored and report.messages_added == MESSAGES - stored
    assert search(case, "NOT zzzz", context=0, limit=1).total == MESSAGES
    assert _runs(case) == [(1, "interrupted", stored, 1), (2, "complete", MESSAGES - stored, 1)]
    case.close()


def test_a_killed_run_is_closed_by_the_next_ingest(tmp_path, corpus):
    exit_code, _ = _stopped_cli(tmp_path, corpus, "kill", commits=2)
    assert exit_code == -signal.SIGKILL
    case = Case(tmp_path / "case")
    assert _runs(case) == [(1, "running", 0, 0)]  # a hard kill leaves no record of its own
    assert [a for a, _, _ in _audits(case)] == []

    report = ingest.ingest(case, [str(corpus)], copy_originals=False, actor="cli:tester")
    assert _runs(case) == [(1, "interrupted", 400, 0), (2, "complete", MESSAGES - 400, 1)]
    recovered, finished = _audits(case)
    assert recovered[0] == "ingest" and recovered[2] == "error"
    assert recovered[1]["run_id"] == 1 and recovered[1]["messages_added"] == 400
    assert recovered[1]["status"] == "interrupted" and "killed" in recovered[1]["reason"]
    assert finished[1]["run_id"] == 2 and finished[2] == "ok"
    assert report.index_caught_up == 400
    # the current run is never taken for a dead one
    assert index_state.close_dead_runs(case, current_run=2) == []
    case.close()


# ---- a case that cannot be written: the run ends, it is not blamed on the adapter ----------------------------


def test_a_full_disk_ends_the_run_with_a_clear_message(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(ingest, "BATCH", 50)
    monkeypatch.setattr(ingest, "COMMIT_EVERY", 200)
    calls = [0]
    original = ingest._MessageWriter._write_batch

    def fill_up(self, db, batch):
        calls[0] += 1
        if calls[0] == 10:
            raise sqlite3.OperationalError("database or disk is full")
        return original(self, db, batch)

    monkeypatch.setattr(ingest._MessageWriter, "_write_batch", fill_up)
    result = CliRunner().invoke(cli, ["ingest", str(corpus), "--case", str(tmp_path / "case"), "--no-copy"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "ingest run 1 stopped: OperationalError: database or disk is full (is the disk full?); 450 messages " \
        "stored; run `discovery ingest` again" in result.stderr
    case = Case(tmp_path / "case")
    assert _runs(case) == [(1, "interrupted", 450, 1)]  # the 9 batches written whole; the 10th rolled back
    assert not [row for row in case.exceptions() if "adapter" in row["error"]]
    assert _audits(case)[-1][2] == "error"
    assert case.engine().doc_count() == 0 and not index_state.is_complete(case)
    monkeypatch.setattr(ingest._MessageWriter, "_write_batch", original)
    report = ingest.ingest(case, [str(corpus)], copy_originals=False)
    assert report.index_caught_up == 450 and case.engine().doc_count() == MESSAGES
    case.close()


def test_a_write_error_is_not_recorded_as_an_adapter_bug(tmp_path, export, monkeypatch):
    def no_space(self, file, parsed):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ingest._MessageWriter, "add", no_space)
    case = Case(tmp_path / "case", create=True)
    with pytest.raises(OSError, match="No space left on device") as failed:
        ingest.ingest(case, [str(export)])
    ended = ingest.ended_run(failed.value)
    assert ended is not None and not ended.interrupted and "(is the disk full?)" in ended.reason
    assert case.exceptions() == []  # nothing blames the lark adapter
    assert _runs(case)[0][1] == "interrupted"
    case.close()


def test_an_adapter_error_is_still_recorded_and_the_run_goes_on(tmp_path, export, monkeypatch):
    from discovery.sources.lark import LarkAdapter

    def broken(self, files, options=None):
        raise ValueError("boom")
        yield  # pragma: no cover

    monkeypatch.setattr(LarkAdapter, "parse", broken)
    case = Case(tmp_path / "case", create=True)
    report = ingest.ingest(case, [str(export)])
    assert report.exit_code == 3
    assert any("the lark adapter failed (ValueError: boom)" in row["error"] for row in case.exceptions())
    assert _runs(case)[0][1] == "partial"
    case.close()


@pytest.mark.parametrize(("error", "expected"), [
    (sqlite3.OperationalError("database or disk is full"), "database or disk is full (is the disk full?)"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device (is the disk full?)"),
])
def test_commands_say_the_case_cannot_be_written(tmp_path, export, monkeypatch, error, expected):
    case = Case(tmp_path / "case", create=True)
    ingest.ingest(case, [str(export)])
    case.close()

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(Case, "stats", fail)
    result = CliRunner().invoke(cli, ["stats", "--case", str(tmp_path / "case")])
    assert result.exit_code == 1
    assert f"Error: cannot write to the case at {tmp_path / 'case'}: " in result.stderr
    assert expected in result.stderr and "Traceback" not in result.output
    monkeypatch.setattr("discovery.search.search", fail)
    result = CliRunner().invoke(cli, ["search", "number", "--case", str(tmp_path / "case")])
    assert result.exit_code == 1 and expected in result.stderr


# ---- a file that changes while it is ingested --------------------------------------------------------------


def _append_message(path: Path) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(message(99, "INJECTED after hashing")) + "\n")


def test_a_file_changed_after_it_was_copied_is_flagged(tmp_path, export, monkeypatch):
    victim = export / "messages.jsonl"
    original = ingest._parse_group

    def change_then_parse(adapter, files, writer, options):
        if any(file.path == str(victim) for file in files):
            _append_message(victim)
            os.utime(victim, ns=(1, 1))  # a different mtime whatever the clock's resolution
        return original(adapter, files, writer, options)

    monkeypatch.setattr(ingest, "_parse_group", change_then_parse)
    case = Case(tmp_path / "case", create=True)
    report = ingest.ingest(case, [str(export)])
    source = case.db.execute("SELECT id, sha256 FROM sources WHERE path = ?", (str(victim),)).fetchone()
    flagged = [row for row in case.exceptions() if "changed while it was being ingested" in row["error"]]
    assert len(flagged) == 1 and flagged[0]["path"] == str(victim)
    assert "read from bytes that differ from the recorded SHA-256 " + source["sha256"] in flagged[0]["error"]
    assert "re-ingested" in flagged[0]["error"]
    assert report.exit_code == 3
    case.close()


def test_a_file_changed_before_it_was_copied_is_not_parsed(tmp_path, export, monkeypatch):
    victim = export / "messages.jsonl"
    original = ingest._MessageWriter.add_source

    def change_then_copy(self, file, adapter, copy):
        if file.path == str(victim):
            _append_message(victim)
        return original(self, file, adapter, copy)

    monkeypatch.setattr(ingest._MessageWriter, "add_source", change_then_copy)
    case = Case(tmp_path / "case", create=True)
    report = ingest.ingest(case, [str(export)])
    source = case.db.execute("SELECT id, original, messages FROM sources WHERE path = ?", (str(victim),)).fetchone()
    assert source is not None and source["original"] is None and source["messages"] == 0  # kept, not parsed
    assert case.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    flagged = case.db.execute("SELECT error FROM exceptions WHERE source_id = ?", (source["id"],)).fetchall()
    assert len(flagged) == 1 and "changed while it was being ingested" in flagged[0]["error"]
    assert not list((case.originals_dir).rglob("*.part"))
    assert report.exit_code == 3
    case.close()


def test_a_file_changed_without_a_copy_is_flagged_and_a_touch_is_not(tmp_path, export, monkeypatch):
    victim = export / "messages.jsonl"
    members = export / next(p.name for p in export.iterdir() if p != victim and "member" in p.name)
    original = ingest._parse_group

    def change_then_parse(adapter, files, writer, options):
        if any(file.path == str(victim) for file in files):
            _append_message(victim)
            os.utime(victim, ns=(1, 1))
            os.utime(members, ns=(2, 2))  # touched only: the same bytes
        return original(adapter, files, writer, options)

    monkeypatch.setattr(ingest, "_parse_group", change_then_parse)
    case = Case(tmp_path / "case", create=True)
    ingest.ingest(case, [str(export)], copy_originals=False)
    flagged = [row for row in case.exceptions() if "changed while it was being ingested" in row["error"]]
    assert [row["path"] for row in flagged] == [str(victim)]
    case.close()


# ---- odd inputs ---------------------------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_goes_in(tmp_path, export):
    odd = os.path.join(os.fsencode(export), b"bad\xff\xfename.jsonl")
    os.rename(os.fsencode(export / "messages.jsonl"), odd)
    result = CliRunner().invoke(cli, ["ingest", str(export), "--case", str(tmp_path / "case")])
    assert result.exit_code == 0, result.output
    case = Case(tmp_path / "case")
    paths = [row[0] for row in case.db.execute("SELECT path FROM sources")]
    assert str(export / "bad\\xff\\xfename.jsonl") in paths
    assert case.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 4
    case.close()


def test_a_broken_file_with_an_odd_name_is_reported_by_its_printable_name(tmp_path, export):
    odd = os.path.join(os.fsencode(export), b"bad\xff.jsonl")
    Path(os.fsdecode(odd)).write_text("{ not json\n")
    result = CliRunner().invoke(cli, ["ingest", str(export), "--case", str(tmp_path / "case")])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and "bad\\xff.jsonl" in result.stderr
    case = Case(tmp_path / "case")
    assert any(row["path"] == str(export / "bad\\xff.jsonl") for row in case.exceptions())
    case.close()


@pytest.mark.parametrize("where", ["case", "inside", "parent"])
def test_ingest_refuses_the_case_folder(tmp_path, export, where):
    case_dir = tmp_path / "work" / "case"
    case = Case(case_dir, create=True)
    ingest.ingest(case, [str(export)])
    case.close()
    target = {"case": case_dir, "inside": case_dir / "originals", "parent": tmp_path / "work"}[where]
    result = CliRunner().invoke(cli, ["ingest", str(target), "--case", str(case_dir)])
    assert result.exit_code == 2, result.output
    assert "case folder" in result.stderr and "Traceback" not in result.output
    case = Case(case_dir)
    assert len(_runs(case)) == 1 and case.exceptions() == []
    with pytest.raises(ingest.IngestRefused):
        ingest.ingest(case, [str(target)])
    assert len(_runs(case)) == 1
    case.close()


def test_a_second_ingest_says_what_it_waits_for(tmp_path, export, monkeypatch):
    monkeypatch.setattr(index_state, "LOCK_WAIT_SECONDS", 0.5)
    case = Case(tmp_path / "case", create=True)
    with index_state.writing(case):
        result = CliRunner().invoke(cli, ["ingest", str(export), "--case", str(tmp_path / "case")])
    assert result.exit_code == 2
    assert result.stderr.count(f"waiting for process {os.getpid()} (another ingest or reindex) to finish…") == 1
    assert "another ingest or reindex" in result.stderr.splitlines()[-1]
    case.close()


def test_a_record_that_cannot_be_stored_is_an_exception_and_the_rest_go_in(tmp_path, export):
    lines = (export / "messages.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    broken["body"]["content"] = '{"text": "\\ud83d a broken escape"}'  # a lone surrogate once decoded
    lines[1] = json.dumps(broken)
    (export / "messages.jsonl").write_text("\n".join(lines) + "\n")
    case = Case(tmp_path / "case", create=True)
    report = ingest.ingest(case, [str(export)])
    assert report.messages_added == 3 and report.exit_code == 3
    [row] = case.exceptions()
    assert row["path"] == str(export / "messages.jsonl") and row["locator"] == "line 2"
    assert "could not be stored (UnicodeEncodeError" in row["error"] and row["raw"] == lines[1]
    assert case.db.execute("SELECT messages FROM sources WHERE path LIKE '%messages.jsonl'").fetchone()[0] == 3
    assert _runs(case) == [(1, "partial", 3, 1)]
    case.close()


def test_an_index_that_cannot_be_committed_ends_the_run_recorded(tmp_path, export, monkeypatch):
    from discovery.engine.whoosh_engine import WhooshEngine

    def broken_commit(self):
        raise RuntimeError("the index writer's worker died")

    monkeypatch.setattr(WhooshEngine, "commit", broken_commit)
    result = CliRunner().invoke(cli, ["ingest", str(export), "--case", str(tmp_path / "case")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "ingest run 1 stopped: RuntimeError: the index writer's worker died; 4 messages stored" in result.stderr
    monkeypatch.undo()
    case = Case(tmp_path / "case")
    assert _runs(case) == [(1, "interrupted", 4, 1)] and not index_state.is_complete(case)
    report = ingest.ingest(case, [str(export)])
    assert report.index_caught_up == 4 and search(case, "number", context=0).total == 4
    case.close()


def _cli_child_with_small_files(case_dir: str, corpus: str, out: str, limit: int) -> None:
    """In a forked child: `discovery ingest` where no file may grow past LIMIT bytes (RLIMIT_FSIZE):
    a write past it fails as on a full disk (EFBIG, SQLite's "disk I/O error")."""
    import resource

    for stream, name in ((1, "stdout"), (2, "stderr")):
        fd = os.open(f"{out}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, stream)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    ingest.BATCH, ingest.COMMIT_EVERY = 50, 200
    Case(case_dir, create=True).close()  # the empty case fits
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        cli.main(["ingest", corpus, "--case", case_dir, "--no-copy"], prog_name="discovery")
    except SystemExit as end:
        os._exit(end.code if isinstance(end.code, int) else 1)
    os._exit(0)


def test_a_really_full_disk_ends_the_run_and_the_next_ingest_finishes(tmp_path, corpus):
    out = str(tmp_path / "child")
    child = multiprocessing.get_context("fork").Process(
        target=_cli_child_with_small_files, args=(str(tmp_path / "case"), str(corpus), out, 600_000))
    child.start()
    child.join(CHILD_SECONDS)
    if child.exitcode is None:
        child.kill()
        child.join()
        pytest.fail("the ingest that filled the disk did not end")
    stderr = Path(f"{out}.stderr").read_text()
    assert child.exitcode == 1, stderr
    assert "Traceback" not in stderr and "ingest run 1 stopped: " in stderr and "(is the disk full?)" in stderr
    case = Case(tmp_path / "case")
    stored = _stored(case, 1)
    assert 0 < stored < MESSAGES, stderr
    report = ingest.ingest(case, [str(corpus)], copy_originals=False)
    assert _runs(case)[0][:3] == (1, "interrupted", stored)  # recorded by the run, or else by this one
    assert report.index_caught_up == stored and report.messages_added == MESSAGES - stored
    assert search(case, "NOT zzzz", context=0, limit=1).total == MESSAGES
    case.close()
