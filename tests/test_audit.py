"""The audit trail is hash-chained: every kind of tampering with a real case.db is caught and named."""

import json
import sqlite3

import pytest
from click.testing import CliRunner

from discovery import audit
from discovery.case import Case
from discovery.cli import cli


@pytest.fixture
def case(tmp_path):
    opened = Case(tmp_path / "case", create=True)
    for n in range(1, 6):
        audit.record(opened, "search", {"query": f"q{n}", "total": n}, actor="alice", address="127.0.0.1")
    yield opened
    opened.close()


def raw_db(case):
    """A second connection without the app's triggers in the way: what a tamperer would do."""
    db = sqlite3.connect(case.folder / "case.db")
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("DROP TRIGGER audit_log_no_delete")
    return db


def test_an_untouched_chain_verifies(case):
    verdict = audit.verify(case)
    assert verdict.ok and verdict.entries == 5 and verdict.problems == []
    head = json.loads((case.folder / "audit.head").read_text())
    assert head == {"entries": 5, "last_hash": verdict.last_hash}


def test_each_entry_links_to_the_one_before(case):
    rows = audit.entries(case)
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in zip(rows, rows[1:], strict=False))
    assert rows[2]["details"] == {"query": "q3", "total": 3} and rows[2]["actor"] == "alice"


def test_the_application_cannot_update_or_delete_entries(case):
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        case.db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        case.db.execute("DELETE FROM audit_log WHERE seq = 2")


def test_an_edited_entry_is_named(case):
    db = raw_db(case)
    db.execute("UPDATE audit_log SET details = '{\"query\": \"innocent\"}' WHERE seq = 3")
    db.commit()
    verdict = audit.verify(case)
    assert not verdict.ok and any("entry 3" in p and "altered" in p for p in verdict.problems)


def test_a_deleted_entry_is_named(case):
    db = raw_db(case)
    db.execute("DELETE FROM audit_log WHERE seq = 2")
    db.commit()
    verdict = audit.verify(case)
    assert not verdict.ok and any("2..2 are missing" in p for p in verdict.problems)


def test_an_inserted_entry_is_named(case):
    db = raw_db(case)
    rows = db.execute("SELECT seq FROM audit_log ORDER BY seq DESC").fetchall()
    for (seq,) in rows:
        if seq >= 3:
            db.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (seq,))
    forged = {"seq": 3, "at": "2026-01-01T00:00:00.000Z", "actor": "mallory", "address": "x", "action": "search",
              "details": "{}", "outcome": "ok", "prev_hash": "f" * 64}
    forged["hash"] = audit.entry_hash(forged)
    db.execute("INSERT INTO audit_log VALUES (:seq,:at,:actor,:address,:action,:details,:outcome,:prev_hash,:hash)",
               forged)
    db.commit()
    verdict = audit.verify(case)
    assert not verdict.ok
    assert any("entry 3" in p and "does not follow" in p for p in verdict.problems)


def test_reordered_entries_are_named(case):
    db = raw_db(case)
    db.execute("UPDATE audit_log SET seq = 100 WHERE seq = 2")
    db.execute("UPDATE audit_log SET seq = 2 WHERE seq = 4")
    db.execute("UPDATE audit_log SET seq = 4 WHERE seq = 100")
    db.commit()
    verdict = audit.verify(case)
    assert not verdict.ok and any("entry 2" in p for p in verdict.problems)


def test_entries_cut_from_the_end_are_caught_by_the_head(case):
    db = raw_db(case)
    db.execute("DELETE FROM audit_log WHERE seq = 5")
    db.commit()
    verdict = audit.verify(case)
    assert not verdict.ok and any("cut from the end" in p for p in verdict.problems)


def test_cli_verify_exits_0_then_1_after_tampering(case):
    folder = str(case.folder)
    ok = CliRunner().invoke(cli, ["audit", "verify", "--case", folder])
    assert ok.exit_code == 0 and "chain intact" in ok.output
    db = raw_db(case)
    db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    db.commit()
    bad = CliRunner().invoke(cli, ["audit", "verify", "--case", folder])
    assert bad.exit_code == 1 and "entry 1" in bad.output


def test_cli_export_json_and_csv(case):
    data = json.loads(CliRunner().invoke(cli, ["audit", "export", "--case", str(case.folder), "--json"]).output)
    assert [row["seq"] for row in data] == [1, 2, 3, 4, 5]
    text = CliRunner().invoke(cli, ["audit", "export", "--case", str(case.folder), "--user", "alice"]).output
    assert text.splitlines()[0].startswith("seq,at,actor") and len(text.splitlines()) == 6
