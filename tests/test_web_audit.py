"""The audit trail from the web: what a session leaves in it, the auditors' page, and tampering shown there."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from discovery import audit, users
from discovery.case import Case
from discovery.cli import cli
from tests.conftest import WEB_USERS, XSS, Logins, login, make_app, private_copy, with_csrf
from tests.test_web_security import live_markup

INVESTIGATOR, AUDITOR = WEB_USERS["investigator"], WEB_USERS["auditor"]


def case_dir(app: Any) -> Path:
    return Path(app.config["CASE_FOLDER"])


def entries(app: Any, **filters: Any) -> list[dict[str, Any]]:
    case = Case(case_dir(app))
    try:
        return audit.entries(case, **filters)
    finally:
        case.close()


def cli_verify(app: Any) -> Any:
    return CliRunner().invoke(cli, ["audit", "verify", "--case", str(case_dir(app)), "--json"])


def scripted_session(app: Any) -> dict[str, Any]:
    """An investigator's whole visit: log in, search, filter, read, page, change a setting, export, log out."""
    start = len(entries(app))
    client = app.test_client()
    assert login(client, *INVESTIGATOR).status_code == 302
    found = client.get("/search.json?q=whitewash&context=2").get_json()
    hit = found["hits"][0]["message"]
    assert client.get(f"/search?q=whitewash&sender={hit['sender_id']}&from=2024-09-01").status_code == 200
    assert client.get("/search?q=whitewash%20(").status_code == 400
    assert client.get(f"/m/{hit['id']}?context=1").status_code == 200
    assert client.get("/m/no-such-message").status_code == 404
    page = client.get(f"/c/{hit['conversation_id']}.json?at={hit['id']}&size=5").get_json()
    later = f"/c/{hit['conversation_id']}?after={page['messages'][-1]['id']}&size=5&partial=1"
    assert client.get(later).status_code == 200
    assert client.post("/settings", data=with_csrf(client, timezone="Asia/Shanghai")).status_code == 302
    export = client.post("/export", data=with_csrf(client, q="whitewash", context="1"))
    assert export.status_code == 200 and export.get_data()[:2] == b"PK"
    export.close()  # sent: the staging folder is removed
    assert client.post("/logout", data=with_csrf(client)).status_code == 302
    return {"hit": hit, "export": export, "page": page, "start": start}


@pytest.fixture(scope="module")
def after_session(tmp_path_factory: pytest.TempPathFactory, demo_case_dir: Path) -> tuple[Path, dict[str, Any]]:
    """A private case after one scripted investigator session (made once; tests get copies)."""
    folder = private_copy(demo_case_dir, tmp_path_factory.mktemp("session") / "case")
    app = make_app(folder)
    try:
        return folder, scripted_session(app)
    finally:
        app.extensions["discovery_cases"].close()


@pytest.fixture
def session_app(after_session: tuple[Path, dict[str, Any]], tmp_path: Path) -> Any:
    """An app on a copy of the case after the scripted session (a test may tamper with it)."""
    folder, scripted = after_session
    app = make_app(private_copy(folder, tmp_path / "case"))
    app.scripted = scripted  # type: ignore[attr-defined]
    yield app
    app.extensions["discovery_cases"].close()


def test_a_scripted_session_is_recorded_step_by_step(session_app):
    hit = session_app.scripted["hit"]
    start = session_app.scripted["start"]
    mine = [e for e in entries(session_app) if e["actor"] == INVESTIGATOR[0] and e["seq"] > start]
    assert [(e["action"], e["outcome"]) for e in mine] == [
        ("login", "ok"),
        ("search", "ok"), ("search", "ok"), ("search", "error"),
        ("view_message", "ok"), ("view_message", "not_found"),
        ("view_conversation", "ok"), ("view_conversation", "ok"),
        ("settings", "ok"),
        ("export", "started"), ("export", "ok"),
        ("logout", "ok"),
    ]
    assert all(e["address"] == "127.0.0.1" and e["details"]["via"] == "web" for e in mine)
    search, filtered, bad = (e["details"] for e in mine[1:4])
    assert search["query"] == "whitewash" and search["hits"] == 4 and search["context"] == 2
    assert filtered["filters"] == {"sender": hit["sender_id"], "from": "2024-09-01"}
    assert filtered["hits"] >= 1
    assert bad["query"] == "whitewash (" and bad["error"]
    assert mine[4]["details"]["id"] == hit["id"]
    first, later = mine[6]["details"], mine[7]["details"]
    assert first["conversation_id"] == hit["conversation_id"] and first["at"] == hit["id"]
    assert first["messages"] == len(session_app.scripted["page"]["messages"])
    assert "after" in later and later["first"] and later["last"]
    assert mine[8]["details"]["timezone"] == "Asia/Shanghai"
    done = mine[10]["details"]
    assert done["query"] == "whitewash"
    assert done["zip_sha256"] == session_app.scripted["export"].headers["X-Bundle-SHA256"]
    assert done["started_seq"] == mine[9]["seq"]


def test_the_chain_verifies_after_the_session(session_app):
    result = cli_verify(session_app)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True
    data = Logins(session_app).client("auditor").get("/audit.json").get_json()
    assert data["verification"]["ok"] is True and data["verification"]["problems"] == []


