"""Ingest through the real parts: Lark files on disk, case.db, a Whoosh index on disk."""

import hashlib
import json
import os
import shutil
import stat
import zipfile

import pytest

from discovery.case import Case
from discovery.ingest import ingest, reindex
from discovery.search import search
from tests.lark_factory import message, write_directory, write_jsonl


@pytest.fixture
def export(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    write_directory(folder, {"oc_test": "Audit prep"}, {"ou_alice": "Alice Chen", "ou_bob": "Bob Wang"})
    write_jsonl(folder / "messages.jsonl", [
        message(1, "morning all"),
        message(2, "we need to whitewash the Q3 numbers", sender="ou_bob"),
        message(3, "上线前把debug logs清理掉"),
        message(4, "ok"),
    ])
    return folder


def test_ingest_records_messages_sources_and_provenance(tmp_path, export):
    case = Case(tmp_path / "case", create=True)
    report = ingest(case, [str(export)], custodian="Alice Chen")
    assert (report.files, report.messages_added, report.duplicates, report.exceptions) == (3, 4, 0, 0)
    assert case.stats()["messages"] == 4
    source = case.db.execute("SELECT * FROM sources WHERE path LIKE '%messages.jsonl'").fetchone()
    data = (export / "messages.jsonl").read_bytes()
    assert source["sha256"] == hashlib.sha256(data).hexdigest()
    assert source["size"] == len(data) and source["custodian"] == "Alice Chen" and source["format"] == "lark"

    hit = search(case, "whitewash", context=0).hits[0].message
    assert hit["sender_name"] == "Bob Wang" and hit["conversation_name"] == "Audit prep"
    assert hit["custodian"] == "Alice Chen"
    assert hit["sent_at"] == "2024-06-01T00:02:00.000Z" and hit["sent_at_raw"] == "1717200120000"
    # the locator names the exact line, and that line is the raw record, byte for byte
    assert hit["source"]["locator"] == "line 2"
    assert hit["raw"] == data.decode().splitlines()[1]
    assert hit["source"]["sha256"] == source["sha256"]


def test_originals_are_kept_read_only_by_hash_and_sources_never_touched(tmp_path, export):
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(export)])
    for name, data in before.items():
        digest = hashlib.sha256(data).hexdigest()
        kept = case.originals_dir / digest[:2] / digest
        assert kept.read_bytes() == data
        assert not kept.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert (export / name).read_bytes() == data


def test_no_copy_keeps_no_originals(tmp_path, export):
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(export)], copy_originals=False)
    assert not case.originals_dir.exists()
    assert case.db.execute("SELECT COUNT(*) FROM sources WHERE original IS NOT NULL").fetchone()[0] == 0


def test_ingesting_the_same_export_again_adds_nothing(tmp_path, export):
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(export)])
    again = ingest(case, [str(export)])
    assert again.messages_added == 0 and again.duplicates == 4
    assert case.stats()["messages"] == 4
    assert case.engine().doc_count() == 4
    # the very same bytes again are not a new occurrence of anything
    assert case.db.execute("SELECT COUNT(*) FROM duplicates").fetchone()[0] == 0


def test_overlapping_pages_are_deduplicated_and_each_occurrence_recorded(tmp_path, export):
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(export)])
    later = tmp_path / "later.jsonl"
    write_jsonl(later, [message(4, "ok"), message(5, "done")])
    report = ingest(case, [str(later)])
    assert (report.messages_added, report.duplicates) == (1, 1)
    [dup] = case.db.execute("SELECT * FROM duplicates").fetchall()
    assert dup["identical"] == 1 and dup["locator"] == "line 1"


def test_a_changed_copy_of_a_message_is_kept_beside_the_original(tmp_path, export):
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(export)])
    edited = tmp_path / "edited.jsonl"
    write_jsonl(edited, [message(4, "ok, edited later", updated=True)])
    ingest(case, [str(edited)])
    [dup] = case.db.execute("SELECT * FROM duplicates").fetchall()
    assert dup["identical"] == 0 and "edited later" in dup["raw"]


def test_malformed_records_are_exceptions_and_the_rest_goes_in(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [
        message(1, "first"), '{"message_id": "om_broken", "msg_type": "text", ', message(3, "third"),
    ])
    case = Case(tmp_path / "case", create=True)
    report = ingest(case, [str(path)])
    assert report.messages_added == 2 and report.exceptions == 1 and report.exit_code == 3
    [row] = case.exceptions()
    assert row["path"] == str(path) and row["locator"] == "line 2"
    assert row["raw"].startswith('{"message_id": "om_broken"')
    status = case.db.execute("SELECT status, exceptions FROM ingest_runs").fetchone()
    assert tuple(status) == ("partial", 1)


def test_an_unrecognised_file_is_recorded_not_dropped(tmp_path, export):
    (export / "notes.txt").write_text("just some notes, not a chat export")
    case = Case(tmp_path / "case", create=True)
    report = ingest(case, [str(export)])
    assert report.unrecognized_files == 1 and report.exceptions == 1
    assert "no adapter recognised" in case.exceptions()[0]["error"]
    assert case.db.execute("SELECT COUNT(*) FROM sources WHERE format IS NULL").fetchone()[0] == 1


def test_a_zip_export_cites_the_member_and_both_hashes(tmp_path, export):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(export.iterdir()):
            zf.write(path, f"lark/{path.name}")
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(archive)])
    hit = search(case, "whitewash", context=0).hits[0].message
    assert hit["source"]["path"] == str(archive) and hit["source"]["member"] == "lark/messages.jsonl"
    assert hit["source"]["sha256"] == hashlib.sha256((export / "messages.jsonl").read_bytes()).hexdigest()
    assert hit["source"]["container_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()


def test_reindex_rebuilds_the_index_from_case_db_alone(tmp_path, export):
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(export)])
    case.close()
    shutil.rmtree(tmp_path / "case" / "index")
    case = Case(tmp_path / "case")
    assert reindex(case) == 4
    assert [h.message["text"] for h in search(case, "whitewash").hits] == ["we need to whitewash the Q3 numbers"]
    assert case.get_meta("index_state") == "ok"


def test_case_folder_holds_db_index_and_originals(tmp_path, export):
    case = Case(tmp_path / "case", create=True)
    ingest(case, [str(export)])
    assert {"case.db", "index", "originals"} <= set(os.listdir(tmp_path / "case"))
    assert case.get_meta("schema_version") == "1"
    runs = case.db.execute("SELECT arguments, tool_version, finished_at FROM ingest_runs").fetchall()
    assert json.loads(runs[0]["arguments"])["paths"] == [str(export)] and runs[0]["finished_at"]