def _tamper(db: sqlite3.Connection, how: str, seq: int) -> None:
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("DROP TRIGGER audit_log_no_delete")
    if how == "edited":
        db.execute("UPDATE audit_log SET details = json_set(details, '$.query', 'something innocent') WHERE seq = ?",
                   (seq,))
    elif how == "deleted":
        db.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
    elif how == "inserted":
        for (later,) in db.execute("SELECT seq FROM audit_log WHERE seq >= ? ORDER BY seq DESC", (seq,)).fetchall():
            db.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (later,))
        forged = {"seq": seq, "at": "2024-01-01T00:00:00.000Z", "actor": "mallory", "address": "10.0.0.66",
                  "action": "search", "details": "{}", "outcome": "ok", "prev_hash": "0" * 64}
        forged["hash"] = audit.entry_hash(forged)
        db.execute("INSERT INTO audit_log VALUES (:seq,:at,:actor,:address,:action,:details,:outcome,:prev_hash,:hash)",
                   forged)
    elif how == "reordered":
        db.execute("UPDATE audit_log SET seq = -1 WHERE seq = ?", (seq,))
        db.execute("UPDATE audit_log SET seq = ? WHERE seq = ?", (seq, seq + 1))
        db.execute("UPDATE audit_log SET seq = ? WHERE seq = -1", (seq + 1,))
    db.commit()


@pytest.mark.parametrize("how", ["edited", "deleted", "inserted", "reordered"])
def test_tampering_shows_on_the_audit_page_and_fails_verify(session_app, how):
    start = session_app.scripted["start"]
    search = next(e for e in entries(session_app, action="search") if e["seq"] > start)
    auditor = Logins(session_app).client("auditor")  # logged in before the tampering
    db = sqlite3.connect(case_dir(session_app) / "case.db")
    try:
        _tamper(db, how, search["seq"])
    finally:
        db.close()
    result = cli_verify(session_app)
    assert result.exit_code == 1
    problems = json.loads(result.output)["problems"]
    assert problems
    data = auditor.get("/audit.json").get_json()
    assert data["verification"]["ok"] is False and data["verification"]["problems"] == problems
    # (that request appended an audit_view entry after the tampered one; the chain still breaks there)
    html = auditor.get("/audit").get_data(as_text=True)
    assert "The chain does not verify" in html
    named = [p for p in problems if f"entry {search['seq']}" in p or f"entries {search['seq']}" in p
             or f"entry {search['seq'] + 1}" in p]
    assert named, problems
    for problem in named:
        assert escape_html(problem) in html


def escape_html(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def test_only_auditors_read_the_audit_trail(client_as, anon_client):
    assert client_as("auditor").get("/audit").status_code == 200
    for role in ("investigator", "admin"):
        for url in ("/audit", "/audit.json", "/audit.csv"):
            assert client_as(role).get(url).status_code == 403, (role, url)
    assert anon_client.get("/audit").status_code == 302
    assert "Audit trail" not in client_as("investigator").get("/search").get_data(as_text=True)
    assert "Audit trail" in client_as("auditor").get("/search").get_data(as_text=True)


def test_audit_page_filters(session_app):
    auditor = Logins(session_app).client("auditor")
    data = auditor.get(f"/audit.json?user={INVESTIGATOR[0]}&action=search").get_json()
    assert data["total"] >= 3 and {e["action"] for e in data["entries"]} == {"search"}
    assert {e["actor"] for e in data["entries"]} == {INVESTIGATOR[0]}
    assert data["entries"][0]["seq"] > data["entries"][-1]["seq"]  # newest first
    today = data["entries"][0]["at"][:10]
    assert auditor.get(f"/audit.json?from={today}&to={today}&action=login").get_json()["total"] >= 1
    assert auditor.get("/audit.json?to=2000-01-01").get_json()["total"] == 0
    assert auditor.get("/audit.json?from=2024-02-01&to=2024-01-01").status_code == 400
    assert auditor.get("/audit.json?from=yesterday").get_json()["param"] == "from"
    paged = auditor.get("/audit.json?per_page=2&page=2").get_json()
    assert len(paged["entries"]) == 2 and paged["page"] == 2
    html = auditor.get(f"/audit?user={INVESTIGATOR[0]}").get_data(as_text=True)
    assert f"<option selected>{INVESTIGATOR[0]}</option>" in html and "Chain intact" in html
    assert "/audit.csv?user=" in html
    sheet = auditor.get("/audit.csv?action=export").get_data(as_text=True)
    assert sheet.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(sheet.lstrip("\ufeff"))))
    assert rows[0][:5] == ["seq", "at", "actor", "address", "action"]
    assert len(rows) - 1 == len(entries(session_app, action="export")) >= 2
    assert entries(session_app, action="audit_view")[-1]["actor"] == AUDITOR[0]  # reading is recorded too


def test_hostile_names_in_the_audit_trail_are_escaped(private_app):
    case = Case(case_dir(private_app))  # accounts with hostile names, so the trail keeps the names as typed
    for hostile in (XSS["script"], "=HYPERLINK(\"http://evil.example\")"):
        users.add(case, hostile, "investigator", "a long enough password")
    case.close()
    client = private_app.test_client()
    login(client, XSS["script"], "whatever password")
    login(client, "=HYPERLINK(\"http://evil.example\")", "whatever password")
    auditor = Logins(private_app).client("auditor")
    html = auditor.get("/audit").get_data(as_text=True)
    assert live_markup(html) == []
    assert "&lt;script&gt;window.__xss=1" in html
    sheet = auditor.get("/audit.csv?action=login_failed").get_data(as_text=True)
    assert ",'=HYPERLINK" not in sheet  # the name is inside the details JSON, which starts with {
    assert '"{""reason"": ""wrong password"", ""user"": ""=HYPERLINK' in sheet
